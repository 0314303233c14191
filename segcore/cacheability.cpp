#include "segcore/cacheability.h"

#include <cctype>

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
        std::size_t comma = value.find(',');
        std::string_view item = trim(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        std::size_t eq = item.find('=');
        std::string_view name = trim(item.substr(0, eq));
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

}  // namespace segcore
