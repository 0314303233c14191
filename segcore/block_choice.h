// Which block content a visitor gets: for every block, the visitor's
// highest-priority segment that has content for it. The catalogue is built
// once per snapshot from the blocks database's keys; choosing for a request
// only walks the visitor's segments and writes into caller memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace segcore {

struct BlockChoice {
    std::uint32_t block = 0;    // index into BlockCatalogue::name()
    std::uint32_t segment = 0;  // the winning segment id
    std::string_view variant;   // "experiment:variant" content, or empty
};

class BlockCatalogue {
public:
    // Records that `block` has content for `segment`. Calls must come in
    // blocks-db key order, so that one block's entries are contiguous.
    // Returns false when the catalogue already holds schema::kMaxBlocks
    // names and `block` would be a new one.
    bool add(std::string_view block, std::uint32_t segment);

    // Records per-experiment content for (block, segment), in key order,
    // after add() of that pair. false when the pair has no content.
    bool add_variant(std::string_view block, std::uint32_t segment, std::string_view variant);

    std::size_t size() const noexcept { return names_.size(); }
    const std::string& name(std::uint32_t block) const { return names_[block]; }

    // `segments` are the visitor's segment ids, highest priority first.
    // Writes one choice per block that has content for any of them, in block
    // order, into `out` (room for size() entries); returns how many.
    std::size_t choose(const std::uint32_t* segments, std::size_t n, BlockChoice* out) const noexcept;
    // Whether any of the choices has per-experiment content, i.e. whether
    // the visitor's variants matter to this page.
    bool has_variants(const BlockChoice* choices, std::size_t n) const noexcept;
    // Sets each choice's variant to the first of its (block, segment)'s
    // per-experiment contents that the visitor's exposure list
    // ($segedge_experiments) names; holdouts keep the segment's content.
    void apply_variants(BlockChoice* choices, std::size_t n, std::string_view exposures) const noexcept;

private:
    std::vector<std::string> names_;  // sorted: blocks-db key order
    std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> blocks_by_segment_;
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<std::string>> variants_;
};

}  // namespace segcore
