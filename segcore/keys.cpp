#include "segcore/keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "segcore/base64.h"

namespace segcore {
namespace {

// Room for any secret text short enough to be looked at; the size limit is
// checked on the decoded bytes.
constexpr std::size_t kMaxSecretText = 4 * kMaxSecretBytes;

// Wipes a secret's bytes when it goes out of scope.
struct SecretBuffer {
    unsigned char bytes[kMaxSecretText];
    ~SecretBuffer() { OPENSSL_cleanse(bytes, sizeof bytes); }
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::size_t> decode_hex(std::string_view text, unsigned char* out, std::size_t capacity) {
    if (text.size() % 2 != 0 || text.size() / 2 > capacity) return std::nullopt;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int high = hex_value(text[i]), low = hex_value(text[i + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        out[i / 2] = static_cast<unsigned char>(high << 4 | low);
    }
    return text.size() / 2;
}

// What `openssl rand -base64 32` prints (standard alphabet, '=' padding) or
// base64url; both become base64url for the strict decoder.
std::optional<std::size_t> decode_base64(std::string_view text, unsigned char* out, std::size_t capacity) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    char url[kMaxSecretText];
    if (text.size() > sizeof url) return std::nullopt;
    for (std::size_t i = 0; i < text.size(); ++i)
        url[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    auto size = base64::decode_url(std::string_view(url, text.size()), out, capacity);
    OPENSSL_cleanse(url, sizeof url);
    return size;
}

std::vector<std::string_view> fields_of(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t i = 0;
    while (i < line.size()) {
        if (line[i] == ' ' || line[i] == '\t') {
            ++i;
            continue;
        }
        std::size_t end = line.find_first_of(" \t", i);
        if (end == std::string_view::npos) end = line.size();
        fields.push_back(line.substr(i, end - i));
        i = end;
    }
    return fields;
}

std::string quoted(std::string_view text) {
    return "\"" + std::string(text.substr(0, 40)) + (text.size() > 40 ? "...\"" : "\"");
}

// Decodes one key line's fields or throws KeyFileError at `where`.
Key parse_key(std::string_view id, std::string_view secret, const std::string& where) {
    if (!is_key_id(id))
        throw KeyFileError(where + "invalid key id " + quoted(id) + ": use 1.." +
                           std::to_string(kMaxKeyIdLength) + " characters of A-Z, a-z, 0-9, _ and -");
    auto fail = [&](const std::string& problem) {
        return KeyFileError(where + "secret of key " + quoted(id) + " " + problem);
    };
    std::string too_long = "is over " + std::to_string(kMaxSecretBytes) + " bytes";
    if (secret.size() > kMaxSecretText) throw fail(too_long);
    SecretBuffer buffer;
    std::optional<std::size_t> size;
    if (secret.rfind("hex:", 0) == 0) {
        size = decode_hex(secret.substr(4), buffer.bytes, sizeof buffer.bytes);
        if (!size) throw fail("is not valid hex");
    } else if (secret.rfind("base64:", 0) == 0) {
        size = decode_base64(secret.substr(7), buffer.bytes, sizeof buffer.bytes);
        if (!size) throw fail("is not valid base64");
    } else {
        throw fail("must start with \"base64:\" or \"hex:\"");
    }
    if (*size < kMinSecretBytes)
        throw fail("is " + std::to_string(*size) + " bytes, at least " +
                   std::to_string(kMinSecretBytes) + " are needed");
    if (*size > kMaxSecretBytes) throw fail(too_long);
    return Key(std::string(id),
               std::string_view(reinterpret_cast<const char*>(buffer.bytes), *size));
}

}  // namespace

bool is_key_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxKeyIdLength) return false;
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

void Key::CtxFree::operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }

Key::Key(std::string id, std::string_view secret) : id_(std::move(id)) {
    EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (hmac) ctx_.reset(EVP_MAC_CTX_new(hmac));
    EVP_MAC_free(hmac);  // the context holds its own reference
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx_ || EVP_MAC_init(ctx_.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size(), params) != 1)
        throw std::runtime_error("OpenSSL cannot set up HMAC-SHA256");
}

Key::~Key() = default;
Key::Key(Key&&) noexcept = default;
Key& Key::operator=(Key&&) noexcept = default;

void Key::mac(std::initializer_list<std::string_view> parts, unsigned char* out) const {
    // A null key re-initialises the context with the key it already holds.
    bool ok = EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) == 1;
    for (auto part : parts)
        ok = ok && EVP_MAC_update(ctx_.get(), reinterpret_cast<const unsigned char*>(part.data()),
                                  part.size()) == 1;
    std::size_t size = 0;
    ok = ok && EVP_MAC_final(ctx_.get(), out, &size, kMacSize) == 1 && size == kMacSize;
    if (!ok) throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
}

KeyRing KeyRing::load(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) throw KeyFileError(path + ": cannot open: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw KeyFileError(path + ": cannot open: not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw KeyFileError(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw KeyFileError(path + ": read error");
    std::string contents = text.str();
    try {
        KeyRing ring = parse(contents, path);
        OPENSSL_cleanse(contents.data(), contents.size());
        return ring;
    } catch (...) {
        OPENSSL_cleanse(contents.data(), contents.size());
        throw;
    }
}

KeyRing KeyRing::parse(std::string_view text, const std::string& name) {
    KeyRing ring;
    std::vector<std::size_t> lines;  // where each key was defined
    std::size_t number = 0;
    while (!text.empty()) {
        std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        ++number;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        auto fields = fields_of(line);
        if (fields.empty() || fields[0][0] == '#') continue;
        std::string where = name + ":" + std::to_string(number) + ": ";
        if (fields.size() != 2)
            throw KeyFileError(where + "expected \"KEY-ID base64:SECRET\" or \"KEY-ID hex:SECRET\", got " +
                               std::to_string(fields.size()) + " fields");
        for (std::size_t i = 0; i < ring.keys_.size(); ++i)
            if (ring.keys_[i].id() == fields[0])
                throw KeyFileError(where + "duplicate key id " + quoted(fields[0]) +
                                   " (first on line " + std::to_string(lines[i]) + ")");
        ring.keys_.push_back(parse_key(fields[0], fields[1], where));
        lines.push_back(number);
    }
    if (ring.keys_.empty()) throw KeyFileError(name + ": no keys");
    return ring;
}

const Key* KeyRing::find(std::string_view id) const noexcept {
    for (const auto& key : keys_)
        if (key.id() == id) return &key;
    return nullptr;
}

}  // namespace segcore
