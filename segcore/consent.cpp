#include "segcore/consent.h"

namespace segcore {
namespace {

bool equals_ignoring_case(std::string_view text, std::string_view lower) {
    if (text.size() != lower.size()) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
        if (c != lower[i]) return false;
    }
    return true;
}

// Opt-in: only an explicit yes counts, so a missing or unfamiliar value from
// a consent manager never identifies anyone.
bool grants(std::string_view value) {
    for (std::string_view yes : {"1", "yes", "true", "granted"})
        if (equals_ignoring_case(value, yes)) return true;
    return false;
}

}  // namespace

std::string_view to_string(Consent consent) noexcept {
    return consent == Consent::granted ? "granted" : "denied";
}

Consent decide_consent(std::optional<std::string_view> value, std::optional<std::string_view> gpc,
                       bool honour_gpc) noexcept {
    if (honour_gpc && gpc == std::string_view("1")) return Consent::denied;
    if (value && !grants(*value)) return Consent::denied;
    return Consent::granted;
}

}  // namespace segcore
