// Stage 3: build one complete LMDB environment in a staging directory, in a
// single write transaction, then reopen it the way the module will and check
// it before anything is published.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "segcore/experiments.h"
#include "segcore/lmdb.h"
#include "segcore/schema.h"
#include "segcore/snapshot.h"
#include "sync/validate.h"

namespace segsync {

// Room for the whole import: LMDB fails with MDB_MAP_FULL rather than grow.
// The file stays sparse, so a generous map costs address space, not disk.
// `minimum`: 0 for the default, 1 GiB.
std::size_t map_size_for(std::uint64_t input_bytes, std::size_t minimum = 0);

// Reader slots in lock.mdb: nginx workers x snapshots they may hold. Every
// writer that may create lock.mdb must use the same number.
inline constexpr unsigned kMaxReaders = 1024;

// Feed positions kept in meta ("feed:<source>" -> last feed name).
using FeedPositions = std::map<std::string, std::string>;

class SnapshotWriter {
public:
    // Creates the environment in `dir`, which must exist and be empty.
    SnapshotWriter(const std::string& dir, std::size_t map_size);

    void put_meta(const segcore::SnapshotMeta& meta, const FeedPositions& feeds);
    void put_segment(const segcore::schema::SegmentDef& def);
    void put_attributes(const std::vector<segcore::schema::AttributeDef>& defs);
    // Profile and alias records in ascending key order, each key once (see
    // sync/key_sorter.h): appended (MDB_APPEND), so each page is written once.
    void append_profile(std::string_view key, std::string_view value);
    void append_alias(std::string_view key, std::string_view value);
    // Commits what was written so far and goes on in a new transaction, so
    // a large import keeps a bounded number of dirty pages in memory. Safe:
    // nothing reads a staging environment before finish() and verify.
    void checkpoint();
    // The open write transaction, for stages that edit what was written.
    segcore::Txn& txn();
    void put_block(const BlockContent& content);
    void put_experiment(const segcore::experiments::ExperimentDef& def);
    // Commits, closes the environment and sets the modes nginx workers need.
    void finish();

private:
    // Throws ImportError (write_error) when the commit fails.
    void commit();
    void append(std::unique_ptr<segcore::Cursor>& cursor, MDB_dbi dbi, std::string_view key,
                std::string_view value);
    // LMDB closes a write transaction's cursors itself: close ours first.
    void close_cursors();

    std::string dir_;
    // Declared before txn_ so the transaction is gone before the env closes,
    // and txn_ before the cursors, which go first.
    std::unique_ptr<segcore::Env> env_;
    std::unique_ptr<segcore::Txn> txn_;
    std::unique_ptr<segcore::Cursor> profiles_cursor_;
    std::unique_ptr<segcore::Cursor> aliases_cursor_;
    MDB_dbi meta_db_ = 0;
    MDB_dbi segments_db_ = 0;
    MDB_dbi profiles_db_ = 0;
    MDB_dbi aliases_db_ = 0;
    MDB_dbi attributes_db_ = 0;
    MDB_dbi blocks_db_ = 0;
    MDB_dbi experiments_db_ = 0;
};

struct SnapshotExpectation {
    segcore::SnapshotMeta meta;
    std::size_t segments = 0;
    std::size_t profiles = 0;
    std::size_t aliases = 0;
    std::size_t attributes = 0;
    std::size_t blocks = 0;
    std::size_t experiments = 0;
};

// Opens `dir` with segcore::Snapshot (the reader the module uses), walks all
// of it and compares with what was written. Throws ImportError on any
// difference.
void verify_snapshot(const std::string& dir, const SnapshotExpectation& expected);

}  // namespace segsync
