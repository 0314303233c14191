// Anonymous visitor ids: 16 bytes written as 22 base64url characters. Only
// that canonical spelling is accepted from a cookie (and from the importer),
// so every id has exactly one form and anything else is treated as no id at
// all, never trusted or echoed.
//
// Ids the module issues carry their issue time, as nginx's userid cookie
// does: the bytes are laid out as a UUIDv7 (RFC 9562): 48-bit unix
// milliseconds, version 7, variant 0b10 and 74 bits from OpenSSL's CSPRNG.
// Ids issued before (128 random bits) and ids of other systems stay valid;
// they just have no issue time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace segcore {

inline constexpr std::size_t kVisitorIdBytes = 16;
inline constexpr std::size_t kVisitorIdLength = 22;  // base64url, no padding

// Issue times are trusted only from 2026-01-01, when ids began to carry
// them, to a day past the reader's clock (servers' clocks differ a little).
inline constexpr std::uint64_t kFirstIssueMs = 1767225600000;
inline constexpr std::uint64_t kIssueSkewMs = 86400000;

// Exactly 22 characters of [A-Za-z0-9_-] whose last character carries no
// bits beyond the 128 (so it is one of A, Q, g, w).
bool is_visitor_id(std::string_view id) noexcept;

// Writes a new id issued at `now_ms` (unix milliseconds) to `out`
// (kVisitorIdLength characters). false when the CSPRNG fails; then nothing
// usable was written.
bool issue_visitor_id(char* out, std::uint64_t now_ms) noexcept;

// When a canonical id was issued: its UUIDv7 time, if it has the version
// and variant bits and a time from kFirstIssueMs to now_ms + kIssueSkewMs;
// nullopt otherwise. A random id passes these checks by chance with a
// probability of about 2 in 10^6 per year since kFirstIssueMs.
std::optional<std::uint64_t> visitor_id_issued_ms(std::string_view id, std::uint64_t now_ms) noexcept;

}  // namespace segcore
