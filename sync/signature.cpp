#include "sync/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <optional>

#include "sync/error.h"

namespace segsync {
namespace {

constexpr std::size_t kHmacSize = 32;
constexpr std::size_t kEd25519Size = 64;
constexpr std::size_t kMinHmacKey = 32;

struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string read_small(const std::string& path, std::size_t limit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw system_error("cannot read " + path);
    std::string text;
    text.resize(limit + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > limit) throw FeedError(path + ": larger than " + std::to_string(limit) + " bytes");
    return text;
}

std::string trimmed(std::string text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    std::size_t start = 0;
    while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
    return text.substr(start);
}

// nullopt unless `text` is an even number of hex digits.
std::optional<std::string> from_hex(const std::string& text) {
    if (text.size() % 2) return std::nullopt;
    std::string bytes;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int value = 0;
        for (char c : {text[i], text[i + 1]}) {
            if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
            value = value * 16 + (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10));
        }
        bytes.push_back(static_cast<char>(value));
    }
    return bytes;
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(digits[bytes[i] >> 4]);
        out.push_back(digits[bytes[i] & 15]);
    }
    return out;
}

std::string hmac_key(const std::string& path) {
    auto key = from_hex(trimmed(read_small(path, 4096)));
    if (!key || key->size() < kMinHmacKey)
        throw ImportError(path + ": an HMAC-SHA256 key file holds at least " +
                          std::to_string(kMinHmacKey) + " bytes as hex (openssl rand -hex 32)");
    return *key;
}

std::string hmac(const std::string& key, const std::string& message) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &size))
        throw ImportError("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<char*>(out), size);
}

Pkey read_pem(const std::string& path, bool is_private) {
    std::string text = read_small(path, 16384);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())),
                                                  BIO_free);
    Pkey key(is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                        : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
        throw ImportError(path + ": not an Ed25519 " + (is_private ? "private" : "public") +
                          " key in PEM form");
    return key;
}

bool ed25519_verifies(EVP_PKEY* key, const std::string& signature, const std::string& message) {
    MdCtx ctx(EVP_MD_CTX_new());
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) == 1 &&
           EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()),
                            message.size()) == 1;
}

// Raw bytes as openssl writes them, or the same as hex text.
std::string read_signature(const std::string& path) {
    std::string raw = read_small(path, 1024);
    // Hex first: 64 hex digits (an HMAC) are also 64 bytes (an Ed25519 size).
    auto decoded = from_hex(trimmed(raw));
    if (decoded && (decoded->size() == kHmacSize || decoded->size() == kEd25519Size)) return *decoded;
    if (raw.size() == kHmacSize || raw.size() == kEd25519Size) return raw;
    throw FeedError(path + ": not a signature (32 bytes for HMAC-SHA256, 64 for Ed25519, raw or hex)");
}

}  // namespace

std::string sha256_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw system_error("cannot read " + path);
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        throw ImportError("SHA-256 unavailable");
    char buffer[65536];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0)
        EVP_DigestUpdate(ctx.get(), buffer, static_cast<std::size_t>(in.gcount()));
    if (in.bad()) throw system_error("cannot read " + path);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &size);
    return to_hex(digest, size);
}

std::string signed_message(std::string_view name, std::string_view sha256_hex) {
    return "segedge-feed-v1\n" + std::string(name) + "\n" + std::string(sha256_hex) + "\n";
}

struct SignatureVerifier::Keys {
    std::vector<std::string> hmac;
    std::vector<Pkey> ed25519;
};

SignatureVerifier::SignatureVerifier(const SignatureKeys& keys) : keys_(std::make_unique<Keys>()) {
    for (const auto& path : keys.hmac_sha256) keys_->hmac.push_back(hmac_key(path));
    for (const auto& path : keys.ed25519) keys_->ed25519.push_back(read_pem(path, false));
}

SignatureVerifier::~SignatureVerifier() = default;

void SignatureVerifier::verify(const std::string& name, const std::string& path,
                               const std::string& signature_path) const {
    std::string signature = read_signature(signature_path);
    std::string message = signed_message(name, sha256_file(path));
    if (signature.size() == kHmacSize) {
        for (const auto& key : keys_->hmac) {
            std::string expected = hmac(key, message);
            if (CRYPTO_memcmp(expected.data(), signature.data(), kHmacSize) == 0) return;
        }
    } else {
        for (const auto& key : keys_->ed25519)
            if (ed25519_verifies(key.get(), signature, message)) return;
    }
    throw FeedError("bad signature: " + signature_path + " is not a valid " +
                    (signature.size() == kHmacSize ? "HMAC-SHA256" : "Ed25519") + " signature of " +
                    quote(name) + " by any configured key");
}

std::string sign_feed(const std::string& key_path, const std::string& name, const std::string& path) {
    std::string message = signed_message(name, sha256_file(path));
    std::string head = read_small(key_path, 16384).substr(0, 10);
    if (head != "-----BEGIN") {
        std::string mac = hmac(hmac_key(key_path), message);
        return to_hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
    }
    Pkey key = read_pem(key_path, true);
    MdCtx ctx(EVP_MD_CTX_new());
    unsigned char signature[kEd25519Size];
    std::size_t size = sizeof signature;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), signature, &size,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
        throw ImportError("Ed25519 signing failed");
    return to_hex(signature, size);
}

}  // namespace segsync
