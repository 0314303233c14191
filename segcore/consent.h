// Whether the visitor allows identification. Without consent no visitor
// cookie is read or set and no profile or alias is looked up.
//
//   consent value (segedge_consent)  granted only for "1", "yes", "true" or
//                                    "granted" (any letter case); anything
//                                    else, including empty, is denied;
//                                    not configured: granted
//   Sec-GPC: 1                       denied whatever the consent value says,
//                                    unless the operator turned that off
#pragma once

#include <optional>
#include <string_view>

namespace segcore {

enum class Consent { granted, denied };

std::string_view to_string(Consent consent) noexcept;

// `value`: the evaluated segedge_consent, nullopt when none is configured.
// `gpc`: the Sec-GPC request header, nullopt when absent.
Consent decide_consent(std::optional<std::string_view> value, std::optional<std::string_view> gpc,
                       bool honour_gpc) noexcept;

}  // namespace segcore
