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

    // Writes the precomputed ids (stored order) merged with the rule
    // segments this request matches into `out`, in stored order, and
    // returns how many. `out` holds n + size() ids, `scratch` size() ids.
    // No allocation; a failing rule is false.
    std::size_t evaluate(rules::Inputs& inputs, const std::uint32_t* ids, std::size_t n,
                         std::uint32_t* scratch, std::uint32_t* out) const noexcept;

private:
    struct Entry {
        std::uint32_t segment;
        rules::Rule rule;
    };
    const Snapshot& snapshot_;
    std::vector<Entry> rules_;  // id order
    std::uint32_t uses_ = 0;
};

}  // namespace segcore
