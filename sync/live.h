// In-place batches on the live snapshot (the one DB/current points to): one
// LMDB write transaction per batch, so nginx readers see all of a batch or
// none of it, with the generation moved forward by one in the same commit.
// The map grows before it fills; MDB_MAP_FULL or a failed commit (ENOSPC)
// leaves the live data exactly as it was. Call only while holding the
// WriterLock; never MDB_NOSYNC/MDB_WRITEMAP/MDB_MAPASYNC.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "segcore/lmdb.h"
#include "sync/editor.h"
#include "sync/write.h"

namespace segsync {

struct MapPolicy {
    std::size_t max_map_size = 0;  // bytes; 0: grow as far as the disk allows
};

class LiveDb {
public:
    // Throws FeedError when no snapshot has been published yet.
    LiveDb(const std::string& root, const MapPolicy& policy);

    std::uint64_t generation() const;
    FeedPositions feed_positions() const;
    std::size_t map_size() const;

    // Runs `body` in one write transaction, then sets generation + 1 and
    // records `feed` as `source`'s position, and commits. `expected_bytes`
    // (the batch's input size) decides whether to grow the map first; on
    // MDB_MAP_FULL the transaction is aborted, the map grown and `body` run
    // again from the start. Returns the new generation. Throws ImportError
    // (not about the input) when the map cannot grow or the commit fails.
    std::uint64_t apply(const std::string& source, const std::string& feed,
                        std::uint64_t expected_bytes,
                        const std::function<void(ProfileEditor&)>& body);

    // Records a rejected feed as `source`'s position; the generation and the
    // data stay as they are.
    void skip(const std::string& source, const std::string& feed);

private:
    bool grow(std::size_t at_least);
    void ensure_room(std::uint64_t expected_bytes);

    std::string dir_;
    MapPolicy policy_;
    std::unique_ptr<segcore::Env> env_;
};

}  // namespace segsync
