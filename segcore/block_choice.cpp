#include "segcore/block_choice.h"

#include <bitset>

#include "segcore/schema.h"

namespace segcore {

bool BlockCatalogue::add(std::string_view block, std::uint32_t segment) {
    if (names_.empty() || names_.back() != block) {
        if (names_.size() == schema::kMaxBlocks) return false;
        names_.emplace_back(block);
    }
    blocks_by_segment_[segment].push_back(static_cast<std::uint32_t>(names_.size() - 1));
    return true;
}

std::size_t BlockCatalogue::choose(const std::uint32_t* segments, std::size_t n,
                                   BlockChoice* out) const noexcept {
    std::bitset<schema::kMaxBlocks> chosen;
    std::uint32_t winner[schema::kMaxBlocks];
    for (std::size_t i = 0; i < n && chosen.count() < names_.size(); ++i) {
        auto it = blocks_by_segment_.find(segments[i]);
        if (it == blocks_by_segment_.end()) continue;
        for (std::uint32_t block : it->second) {
            if (chosen[block]) continue;
            chosen[block] = true;
            winner[block] = segments[i];
        }
    }
    std::size_t count = 0;
    for (std::uint32_t block = 0; block < names_.size(); ++block)
        if (chosen[block]) out[count++] = {block, winner[block]};
    return count;
}

}  // namespace segcore
