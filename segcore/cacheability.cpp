#include "segcore/cacheability.h"

#include <cctype>
#include <cstring>

namespace segcore {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool is_name(std::string_view directive, std::string_view lower) {
    if (directive.size() != lower.size()) return false;
    for (std::size_t i = 0; i < lower.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(directive[i])) != lower[i]) return false;
    return true;
}

// The next comma-separated directive, trimmed; commas inside quoted strings
// (as in no-cache="Set-Cookie, X") do not separate.
std::string_view next_directive(std::string_view& rest) {
    bool quoted = false;
    std::size_t i = 0;
    for (; i < rest.size(); ++i) {
        if (rest[i] == '"') quoted = !quoted;
        else if (rest[i] == '\\' && quoted && i + 1 < rest.size()) ++i;
        else if (rest[i] == ',' && !quoted) break;
    }
    std::string_view directive = rest.substr(0, i);
    rest.remove_prefix(i < rest.size() ? i + 1 : i);
    return trim(directive);
}

std::string_view directive_name(std::string_view directive) {
    return trim(directive.substr(0, directive.find('=')));
}

// Directives addressed to shared caches only, and private itself.
bool shared_only(std::string_view name) {
    return is_name(name, "public") || is_name(name, "s-maxage") ||
           is_name(name, "proxy-revalidate") || is_name(name, "private");
}

// max-age=0 (or a malformed value) gives no freshness to store for.
bool positive(std::string_view value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
    bool any = false, nonzero = false;
    for (char c : value) {
        if (c < '0' || c > '9') return false;
        any = true;
        nonzero = nonzero || c != '0';
    }
    return any && nonzero;
}

}  // namespace

void SharedCacheability::add_cache_control(std::string_view value) noexcept {
    has_cache_control_ = true;
    while (!value.empty()) {
        std::string_view item = next_directive(value);
        std::size_t eq = item.find('=');
        std::string_view name = directive_name(item);
        std::string_view argument = eq == std::string_view::npos ? std::string_view{} : trim(item.substr(eq + 1));
        if (is_name(name, "private") || is_name(name, "no-store")) forbidden_ = true;
        if (is_name(name, "public") || is_name(name, "s-maxage")) storable_ = true;
        if (is_name(name, "max-age") && positive(argument)) storable_ = true;
    }
}

bool SharedCacheability::cacheable() const noexcept {
    if (forbidden_) return false;
    return storable_ || (has_expires_ && !has_cache_control_);
}

std::size_t private_cache_control(std::string_view original, char* out) noexcept {
    char* p = out;
    std::memcpy(p, kPrivate.data(), kPrivate.size());
    p += kPrivate.size();
    while (!original.empty()) {
        std::string_view directive = next_directive(original);
        if (directive.empty() || shared_only(directive_name(directive))) continue;
        *p++ = ',';
        *p++ = ' ';
        std::memcpy(p, directive.data(), directive.size());
        p += directive.size();
    }
    return static_cast<std::size_t>(p - out);
}

}  // namespace segcore
