// Anonymous visitor ids: 128 random bits from OpenSSL's CSPRNG, written as
// 22 base64url characters. Only that canonical spelling is accepted from a
// cookie (and from the importer), so every id has exactly one form and
// anything else is treated as no id at all, never trusted or echoed.
#pragma once

#include <cstddef>
#include <string_view>

namespace segcore {

inline constexpr std::size_t kVisitorIdBytes = 16;
inline constexpr std::size_t kVisitorIdLength = 22;  // base64url, no padding

// Exactly 22 characters of [A-Za-z0-9_-] whose last character carries no
// bits beyond the 128 (so it is one of A, Q, g, w).
bool is_visitor_id(std::string_view id) noexcept;

// Writes a new id (kVisitorIdLength characters) to `out`. false when the
// CSPRNG fails; then nothing usable was written.
bool issue_visitor_id(char* out) noexcept;

}  // namespace segcore
