// The import's two large inputs, profiles and aliases: lines parsed on all
// cores, put in key order with bounded memory (sync/key_sorter.h) and
// appended into the snapshot while the next records are merged. Results and
// errors are those of reading the file line by line: a bad line is reported
// as FILE:LINE with the full parser's message, and a repeated visitor at the
// line where it repeats, unless an earlier line is bad.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>

#include "sync/error.h"
#include "sync/sources.h"
#include "sync/validate.h"
#include "sync/write.h"

namespace segsync {

struct LoadOptions {
    std::string temp_dir;               // for sorted runs: the staging directory
    std::ostream* progress = nullptr;   // a terminal to draw progress on
    CancelCheck cancelled;              // the daemon stopping
    // Memory for putting records in key order, whatever the input's size;
    // beyond it, sorted runs go to temp_dir.
    std::size_t sort_memory = std::size_t{96} << 20;
};

// Each returns the number of records written; throws ImportError.
std::size_t load_profiles(NdjsonReader& reader, const Catalogue& catalogue,
                          AttributeCatalogue& attributes, SnapshotWriter& writer,
                          const LoadOptions& options);
std::size_t load_aliases(NdjsonReader& reader, SnapshotWriter& writer, const LoadOptions& options);

}  // namespace segsync
