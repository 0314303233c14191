#include "segcore/set_cookie.h"

#include <cctype>

namespace segcore {
namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

struct FlagName {
    std::string_view name;
    unsigned flag;
};

constexpr FlagName kFlagNames[] = {
    {"Secure", kCookieSecure},
    {"HttpOnly", kCookieHttpOnly},
    {"SameSite=Lax", kCookieSameSiteLax},
    {"SameSite=Strict", kCookieSameSiteStrict},
    {"SameSite=None", kCookieSameSiteNone},
};
constexpr unsigned kSameSiteFlags = kCookieSameSiteLax | kCookieSameSiteStrict | kCookieSameSiteNone;

std::string quoted(std::string_view token) { return "\"" + std::string(token) + "\""; }

}  // namespace

CookieFlagsResult parse_cookie_flags(const std::vector<std::string_view>& tokens) {
    CookieFlagsResult result;
    if (tokens.size() == 1 && tokens[0] == "off") return result;
    for (auto token : tokens) {
        unsigned flag = 0;
        for (const auto& known : kFlagNames)
            if (equals_ignoring_case(token, known.name)) flag = known.flag;
        if (flag == 0) {
            result.error = "invalid cookie flag " + quoted(token) +
                           ": use Secure, HttpOnly, SameSite=Lax, SameSite=Strict, SameSite=None or off alone";
        } else if (result.flags & flag) {
            result.error = "cookie flag " + quoted(token) + " given twice";
        } else if ((flag & kSameSiteFlags) && (result.flags & kSameSiteFlags)) {
            result.error = "cookie flag " + quoted(token) + ": only one SameSite value";
        }
        if (!result.error.empty()) return result;
        result.flags |= flag;
    }
    if ((result.flags & kCookieSameSiteNone) && !(result.flags & kCookieSecure))
        result.error = "cookie flag \"SameSite=None\" needs \"Secure\"";
    return result;
}

bool is_cookie_domain(std::string_view domain) noexcept {
    if (!domain.empty() && domain.front() == '.') domain.remove_prefix(1);
    if (domain.empty() || domain.size() > 253) return false;
    for (char c : domain)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
    return domain.front() != '.' && domain.back() != '.';
}

bool is_cookie_path(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') return false;
    for (char c : path)
        if (c < 0x21 || c > 0x7e || c == ';') return false;
    return true;
}

std::string check_cookie_prefix(std::string_view name, const CookieAttributes& attributes) {
    bool host = name.rfind("__Host-", 0) == 0;
    if (!host && name.rfind("__Secure-", 0) != 0) return {};
    if (!(attributes.flags & kCookieSecure))
        return "cookie name " + quoted(name) + " needs the Secure flag";
    if (host && !attributes.domain.empty())
        return "cookie name " + quoted(name) + " must not have a domain";
    if (host && attributes.path != "/") return "cookie name " + quoted(name) + " needs path /";
    return {};
}

std::string set_cookie_attributes(const CookieAttributes& attributes) {
    std::string text = "; Max-Age=" + std::to_string(attributes.max_age);
    if (!attributes.domain.empty()) text += "; Domain=" + std::string(attributes.domain);
    text += "; Path=" + std::string(attributes.path);
    for (const auto& known : kFlagNames)
        if (attributes.flags & known.flag) text += "; " + std::string(known.name);
    return text;
}

}  // namespace segcore
