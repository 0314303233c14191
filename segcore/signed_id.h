// Signed known-visitor ids, the value of the cookie an application sets
// after login:
//
//   v1.<key-id>.<id>.<expires>.<mac>
//
//   key-id   which key of the key file signed it (segcore/keys.h)
//   id       the known visitor id, base64url without padding (so it never
//            contains a '.')
//   expires  unix seconds, decimal without leading zeros; the value is
//            accepted while the current time is before it
//   mac      base64url (no padding) of HMAC-SHA256(secret,
//            "<purpose>.v1.<key-id>.<id>.<expires>"), purpose
//            "segedge-known-visitor"
//
// The purpose string keeps a MAC made for something else with the same key
// from ever passing as a visitor id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "segcore/keys.h"
#include "segcore/schema.h"

namespace segcore {

inline constexpr std::string_view kKnownVisitorPurpose = "segedge-known-visitor";
inline constexpr std::string_view kSignedIdVersion = "v1";
// Longer values are rejected before anything else is looked at.
inline constexpr std::size_t kMaxSignedIdLength = 1024;

enum class SignedIdCheck { valid, malformed, unknown_key, bad_signature, expired };

std::string_view to_string(SignedIdCheck check) noexcept;

// The cookie value for `id` (1..schema::kMaxVisitorIdSize bytes), signed with
// `key`. Throws std::invalid_argument for an empty or too long id.
std::string sign_id(const Key& key, std::string_view id, std::uint64_t expires,
                    std::string_view purpose = kKnownVisitorPurpose);

struct VerifiedId {
    SignedIdCheck check = SignedIdCheck::malformed;
    std::size_t size = 0;  // bytes of the id written to `out`, when valid
};

// Checks `value` against the keys and `now` (unix seconds). When valid, the
// id is written to `out`, which must hold schema::kMaxVisitorIdSize bytes.
// Anything else is to be ignored: the visitor stays anonymous. Compares
// MACs with constant_time_equal. No allocation; throws std::runtime_error
// only if OpenSSL fails.
VerifiedId verify_signed_id(const KeyRing& keys, std::string_view value, std::uint64_t now,
                            char* out, std::string_view purpose = kKnownVisitorPurpose);

// CRYPTO_memcmp: the time taken does not depend on where the bytes differ,
// so a forger learns nothing from response timing.
bool constant_time_equal(const unsigned char* a, const unsigned char* b, std::size_t size) noexcept;

}  // namespace segcore
