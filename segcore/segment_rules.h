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
#include <optional>
#include <string>
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

    // Reloads the attribute names when delta batches moved the committed
    // generation past the one they were read at. Throws LmdbError.
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

    // Writes the precomputed ids merged with the rule segments this request
    // matches into `out`, in stored order, and returns how many. `out`
    // holds n + size() ids, `scratch` size() ids. No allocation; a failing
    // rule is false.
    std::size_t evaluate(rules::Inputs& inputs, const Visitor& visitor, std::uint32_t* scratch,
                         std::uint32_t* out) const noexcept;

private:
    struct Entry {
        std::uint32_t segment;
        rules::Rule rule;
    };
    friend class LayeredInputs;
    std::optional<std::uint16_t> attribute_id(std::string_view name) const noexcept;

    const Snapshot& snapshot_;
    std::vector<Entry> rules_;  // id order
    std::uint32_t uses_ = 0;
    std::vector<std::pair<std::string, std::uint16_t>> attributes_;  // by name
    std::uint64_t attributes_generation_ = 0;
};

}  // namespace segcore
