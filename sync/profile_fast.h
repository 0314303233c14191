// Stage 2's fast path for the profiles file: one NDJSON line straight to its
// LMDB key and value, without building a JSON document. It takes only lines
// it can decide alone: a valid profile in the common shape (no escapes in
// strings, attribute names already catalogued with the same type). Anything
// else, valid or not, goes to the full parser (NdjsonReader::parse +
// parse_profile), so results and error messages are that parser's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "segcore/schema.h"
#include "sync/validate.h"

namespace segsync {

// A validated profile's stored key and value: what the full parser's result
// becomes.
void encode_profile_record(const Profile& profile, std::string& key, std::string& value);

// Names to small numbers by open addressing: a catalogue's std::map lookup
// costs more than all the rest of a line.
class NameIndex {
public:
    void insert(std::string_view name, std::uint32_t value);
    // nullptr when absent. `head`: head_of(name), which a caller may have
    // more cheaply.
    const std::uint32_t* find(std::string_view name, std::uint64_t head) const;
    // The first 8 bytes of `name`, zero-padded.
    static std::uint64_t head_of(std::string_view name);

private:
    struct Slot {
        std::string name;
        std::uint64_t head = 0;  // the name's first 8 bytes, zero-padded
        std::uint32_t value = 0;
        bool used = false;
    };
    std::size_t slot_of(std::string_view name, std::uint64_t head) const;

    std::vector<Slot> slots_;  // a power of two, at most half full
    std::size_t size_ = 0;
};

class FastProfileParser {
public:
    // Both catalogues must outlive the parser. `attributes` may grow (the
    // full parser interns new names) while `attributes_lock` is held.
    FastProfileParser(const Catalogue& catalogue, const AttributeCatalogue& attributes,
                      std::mutex& attributes_lock);

    // Writes the profile's key and value (exactly what parse_profile and
    // encode_profile_record give) and returns true, or returns false,
    // leaving the line to the full parser.
    bool parse(std::string_view line, std::string& key, std::string& value);

private:
    class Scanner;

    bool parse_segments(Scanner& in);
    bool parse_attributes(Scanner& in);
    bool parse_attribute(Scanner& in, segcore::schema::AttributeValue& out);
    // The catalogued id of `name` if its type is `type`, else 0.
    std::uint16_t attribute_id(std::string_view name, std::uint64_t head,
                               segcore::schema::AttributeType type);

    const AttributeCatalogue& attributes_;
    std::mutex& attributes_lock_;
    NameIndex segment_ids_;
    // Each segment id's place in stored order (priority descending, then
    // id): Catalogue::order as one comparison.
    std::vector<std::uint32_t> rank_;
    // Attributes seen so far: id | type << 16.
    NameIndex attribute_ids_;
    // Reused from line to line, so a line costs no allocation.
    std::vector<std::uint32_t> segments_;
    std::vector<segcore::schema::AttributeValue> values_;
    std::size_t value_count_ = 0;
};

}  // namespace segsync
