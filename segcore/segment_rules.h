// The rule segments of one snapshot, compiled once per snapshot in each
// worker, and their per-request evaluation merged with the visitor's
// precomputed segments.
//
// A segment's members are its precomputed members OR the requests its rule
// matches: the CDP's membership stays authoritative, and a rule adds the
// visitors it can recognise before the CDP knows them. Rules are evaluated
// in segment id order (file order); a rule names only segments defined
// above it, so every {"segment": ...} it reads is already decided.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "segcore/rules.h"
#include "segcore/snapshot.h"

namespace segcore {

class SegmentRules {
public:
    // Throws rules::RuleError naming the segment of the first bad rule
    // (segsync validated them, so only a damaged snapshot gets here).
    explicit SegmentRules(const Snapshot& snapshot);

    bool empty() const noexcept { return rules_.empty(); }
    std::size_t size() const noexcept { return rules_.size(); }
    // Union of rules::uses_bit() of every rule.
    std::uint32_t uses() const noexcept { return uses_; }

    // Looks the attribute names the rules read up again when delta batches
    // moved the committed generation past the one they were read at.
    // Throws LmdbError.
    void refresh_attributes(std::uint64_t generation);

    // What one request brings besides its Inputs: its precomputed ids
    // (stored order) and its stored profile values (schema encoding, known
    // profile first), which answer "attribute.NAME" inputs.
    struct Visitor {
        const std::uint32_t* ids = nullptr;
        std::size_t n = 0;
        const std::string_view* profiles = nullptr;
        std::size_t nprofiles = 0;
    };

    // Bytes of per-request memory evaluate() needs (8-byte aligned).
    std::size_t scratch_size() const noexcept;

    // Writes the precomputed ids merged with the rule segments this request
    // matches into `out` (room for n + size() ids), in stored order, and
    // returns how many. Each distinct input is asked from `inputs` at most
    // once. No allocation; a failing rule is false.
    std::size_t evaluate(rules::Inputs& inputs, const Visitor& visitor, void* scratch,
                         std::uint32_t* out) const noexcept;

private:
    struct Entry {
        std::uint32_t segment;
        std::int32_t priority;
        rules::Rule rule;
    };
    friend class LayeredInputs;

    const Snapshot& snapshot_;
    std::vector<Entry> rules_;          // id order: evaluation order
    std::vector<std::uint32_t> order_;  // indices into rules_, stored order
    rules::InputTable inputs_;
    std::uint32_t uses_ = 0;
    // The "attribute.NAME" slots as (attribute id, slot), ascending id;
    // names the catalogue does not have (yet) are left out.
    std::vector<std::pair<std::uint16_t, std::uint16_t>> attribute_slots_;
    std::uint64_t attributes_generation_ = 0;
};

}  // namespace segcore
