// `segsync run --config FILE`: keeps DB fresh from its sources. Holds the
// writer lock for its whole life; per source, applies new feeds in name
// order (full snapshots through the import pipeline, deltas and orders in
// place), never one twice, rejecting a bad feed whole and going on with the
// next. SIGTERM/SIGINT stop it between (or abort, cleanly, inside) feeds;
// SIGHUP rereads the configuration.
#pragma once

#include <string>

namespace segsync {

struct RunOptions {
    std::string config_path;
    bool once = false;  // one pass over every source, then exit
};

// Returns the exit status: 0, or 1 (bad config, lock held; with --once:
// anything rejected or failed).
int run_daemon(const RunOptions& options);

}  // namespace segsync
