#include "segcore/snapshot.h"

#include <sys/stat.h>

namespace segcore {
namespace {

Env::Options reader_options() {
    Env::Options options;
    // NOTLS: the slot belongs to our txn object, so reset/renew is allowed
    // whichever thread runs it. NORDAHEAD: lookups are random access.
    options.flags = MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD;
    return options;
}

template <typename T>
T required(const std::optional<T>& value, std::string_view what) {
    if (!value) throw SnapshotError("malformed meta value: " + std::string(what));
    return *value;
}

}  // namespace

Snapshot::Snapshot(const std::string& dir) try : env_(dir, reader_options()) {
    check_not_truncated();
    env_.clear_stale_readers();
    {
        Txn txn(env_, MDB_RDONLY);
        meta_db_ = txn.open_db(schema::kMetaDb);
        segments_db_ = txn.open_db(schema::kSegmentsDb);
        profiles_db_ = txn.open_db(schema::kProfilesDb);
        txn.commit();  // keeps the dbi handles open for later transactions
    }
    load_meta();
    load_catalogue();
} catch (const LmdbError& e) {
    throw SnapshotError(e.what());
}

Snapshot::~Snapshot() {
    if (reader_) mdb_txn_abort(reader_);
}

// A read-only LMDB reader trusts the file to be as long as its meta page
// says; touching a page past the end would kill the process with SIGBUS.
void Snapshot::check_not_truncated() const {
    MDB_envinfo info;
    MDB_stat stat;
    check_lmdb(mdb_env_info(env_.get(), &info), "mdb_env_info");
    check_lmdb(mdb_env_stat(env_.get(), &stat), "mdb_env_stat");
    int fd = -1;
    check_lmdb(mdb_env_get_fd(env_.get(), &fd), "mdb_env_get_fd");
    struct stat file;
    if (fstat(fd, &file) != 0) throw SnapshotError("cannot stat data.mdb");
    auto needed = static_cast<std::uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
    if (static_cast<std::uint64_t>(file.st_size) < needed)
        throw SnapshotError("data.mdb is truncated: " + std::to_string(file.st_size) +
                            " bytes, its header needs " + std::to_string(needed));
}

void Snapshot::load_meta() {
    Txn txn(env_, MDB_RDONLY);
    auto version = txn.get(meta_db_, schema::kMetaSchemaVersion);
    if (!version) throw SnapshotError("no schema_version in meta");
    meta_.schema_version = required(schema::decode_u32(*version), "schema_version");
    if (meta_.schema_version != schema::kVersion)
        throw SnapshotError("schema version " + std::to_string(meta_.schema_version) +
                            ", this build reads " + std::to_string(schema::kVersion));
    auto generation = txn.get(meta_db_, schema::kMetaGeneration);
    auto built_at = txn.get(meta_db_, schema::kMetaBuiltAt);
    auto source = txn.get(meta_db_, schema::kMetaSource);
    if (!generation || !built_at || !source) throw SnapshotError("incomplete meta");
    meta_.generation = required(schema::decode_u64(*generation), "generation");
    meta_.built_at = required(schema::decode_u64(*built_at), "built_at");
    meta_.source = std::string(*source);
}

void Snapshot::load_catalogue() {
    Txn txn(env_, MDB_RDONLY);
    Cursor cursor(txn, segments_db_);
    while (cursor.next()) {
        auto id = schema::decode_segment_key(cursor.key());
        auto def = id ? schema::decode_segment(*id, cursor.value()) : std::nullopt;
        if (!def) throw SnapshotError("malformed segment record");
        catalogue_.emplace(*id, std::move(*def));
    }
}

const schema::SegmentDef* Snapshot::segment(std::uint32_t id) const noexcept {
    auto it = catalogue_.find(id);
    return it == catalogue_.end() ? nullptr : &it->second;
}

MDB_txn* Snapshot::begin_read() {
    if (!reader_) {
        check_lmdb(mdb_txn_begin(env_.get(), nullptr, MDB_RDONLY, &reader_), "mdb_txn_begin");
        return reader_;
    }
    int rc = mdb_txn_renew(reader_);
    if (rc == MDB_MAP_RESIZED) {
        // The writer grew the map: adopt the new size, then retry once.
        check_lmdb(mdb_env_set_mapsize(env_.get(), 0), "mdb_env_set_mapsize");
        rc = mdb_txn_renew(reader_);
    }
    check_lmdb(rc, "mdb_txn_renew");
    return reader_;
}

// Lookups and the generation come from one transaction, so a request never
// pairs one batch's generation with another batch's segments.
std::uint64_t Snapshot::read_generation(MDB_txn* txn) const {
    MDB_val key = as_val(schema::kMetaGeneration), value{};
    int rc = mdb_get(txn, meta_db_, &key, &value);
    if (rc != MDB_SUCCESS) return 0;
    return schema::decode_u64(as_view(value)).value_or(0);
}

LookupResult Snapshot::lookup(schema::VisitorKind kind, std::string_view visitor_id,
                              std::uint32_t* out, std::size_t out_capacity) {
    char key_bytes[schema::kMaxKeySize];
    std::size_t key_size = schema::encode_visitor_key(kind, visitor_id, key_bytes);
    if (key_size == 0) return {0, generation()};

    MDB_txn* txn = begin_read();
    MDB_val key{key_size, key_bytes}, value{};
    int rc = mdb_get(txn, profiles_db_, &key, &value);
    std::optional<std::size_t> stored;
    LookupResult result;
    if (rc == MDB_SUCCESS) {
        stored = schema::profile_segment_count(as_view(value));
        if (stored) result.segments = schema::decode_profile(as_view(value), out, out_capacity);
    }
    result.generation = read_generation(txn);
    // Reset before any throw: a reader slot must never stay pinned.
    mdb_txn_reset(txn);
    if (rc == MDB_NOTFOUND) return {0, result.generation};
    check_lmdb(rc, "mdb_get profile");
    if (!stored) throw SnapshotError("malformed profile record");
    return result;
}

std::uint64_t Snapshot::generation() {
    MDB_txn* txn = begin_read();
    std::uint64_t generation = read_generation(txn);
    mdb_txn_reset(txn);
    return generation;
}

// The module emits ids in stored order, so the order is part of the format:
// every id catalogued, each once, highest priority first (ties: lower id).
void Snapshot::check_profile_ids(const std::uint32_t* ids, std::size_t n) const {
    const schema::SegmentDef* previous = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const schema::SegmentDef* def = segment(ids[i]);
        if (!def) throw SnapshotError("profile names unknown segment id " + std::to_string(ids[i]));
        if (previous && (previous->priority < def->priority ||
                         (previous->priority == def->priority && previous->id >= def->id)))
            throw SnapshotError("profile segment ids out of priority order or repeated");
        previous = def;
    }
}

namespace {

// Attribute id -> type, from the catalogue; empty when the database is absent.
std::unordered_map<std::uint16_t, schema::AttributeType> verify_attributes(const Txn& txn,
                                                                          MDB_dbi dbi) {
    std::unordered_map<std::uint16_t, schema::AttributeType> types;
    Cursor cursor(txn, dbi);
    while (cursor.next()) {
        auto id = schema::decode_attribute_key(cursor.key());
        auto def = id ? schema::decode_attribute(*id, cursor.value()) : std::nullopt;
        if (!def) throw SnapshotError("malformed attribute record");
        types.emplace(*id, def->type);
    }
    return types;
}

std::size_t verify_aliases(const Txn& txn, MDB_dbi dbi) {
    std::size_t count = 0;
    Cursor cursor(txn, dbi);
    while (cursor.next()) {
        if (cursor.key().empty() || cursor.key().size() > schema::kMaxVisitorIdSize ||
            cursor.value().empty() || cursor.value().size() > schema::kMaxVisitorIdSize)
            throw SnapshotError("malformed alias record");
        ++count;
    }
    return count;
}

}  // namespace

SnapshotCounts Snapshot::verify() const {
    SnapshotCounts counts;
    Txn txn(env_, MDB_RDONLY);
    {
        Cursor meta(txn, meta_db_);
        while (meta.next()) {
        }
    }
    {
        Cursor segments(txn, segments_db_);
        while (segments.next()) {
            auto id = schema::decode_segment_key(segments.key());
            if (!id || !schema::decode_segment(*id, segments.value()))
                throw SnapshotError("malformed segment record");
            ++counts.segments;
        }
    }
    std::unordered_map<std::uint16_t, schema::AttributeType> attribute_types;
    if (auto dbi = txn.open_existing_db(schema::kAttributesDb))
        attribute_types = verify_attributes(txn, *dbi);
    counts.attributes = attribute_types.size();
    if (auto dbi = txn.open_existing_db(schema::kAliasesDb)) counts.aliases = verify_aliases(txn, *dbi);
    Cursor profiles(txn, profiles_db_);
    while (profiles.next()) {
        if (!schema::decode_visitor_key_kind(profiles.key()))
            throw SnapshotError("malformed profile key");
        auto record = schema::decode_profile_record(profiles.value());
        if (!record) throw SnapshotError("malformed profile record");
        check_profile_ids(record->segment_ids.data(), record->segment_ids.size());
        for (const auto& attribute : record->attributes) {
            auto type = attribute_types.find(attribute.id);
            if (type == attribute_types.end() || type->second != attribute.type)
                throw SnapshotError("profile names unknown attribute id " +
                                    std::to_string(attribute.id) + " or stores the wrong type");
        }
        ++counts.profiles;
    }
    return counts;
}

}  // namespace segcore
