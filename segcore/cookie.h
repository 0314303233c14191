// Cookie header parsing (RFC 6265 section 5.4 as browsers send it) and the
// syntax of visitor ids. No allocation: runs on every request.
#pragma once

#include <optional>
#include <string_view>

namespace segcore {

// Value of the first cookie named exactly `name` (case-sensitive) in one
// Cookie header. Whitespace around names and values is ignored, one pair of
// surrounding double quotes is removed, '=' inside a value is kept. An empty
// value is returned as an empty view (present but empty).
std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name);

// RFC 6265 token: what a cookie name may be.
bool is_cookie_name(std::string_view name);

// Visitor ids accepted from a cookie: 1..128 of [A-Za-z0-9_-]. Anything else
// is treated as no id at all, never trusted or echoed.
inline constexpr std::size_t kMaxVisitorIdLength = 128;
bool is_visitor_id(std::string_view id);

}  // namespace segcore
