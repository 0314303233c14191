#include "segcore/signed_id.h"

#include <openssl/crypto.h>

#include <optional>
#include <stdexcept>

#include "segcore/base64.h"

namespace segcore {
namespace {

constexpr std::size_t kMacTextLength = base64::encoded_size(kMacSize);
constexpr std::size_t kMaxExpiresDigits = 20;  // UINT64_MAX, what sign_id may write

// Canonical decimal: no sign, no leading zero (except "0"), no overflow.
std::optional<std::uint64_t> parse_expires(std::string_view text) {
    if (text.empty() || text.size() > kMaxExpiresDigits || (text[0] == '0' && text.size() > 1))
        return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

// Splits "a.b.c.d.e" into exactly five fields.
bool split_fields(std::string_view value, std::string_view (&fields)[5]) {
    for (std::size_t i = 0; i < 4; ++i) {
        std::size_t dot = value.find('.');
        if (dot == std::string_view::npos) return false;
        fields[i] = value.substr(0, dot);
        value.remove_prefix(dot + 1);
    }
    fields[4] = value;
    return value.find('.') == std::string_view::npos;
}

}  // namespace

std::string_view to_string(SignedIdCheck check) noexcept {
    switch (check) {
        case SignedIdCheck::valid: return "valid";
        case SignedIdCheck::malformed: return "malformed";
        case SignedIdCheck::unknown_key: return "unknown key";
        case SignedIdCheck::bad_signature: return "bad signature";
        case SignedIdCheck::expired: return "expired";
    }
    return "malformed";
}

std::string sign_id(const Key& key, std::string_view id, std::uint64_t expires,
                    std::string_view purpose) {
    if (id.empty() || id.size() > schema::kMaxVisitorIdSize)
        throw std::invalid_argument("a known visitor id must be 1.." +
                                    std::to_string(schema::kMaxVisitorIdSize) + " bytes");
    std::string encoded(base64::encoded_size(id.size()), '\0');
    base64::encode_url(id.data(), id.size(), encoded.data());
    std::string body = std::string(kSignedIdVersion) + "." + key.id() + "." + encoded + "." +
                       std::to_string(expires);
    unsigned char mac[kMacSize];
    key.mac({purpose, ".", body}, mac);
    char mac_text[kMacTextLength];
    base64::encode_url(mac, sizeof mac, mac_text);
    return body + "." + std::string(mac_text, sizeof mac_text);
}

VerifiedId verify_signed_id(const KeyRing& keys, std::string_view value, std::uint64_t now,
                            char* out, std::string_view purpose) {
    VerifiedId result;
    std::string_view fields[5];
    if (value.size() > kMaxSignedIdLength || !split_fields(value, fields)) return result;
    auto& [version, key_id, id, expires_text, mac_text] = fields;
    auto expires = parse_expires(expires_text);
    unsigned char mac[kMacSize];
    if (version != kSignedIdVersion || !is_key_id(key_id) || id.empty() || !expires ||
        base64::decode_url(mac_text, mac, sizeof mac) != kMacSize)
        return result;

    const Key* key = keys.find(key_id);
    if (!key) {
        result.check = SignedIdCheck::unknown_key;
        return result;
    }
    unsigned char expected[kMacSize];
    key->mac({purpose, ".", value.substr(0, value.size() - mac_text.size() - 1)}, expected);
    if (!constant_time_equal(mac, expected, kMacSize)) {
        result.check = SignedIdCheck::bad_signature;
        return result;
    }
    if (now >= *expires) {
        result.check = SignedIdCheck::expired;
        return result;
    }
    auto size = base64::decode_url(id, out, schema::kMaxVisitorIdSize);
    if (!size || *size == 0) return result;  // signed, but not by sign_id
    result.check = SignedIdCheck::valid;
    result.size = *size;
    return result;
}

bool constant_time_equal(const unsigned char* a, const unsigned char* b, std::size_t size) noexcept {
    return CRYPTO_memcmp(a, b, size) == 0;
}

}  // namespace segcore
