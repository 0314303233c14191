#include "segcore/cache_control.h"

#include <cstring>

namespace segcore {
namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i];
        if (x != b[i]) return false;
    }
    return true;
}

// Directives addressed to shared caches only, and private itself.
bool dropped(std::string_view directive) {
    std::string_view name = trim(directive.substr(0, directive.find('=')));
    return iequals(name, "public") || iequals(name, "s-maxage") ||
           iequals(name, "proxy-revalidate") || iequals(name, "private");
}

// The next comma-separated directive; commas inside quoted strings (as in
// no-cache="Set-Cookie, X") do not separate.
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

}  // namespace

std::size_t private_cache_control(std::string_view original, char* out) noexcept {
    char* p = out;
    std::memcpy(p, kPrivate.data(), kPrivate.size());
    p += kPrivate.size();
    while (!original.empty()) {
        std::string_view directive = next_directive(original);
        if (directive.empty() || dropped(directive)) continue;
        *p++ = ',';
        *p++ = ' ';
        std::memcpy(p, directive.data(), directive.size());
        p += directive.size();
    }
    return static_cast<std::size_t>(p - out);
}

}  // namespace segcore
