// segsync's fast profile-line parser (sync/profile_fast.h) against the full
// parser it stands in for: whatever one line holds, the fast path either
// leaves it to the full parser or encodes exactly the key and value the
// full parser (parse_line + parse_profile) gives, which must accept it.
// A line the fast path took wrongly would be published without the full
// parser's checks.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "segcore/schema.h"
#include "sync/profile_fast.h"
#include "sync/sources.h"
#include "sync/validate.h"
#include "tests/fuzz/fuzz.h"

namespace {

namespace schema = segcore::schema;
using namespace segsync;

// Stored order differs from file order, so the fast path's ordering is
// checked too: vip, cart, news, tie.
Catalogue segment_catalogue() {
    Catalogue catalogue;
    Location where{"segments.ndjson", 1};
    for (const char* line : {R"({"name":"vip","priority":100})", R"({"name":"news","priority":5})",
                             R"({"name":"cart","priority":50})", R"({"name":"tie","priority":5})"})
        catalogue.add(parse_line(line, where), where);
    return catalogue;
}

// "score" (number) and "stage" (text) catalogued, as after a file's first lines.
AttributeCatalogue attribute_catalogue() {
    AttributeCatalogue attributes;
    attributes.add_stored({1, schema::AttributeType::number, "score"});
    attributes.add_stored({2, schema::AttributeType::text, "stage"});
    return attributes;
}

struct Parsers {
    Catalogue catalogue = segment_catalogue();
    AttributeCatalogue attributes = attribute_catalogue();
    std::mutex lock;
    FastProfileParser fast{catalogue, attributes, lock};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Parsers parsers;
    std::string_view line(reinterpret_cast<const char*>(data), size);
    std::string fast_key, fast_value;
    if (!parsers.fast.parse(line, fast_key, fast_value)) return 0;

    // A copy: the full parser interns new attribute names.
    AttributeCatalogue attributes = parsers.attributes;
    Location where{"profiles.ndjson", 1};
    std::string key, value;
    try {
        Profile profile = parse_profile(parse_line(line, where), parsers.catalogue, attributes, where);
        encode_profile_record(profile, key, value);
    } catch (const ImportError&) {
        FUZZ_CHECK(!"the fast path took a line the full parser rejects");
    }
    FUZZ_CHECK(key == fast_key);
    FUZZ_CHECK(value == fast_value);
    return 0;
}
