// `segsync import`: segments + profiles (+ aliases, blocks) NDJSON files -> one new
// published snapshot, all or nothing. The stages live in sources (read),
// validate (check), write (build + verify) and publish (lock, flip, prune).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "sync/error.h"
#include "sync/publish.h"
#include "sync/rfm.h"
#include "sync/write.h"

namespace segsync {

struct ImportOptions {
    std::string db;             // the root nginx's segedge_db points to
    std::string segments_path;  // NDJSON, one segment definition per line
    std::string profiles_path;  // NDJSON, one visitor per line; streamed
    std::string aliases_path;   // optional NDJSON, anonymous -> known; streamed
    std::string blocks_path;    // optional NDJSON, block contents
    std::string experiments_path;  // optional NDJSON, layers and experiments
    std::string orders_path;    // optional: RFM attributes computed into the snapshot
    RfmThresholds rfm;
    std::int64_t as_of = 0;     // "now" for lifecycle ages; 0: the current time
    std::int64_t built_at = 0;  // recorded build time; 0: the current time
    std::string source = "import";
    unsigned keep = 2;                  // snapshots kept, counting the new one
    std::size_t min_map_size = 0;       // 0: the default (1 GiB); grown for large inputs
    FeedPositions feeds;                // daemon feed positions to record in meta
    std::ostream* progress = nullptr;   // a terminal to draw progress on
    CancelCheck cancelled;              // the daemon stopping
};

struct ImportResult {
    std::uint64_t generation = 0;
    std::size_t segments = 0;
    std::size_t profiles = 0;
    std::size_t aliases = 0;
    std::size_t attributes = 0;
    RfmStats rfm;               // when orders were given
    std::size_t blocks = 0;
    std::size_t experiments = 0;
    std::string snapshot_path;  // DB/snapshots/NAME
    PruneReport prune;
};

// Throws ImportError ("FILE:LINE: message" for bad input). On a throw,
// DB/current is exactly as it was and no staging directory is left.
ImportResult run_import(const ImportOptions& options);
// The same, for a caller that already holds the root's writer lock (the
// daemon holds it for its whole life).
ImportResult run_import(const ImportOptions& options, const WriterLock& lock);

}  // namespace segsync
