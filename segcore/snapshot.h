// One published snapshot opened read-only. Opening loads the small segment
// catalogue and meta once; per-request lookups reuse one read transaction
// (renew/reset) and copy ids into caller memory, so they never allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "segcore/lmdb.h"
#include "segcore/schema.h"

namespace segcore {

class SnapshotError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SnapshotMeta {
    std::uint32_t schema_version = 0;
    std::uint64_t generation = 0;
    std::uint64_t built_at = 0;  // unix seconds
    std::string source;
};

struct SnapshotCounts {
    std::size_t segments = 0;
    std::size_t profiles = 0;
    std::size_t attributes = 0;
    std::size_t aliases = 0;
};

// What one lookup saw, all from the same read transaction.
struct LookupResult {
    std::size_t segments = 0;      // ids copied
    std::uint64_t generation = 0;  // committed generation the lookup read
};

class Snapshot {
public:
    // Throws SnapshotError (missing, unreadable, wrong schema version,
    // malformed meta or catalogue).
    explicit Snapshot(const std::string& dir);
    ~Snapshot();
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

    // Meta as of opening. Delta batches move the generation in place; the
    // generation a request was served from is the one lookup() reports.
    const SnapshotMeta& meta() const noexcept { return meta_; }
    const schema::SegmentDef* segment(std::uint32_t id) const noexcept;
    std::size_t segment_count() const noexcept { return catalogue_.size(); }

    // Copies the visitor's segment ids (priority order) into `out` and
    // reports how many (0 for an unknown visitor) and the generation of the
    // transaction that read them. Throws LmdbError/SnapshotError on a broken
    // database.
    LookupResult lookup(schema::VisitorKind kind, std::string_view visitor_id, std::uint32_t* out,
                        std::size_t out_capacity);
    // The generation committed now (for requests without a visitor id).
    std::uint64_t generation();

    // Full walk of every database, decoding every value and checking that
    // profiles name only catalogued segments and attributes. Throws SnapshotError naming the
    // first problem. LMDB has no checksums; this is what stands in for them.
    SnapshotCounts verify() const;

private:
    void check_not_truncated() const;
    void check_profile_ids(const std::uint32_t* ids, std::size_t n) const;
    std::uint64_t read_generation(MDB_txn* txn) const;
    void load_meta();
    void load_catalogue();
    MDB_txn* begin_read();

    Env env_;
    MDB_dbi meta_db_ = 0;
    MDB_dbi segments_db_ = 0;
    MDB_dbi profiles_db_ = 0;
    MDB_txn* reader_ = nullptr;  // reset between lookups
    SnapshotMeta meta_;
    std::unordered_map<std::uint32_t, schema::SegmentDef> catalogue_;
};

}  // namespace segcore
