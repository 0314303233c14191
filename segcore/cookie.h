// Cookie header parsing (RFC 6265 section 5.4 as browsers send it). No
// allocation: runs on every request. Visitor id syntax: segcore/visitor_id.h.
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

}  // namespace segcore
