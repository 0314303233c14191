#include "segcore/block_choice.h"

#include <bitset>

#include "segcore/experiments.h"
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

bool BlockCatalogue::add_variant(std::string_view block, std::uint32_t segment, std::string_view variant) {
    if (names_.empty() || names_.back() != block) return false;
    auto index = static_cast<std::uint32_t>(names_.size() - 1);
    auto it = blocks_by_segment_.find(segment);
    if (it == blocks_by_segment_.end() || it->second.empty() || it->second.back() != index) return false;
    variants_[{index, segment}].emplace_back(variant);
    return true;
}

bool BlockCatalogue::has_variants(const BlockChoice* choices, std::size_t n) const noexcept {
    if (variants_.empty()) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (variants_.count({choices[i].block, choices[i].segment})) return true;
    return false;
}

void BlockCatalogue::apply_variants(BlockChoice* choices, std::size_t n,
                                    std::string_view exposures) const noexcept {
    if (variants_.empty() || exposures.empty()) return;
    for (std::size_t i = 0; i < n; ++i) {
        auto it = variants_.find({choices[i].block, choices[i].segment});
        if (it == variants_.end()) continue;
        for (const std::string& entry : it->second) {
            std::size_t colon = entry.find(':');
            std::string_view experiment = std::string_view(entry).substr(0, colon);
            if (experiments::find_variant(exposures, experiment) == std::string_view(entry).substr(colon + 1)) {
                choices[i].variant = entry;
                break;
            }
        }
    }
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
        if (chosen[block]) out[count++] = {block, winner[block], {}};
    return count;
}

}  // namespace segcore
