// The Cookie header parser and what the module does with the value it finds
// (visitor id syntax, consent). Input: one byte giving the cookie name's
// length, the name, then the Cookie header.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "segcore/consent.h"
#include "segcore/cookie.h"
#include "segcore/visitor_id.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool inside(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::string_view name = input.substr(0, data[0] % 64);
    std::string_view header = input.substr(name.size());

    auto value = segcore::find_cookie(header, name);
    if (value) {
        FUZZ_CHECK(inside(*value, header));
        FUZZ_CHECK(value->find(';') == std::string_view::npos);
        segcore::is_visitor_id(*value);
        segcore::decide_consent(*value, header, true);
    }

    // A cookie put first is the one found, whatever follows.
    if (segcore::is_cookie_name(name)) {
        std::string first = std::string(name) + "=first;" + std::string(header);
        auto found = segcore::find_cookie(first, name);
        FUZZ_CHECK(found && *found == "first");
    }
    return 0;
}
