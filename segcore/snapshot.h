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

#include "segcore/block_choice.h"
#include "segcore/experiments.h"
#include "segcore/lmdb.h"
#include "segcore/schema.h"

namespace segcore {

class SegmentRules;

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

// The LMDB environment's fill: how much of the map is used and how many
// reader slots (one per process that has read it) are taken.
struct SnapshotUsage {
    std::uint64_t map_size = 0;
    std::uint64_t map_used = 0;  // bytes up to the last page written
    std::uint64_t readers = 0;
    std::uint64_t max_readers = 0;
};

struct SnapshotCounts {
    std::size_t segments = 0;
    std::size_t profiles = 0;
    std::size_t attributes = 0;
    std::size_t aliases = 0;
    std::size_t blocks = 0;  // (block, segment) contents
    std::size_t experiments = 0;
};

// Receives the fragments read_fragments() finds; `html` is valid only
// during the call (it points into the LMDB map under a read transaction).
class FragmentSink {
public:
    virtual void take(std::size_t choice, std::string_view html) = 0;

protected:
    ~FragmentSink() = default;
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
    // Every catalogued segment, unordered.
    const std::unordered_map<std::uint32_t, schema::SegmentDef>& segments() const noexcept {
        return catalogue_;
    }
    // Throws LmdbError.
    SnapshotUsage usage() const;
    // The attribute catalogue as committed now (it grows with delta
    // batches). Allocates: read once per generation, not per request.
    std::vector<schema::AttributeDef> attributes() const;

    // One renewed read transaction for several lookups, reset when the Read
    // ends (also by an exception), so a request pays for one renew however
    // many keys it reads. One Read per Snapshot at a time.
    class Read {
    public:
        explicit Read(Snapshot& snapshot);
        ~Read();
        Read(const Read&) = delete;
        Read& operator=(const Read&) = delete;

        // Copies the visitor's segment ids (priority order) into `out`;
        // returns how many. 0 for an unknown visitor. Throws
        // LmdbError/SnapshotError on a broken database.
        std::size_t profile(schema::VisitorKind kind, std::string_view visitor_id,
                            std::uint32_t* out, std::size_t out_capacity);
        // The visitor's stored profile value (schema encoding), valid while
        // this Read lasts; empty for an unknown visitor. Throws like profile().
        std::string_view profile_value(schema::VisitorKind kind, std::string_view visitor_id);
        // Copies the known id `anonymous_id` is aliased to into `out` (room
        // for schema::kMaxVisitorIdSize bytes); returns its size, 0 when the
        // id has no alias. Throws like profile().
        std::size_t alias(std::string_view anonymous_id, char* out);
        // The generation committed as of this transaction.
        std::uint64_t generation() const;
        // The fragment of `block` for `segment` (and an experiment
        // variant, "experiment:variant"), valid while this Read lasts.
        // Throws LmdbError (MDB_NOTFOUND when there is none) or
        // SnapshotError.
        std::string_view fragment(std::string_view block, std::uint32_t segment,
                                  std::string_view variant = {});

    private:
        Snapshot& snapshot_;
        MDB_txn* txn_;
    };

    // profile() and the generation, in a Read of its own.
    LookupResult lookup(schema::VisitorKind kind, std::string_view visitor_id, std::uint32_t* out,
                        std::size_t out_capacity);
    // The generation committed now (for requests without a visitor id).
    std::uint64_t generation();

    // Which blocks have content for which segments; see BlockCatalogue.
    const BlockCatalogue& blocks() const noexcept { return blocks_; }
    // Every experiment, decoded when the snapshot was opened.
    const experiments::Catalogue& experiments() const noexcept { return experiments_; }
    // The snapshot's rule segments, compiled once at open; nullptr when it
    // has none.
    SegmentRules* rules() noexcept;

    // Reads the fragment of each choice (made with blocks()) in one read
    // transaction and hands it to `sink`. Throws LmdbError/SnapshotError on
    // a broken database.
    void read_fragments(const BlockChoice* choices, std::size_t n, FragmentSink& sink);

    // Full walk of every database, decoding every value and checking that
    // profiles name only catalogued segments and attributes. Throws SnapshotError naming the
    // first problem. LMDB has no checksums; this is what stands in for them.
    SnapshotCounts verify() const;

private:
    // What the committed state says besides profiles: read again only when
    // a write (a delta batch) committed since, i.e. when LMDB's transaction
    // id moved, rather than per request.
    struct Committed {
        bool valid = false;
        std::size_t txn_id = 0;
        std::uint64_t generation = 0;
        bool has_aliases = false;
    };
    const Committed& committed(MDB_txn* txn);

    void open_databases(Txn& txn);
    void check_profile_ids(const std::uint32_t* ids, std::size_t n) const;
    using AttributeTypes = std::unordered_map<std::uint16_t, schema::AttributeType>;
    std::size_t verify_profiles(const Txn& txn, const AttributeTypes& types) const;
    std::size_t verify_profiles(const Txn& txn, const AttributeTypes& types, std::string_view from,
                                std::string_view to) const;
    std::size_t verify_aliases(const Txn& txn) const;
    std::uint64_t read_generation(MDB_txn* txn) const;
    void load_meta();
    void load_catalogue();
    void load_blocks();
    void load_experiments();
    void verify_blocks(const Txn& txn, SnapshotCounts& counts) const;
    MDB_txn* begin_read();

    Env env_;
    MDB_dbi meta_db_ = 0;
    MDB_dbi segments_db_ = 0;
    MDB_dbi profiles_db_ = 0;
    MDB_dbi blocks_db_ = 0;
    // Absent from v1 snapshots written before aliases existed: no aliases.
    std::optional<MDB_dbi> aliases_db_;
    MDB_txn* reader_ = nullptr;  // reset between lookups
    Committed committed_;
    SnapshotMeta meta_;
    std::unordered_map<std::uint32_t, schema::SegmentDef> catalogue_;
    BlockCatalogue blocks_;
    experiments::Catalogue experiments_;
    std::unique_ptr<SegmentRules> rules_;
};

}  // namespace segcore
