#include "sync/write.h"

#include <sys/stat.h>

#include <algorithm>

#include "sync/error.h"

namespace segsync {
namespace {

namespace schema = segcore::schema;

constexpr std::size_t kMinMapSize = std::size_t{1} << 30;

void set_mode(const std::string& path, mode_t mode) {
    if (chmod(path.c_str(), mode) != 0) throw system_error("chmod " + path);
}

std::string mismatch(const std::string& what, std::uint64_t wrote, std::uint64_t read) {
    return what + ": wrote " + std::to_string(wrote) + ", read back " + std::to_string(read);
}

// The first difference between the snapshot in `dir` and `expected`, or "".
std::string compare(const std::string& dir, const SnapshotExpectation& expected) {
    segcore::Snapshot snapshot(dir);
    segcore::SnapshotCounts counts = snapshot.verify();
    const auto& meta = snapshot.meta();
    if (meta.schema_version != expected.meta.schema_version)
        return mismatch("schema_version", expected.meta.schema_version, meta.schema_version);
    if (meta.generation != expected.meta.generation)
        return mismatch("generation", expected.meta.generation, meta.generation);
    if (meta.source != expected.meta.source)
        return "source: wrote " + quote(expected.meta.source) + ", read back " + quote(meta.source);
    if (counts.segments != expected.segments)
        return mismatch("segments", expected.segments, counts.segments);
    if (counts.profiles != expected.profiles)
        return mismatch("profiles", expected.profiles, counts.profiles);
    if (counts.aliases != expected.aliases)
        return mismatch("aliases", expected.aliases, counts.aliases);
    if (counts.attributes != expected.attributes)
        return mismatch("attributes", expected.attributes, counts.attributes);
    if (counts.blocks != expected.blocks) return mismatch("blocks", expected.blocks, counts.blocks);
    if (counts.experiments != expected.experiments)
        return mismatch("experiments", expected.experiments, counts.experiments);
    return {};
}

}  // namespace

std::size_t map_size_for(std::uint64_t input_bytes, std::size_t minimum) {
    return std::max<std::size_t>(minimum ? minimum : kMinMapSize,
                                 static_cast<std::size_t>(input_bytes) * 4);
}

SnapshotWriter::SnapshotWriter(const std::string& dir, std::size_t map_size) : dir_(dir) {
    segcore::Env::Options options;
    // Default flags on purpose: no NOSYNC/WRITEMAP/MAPASYNC, so a commit is
    // on disk before the snapshot can be published.
    options.flags = 0;
    options.map_size = map_size;
    options.max_readers = kMaxReaders;
    options.mode = 0660;
    env_ = std::make_unique<segcore::Env>(dir, options);
    txn_ = std::make_unique<segcore::Txn>(*env_, 0);
    meta_db_ = txn_->open_db(schema::kMetaDb, MDB_CREATE);
    segments_db_ = txn_->open_db(schema::kSegmentsDb, MDB_CREATE);
    profiles_db_ = txn_->open_db(schema::kProfilesDb, MDB_CREATE);
    aliases_db_ = txn_->open_db(schema::kAliasesDb, MDB_CREATE);
    attributes_db_ = txn_->open_db(schema::kAttributesDb, MDB_CREATE);
    blocks_db_ = txn_->open_db(schema::kBlocksDb, MDB_CREATE);
    experiments_db_ = txn_->open_db(schema::kExperimentsDb, MDB_CREATE);
}

void SnapshotWriter::put_meta(const segcore::SnapshotMeta& meta, const FeedPositions& feeds) {
    txn_->put(meta_db_, schema::kMetaSchemaVersion, schema::encode_u32(meta.schema_version));
    txn_->put(meta_db_, schema::kMetaGeneration, schema::encode_u64(meta.generation));
    txn_->put(meta_db_, schema::kMetaBuiltAt, schema::encode_u64(meta.built_at));
    txn_->put(meta_db_, schema::kMetaSource, meta.source);
    for (const auto& [source, feed] : feeds)
        txn_->put(meta_db_, std::string(schema::kMetaFeedPrefix) + source, feed);
}

void SnapshotWriter::put_attributes(const std::vector<schema::AttributeDef>& defs) {
    for (const auto& def : defs)
        txn_->put(attributes_db_, schema::encode_attribute_key(def.id), schema::encode_attribute(def));
}

void SnapshotWriter::put_segment(const schema::SegmentDef& def) {
    txn_->put(segments_db_, schema::encode_segment_key(def.id), schema::encode_segment(def));
}

void SnapshotWriter::append_profile(std::string_view key, std::string_view value) {
    append(profiles_cursor_, profiles_db_, key, value);
}

void SnapshotWriter::append_alias(std::string_view key, std::string_view value) {
    append(aliases_cursor_, aliases_db_, key, value);
}

// One cursor per database kept open across appends: cheaper than mdb_put,
// which sets up a cursor per record (measured: about 40% fewer instructions).
void SnapshotWriter::append(std::unique_ptr<segcore::Cursor>& cursor, MDB_dbi dbi,
                            std::string_view key, std::string_view value) {
    if (!cursor) cursor = std::make_unique<segcore::Cursor>(*txn_, dbi);
    cursor->put(key, value, MDB_APPEND);
}

void SnapshotWriter::close_cursors() {
    profiles_cursor_.reset();
    aliases_cursor_.reset();
}

segcore::Txn& SnapshotWriter::txn() {
    close_cursors();
    return *txn_;
}

void SnapshotWriter::put_block(const BlockContent& content) {
    char key[schema::kMaxBlockKeySize];
    std::size_t size = schema::encode_block_key(content.block, content.segment, content.variant, key);
    if (size == 0) throw ImportError("internal error: unvalidated block name");
    txn_->put(blocks_db_, std::string_view(key, size), content.html);
}

void SnapshotWriter::put_experiment(const segcore::experiments::ExperimentDef& def) {
    txn_->put(experiments_db_, def.id, segcore::experiments::encode(def));
}

void SnapshotWriter::checkpoint() {
    close_cursors();
    commit();
    txn_ = std::make_unique<segcore::Txn>(*env_, 0);
}

// Before the staging directory goes: afterwards the disk is no longer full.
void SnapshotWriter::commit() {
    try {
        txn_->commit();
    } catch (const segcore::LmdbError& e) {
        throw write_error(e, dir_);
    }
}

void SnapshotWriter::finish() {
    close_cursors();
    commit();
    txn_.reset();
    env_.reset();
    // Workers only read data.mdb but must register in lock.mdb's reader table.
    set_mode(dir_ + "/data.mdb", 0640);
    set_mode(dir_ + "/lock.mdb", 0660);
}

void verify_snapshot(const std::string& dir, const SnapshotExpectation& expected) {
    std::string problem;
    try {
        problem = compare(dir, expected);
    } catch (const std::runtime_error& e) {  // SnapshotError, LmdbError
        problem = e.what();
    }
    if (!problem.empty()) throw ImportError("verify " + dir + ": " + problem);
}

}  // namespace segsync
