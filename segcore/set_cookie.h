// The visitor cookie the module issues: attribute syntax, the flags an
// operator may choose, and the attribute text appended after "name=value".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace segcore {

// Browsers cap cookie lifetimes at 400 days (RFC 6265bis); a longer
// Max-Age would only pretend.
inline constexpr std::uint64_t kMaxCookieAgeSeconds = 400 * 86400;
inline constexpr std::uint64_t kDefaultCookieAgeSeconds = 365 * 86400;

enum CookieFlag : unsigned {
    kCookieSecure = 1,
    kCookieHttpOnly = 2,
    kCookieSameSiteLax = 4,
    kCookieSameSiteStrict = 8,
    kCookieSameSiteNone = 16,
};
inline constexpr unsigned kDefaultCookieFlags = kCookieHttpOnly | kCookieSameSiteLax;

struct CookieFlagsResult {
    unsigned flags = 0;
    std::string error;  // names the offending token; empty when valid
};

// Parses segedge_cookie_flags' arguments: "off" alone, or any of "Secure",
// "HttpOnly", "SameSite=Lax|Strict|None" (letter case ignored), each once,
// one SameSite at most. SameSite=None needs Secure (browsers drop it
// otherwise).
CookieFlagsResult parse_cookie_flags(const std::vector<std::string_view>& tokens);

// Domain attribute: a host name, [A-Za-z0-9.-], optionally with a leading dot.
bool is_cookie_domain(std::string_view domain) noexcept;
// Path attribute: starts with '/', printable ASCII without ';'.
bool is_cookie_path(std::string_view path) noexcept;

struct CookieAttributes {
    std::string_view domain;  // empty: none (host-only cookie)
    std::string_view path = "/";
    std::uint64_t max_age = kDefaultCookieAgeSeconds;
    unsigned flags = kDefaultCookieFlags;
};

// What the cookie name's prefix demands and the attributes do not give
// ("__Secure-" needs Secure; "__Host-" also Path=/ and no Domain), or "".
std::string check_cookie_prefix(std::string_view name, const CookieAttributes& attributes);

// "; Max-Age=N[; Domain=D]; Path=P[; Secure][; HttpOnly][; SameSite=S]"
std::string set_cookie_attributes(const CookieAttributes& attributes);

}  // namespace segcore
