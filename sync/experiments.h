// The experiments file of `segsync import --experiments`: layer lines and
// experiment lines, validated as a whole (weights, segments, layer ranges)
// before anything is written. Small: kept in memory.
#pragma once

#include <vector>

#include "segcore/experiments.h"
#include "sync/sources.h"
#include "sync/validate.h"

namespace segsync {

// Reads and validates the whole file. Throws ImportError "FILE:LINE: ..."
// naming the offending line (for an overlap, both lines).
std::vector<segcore::experiments::ExperimentDef> read_experiments(NdjsonReader& reader,
                                                                  const Catalogue& catalogue);

}  // namespace segsync
