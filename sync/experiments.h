// The experiments file of `segsync import --experiments`: layer lines and
// experiment lines, validated as a whole (weights, segments, layer ranges)
// before anything is written. Small: kept in memory.
#pragma once

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "segcore/experiments.h"
#include "sync/sources.h"
#include "sync/validate.h"

namespace segsync {

// Reads and validates the whole file. Throws ImportError "FILE:LINE: ..."
// naming the offending line (for an overlap, both lines).
std::vector<segcore::experiments::ExperimentDef> read_experiments(NdjsonReader& reader,
                                                                  const Catalogue& catalogue);

// A blocks-file line with "experiment" and "variant": the block's content
// for the segment's visitors who have that variant. Per-experiment lines
// are checked here; the rest of the file by parse_block and BlockIndex.
class VariantBlocks {
public:
    explicit VariantBlocks(const std::vector<segcore::experiments::ExperimentDef>* experiments)
        : experiments_(experiments) {}

    static bool is_variant_line(const nlohmann::json& object) { return object.contains("experiment"); }
    // Validates a per-experiment line. Throws ImportError at `where`.
    BlockContent parse(const nlohmann::json& object, const Catalogue& catalogue, const Location& where);
    // Records a segment's content line.
    void add_base(const BlockContent& content) { bases_.insert({content.block, content.segment}); }
    // Every per-experiment line has its segment's content. Throws ImportError.
    void check(std::string_view file, const Catalogue& catalogue) const;

private:
    const std::vector<segcore::experiments::ExperimentDef>* experiments_;
    std::set<std::pair<std::string, std::uint32_t>> bases_;
    std::map<std::tuple<std::string, std::uint32_t, std::string>, std::size_t> lines_;
};

}  // namespace segsync
