#include "segcore/cookie.h"

namespace segcore {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        std::size_t end = header.find(';');
        std::string_view pair = header.substr(0, end);
        header = end == std::string_view::npos ? std::string_view{} : header.substr(end + 1);

        std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) continue;  // no '=': not a cookie-pair
        if (trim(pair.substr(0, eq)) != name) continue;

        std::string_view value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        return value;
    }
    return std::nullopt;
}

bool is_cookie_name(std::string_view name) {
    if (name.empty()) return false;
    for (unsigned char c : name) {
        if (c <= 0x20 || c >= 0x7f) return false;
        for (char sep : std::string_view("()<>@,;:\\\"/[]?={}")) {
            if (c == static_cast<unsigned char>(sep)) return false;
        }
    }
    return true;
}

}  // namespace segcore
