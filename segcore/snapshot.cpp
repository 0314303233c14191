#include "segcore/snapshot.h"

#include "segcore/segment_rules.h"

#include <cstring>
#include <future>
#include <memory>

#include "segcore/lmdb_check.h"
#include "segcore/visitor_id.h"

namespace segcore {
namespace {

Env::Options reader_options() {
    Env::Options options;
    // NOTLS: the slot belongs to our txn object, so reset/renew is allowed
    // whichever thread runs it. NORDAHEAD: lookups are random access.
    options.flags = MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD;
    return options;
}

// A snapshot without one of the databases this build reads is refused by
// name rather than with LMDB's bare MDB_NOTFOUND.
MDB_dbi open_required(Txn& txn, const char* name) {
    try {
        return txn.open_db(name);
    } catch (const LmdbError& e) {
        if (e.code() != MDB_NOTFOUND) throw;
        throw SnapshotError(std::string("no \"") + name + "\" database in the snapshot");
    }
}

template <typename T>
T required(const std::optional<T>& value, std::string_view what) {
    if (!value) throw SnapshotError("malformed meta value: " + std::string(what));
    return *value;
}

}  // namespace

Snapshot::Snapshot(const std::string& dir) try : env_(dir, reader_options()) {
    std::string data_file = dir + "/data.mdb";
    check_lmdb_header(data_file);
    env_.clear_stale_readers();
    // Before LMDB reads a page: a corrupt file is refused, not a crash. The
    // check reads the transaction's own meta page, which a writer committing
    // twice meanwhile overwrites: then try a newer transaction.
    for (int attempt = 1;; ++attempt) {
        Txn txn(env_, MDB_RDONLY);
        if (check_lmdb_tree(data_file, mdb_txn_id(txn.get()))) {
            open_databases(txn);
            break;
        }
        if (attempt == 3)
            throw SnapshotError("data.mdb is corrupt or kept changing: its meta page does not match its transaction");
    }
    load_meta();
    load_catalogue();
    load_blocks();
    load_experiments();
    // A rule that does not compile refuses the snapshot at open (the
    // previous one stays in use) rather than failing every request.
    rules_ = std::make_unique<SegmentRules>(*this);
} catch (const LmdbError& e) {
    throw SnapshotError(e.what());
} catch (const rules::RuleError& e) {
    throw SnapshotError(e.what());
} catch (const LmdbFileError& e) {
    throw SnapshotError(e.what());
}

Snapshot::~Snapshot() {
    if (reader_) mdb_txn_abort(reader_);
}

void Snapshot::open_databases(Txn& txn) {
    meta_db_ = open_required(txn, schema::kMetaDb);
    segments_db_ = open_required(txn, schema::kSegmentsDb);
    profiles_db_ = open_required(txn, schema::kProfilesDb);
    blocks_db_ = open_required(txn, schema::kBlocksDb);
    try {
        aliases_db_ = txn.open_db(schema::kAliasesDb);
    } catch (const LmdbError& e) {
        if (e.code() != MDB_NOTFOUND) throw;
    }
    txn.commit();  // keeps the dbi handles open for later transactions
}

SegmentRules* Snapshot::rules() noexcept { return rules_->empty() ? nullptr : rules_.get(); }

SnapshotUsage Snapshot::usage() const {
    MDB_envinfo info;
    MDB_stat stat;
    check_lmdb(mdb_env_info(env_.get(), &info), "mdb_env_info");
    check_lmdb(mdb_env_stat(env_.get(), &stat), "mdb_env_stat");
    SnapshotUsage usage;
    usage.map_size = info.me_mapsize;
    usage.map_used = static_cast<std::uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
    usage.readers = info.me_numreaders;
    usage.max_readers = info.me_maxreaders;
    return usage;
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

// Keys only: the fragments stay in the map until a request needs one.
// Variant keys (per-experiment content) follow their segment's content.
void Snapshot::load_blocks() {
    Txn txn(env_, MDB_RDONLY);
    Cursor cursor(txn, blocks_db_);
    while (cursor.next()) {
        auto key = schema::decode_block_key(cursor.key());
        if (!key) throw SnapshotError("malformed block key");
        if (!key->variant.empty()) {
            if (!blocks_.add_variant(key->block, key->segment, key->variant))
                throw SnapshotError("block \"" + std::string(key->block) + "\" has " +
                                    std::string(key->variant) + " content without the segment's content");
            continue;
        }
        if (!segment(key->segment))
            throw SnapshotError("block content for unknown segment id " + std::to_string(key->segment));
        if (!blocks_.add(key->block, key->segment))
            throw SnapshotError("more than " + std::to_string(schema::kMaxBlocks) + " blocks");
    }
}

// Absent from snapshots written before experiments existed: none.
void Snapshot::load_experiments() {
    Txn txn(env_, MDB_RDONLY);
    auto dbi = txn.open_existing_db(schema::kExperimentsDb);
    if (!dbi) return;
    Cursor cursor(txn, *dbi);
    while (cursor.next()) {
        auto def = experiments::decode(cursor.key(), cursor.value());
        if (!def) throw SnapshotError("malformed experiment record");
        for (std::uint32_t id : def->segments)
            if (!segment(id))
                throw SnapshotError("experiment \"" + def->id + "\" targets unknown segment id " +
                                    std::to_string(id));
        experiments_.add(std::move(*def));
    }
    if (experiments_.all().size() > experiments::kMaxExperiments)
        throw SnapshotError("more than " + std::to_string(experiments::kMaxExperiments) + " experiments");
}

const schema::SegmentDef* Snapshot::segment(std::uint32_t id) const noexcept {
    auto it = catalogue_.find(id);
    return it == catalogue_.end() ? nullptr : &it->second;
}

MDB_txn* Snapshot::begin_read() {
    auto start = [this] {
        return reader_ ? mdb_txn_renew(reader_)
                       : mdb_txn_begin(env_.get(), nullptr, MDB_RDONLY, &reader_);
    };
    int rc = start();
    if (rc == MDB_MAP_RESIZED) {
        // The writer grew the map since this process last looked (also before
        // its first transaction): adopt the new size, then retry once.
        check_lmdb(mdb_env_set_mapsize(env_.get(), 0), "mdb_env_set_mapsize");
        rc = start();
    }
    check_lmdb(rc, reader_ ? "mdb_txn_renew" : "mdb_txn_begin");
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

Snapshot::Read::Read(Snapshot& snapshot) : snapshot_(snapshot), txn_(snapshot.begin_read()) {}

// A reader slot must never stay pinned: that would keep old pages alive.
Snapshot::Read::~Read() { mdb_txn_reset(txn_); }

std::string_view Snapshot::Read::profile_value(schema::VisitorKind kind,
                                              std::string_view visitor_id) {
    char key_bytes[schema::kMaxKeySize];
    std::size_t key_size = schema::encode_visitor_key(kind, visitor_id, key_bytes);
    if (key_size == 0) return {};

    MDB_val key{key_size, key_bytes}, value{};
    int rc = mdb_get(txn_, snapshot_.profiles_db_, &key, &value);
    if (rc == MDB_NOTFOUND) return {};
    check_lmdb(rc, "mdb_get profile");
    if (!schema::profile_segment_count(as_view(value)))
        throw SnapshotError("malformed profile record");
    return as_view(value);
}

std::size_t Snapshot::Read::profile(schema::VisitorKind kind, std::string_view visitor_id,
                                    std::uint32_t* out, std::size_t out_capacity) {
    std::string_view value = profile_value(kind, visitor_id);
    return value.empty() ? 0 : schema::decode_profile(value, out, out_capacity);
}

std::size_t Snapshot::Read::alias(std::string_view anonymous_id, char* out) {
    if (!snapshot_.committed(txn_).has_aliases || anonymous_id.empty() ||
        anonymous_id.size() > schema::kMaxKeySize)
        return 0;
    MDB_val key = as_val(anonymous_id), value{};
    int rc = mdb_get(txn_, *snapshot_.aliases_db_, &key, &value);
    if (rc == MDB_NOTFOUND) return 0;
    check_lmdb(rc, "mdb_get alias");
    if (value.mv_size == 0 || value.mv_size > schema::kMaxVisitorIdSize)
        throw SnapshotError("malformed alias record");
    std::memcpy(out, value.mv_data, value.mv_size);
    return value.mv_size;
}

std::uint64_t Snapshot::Read::generation() const { return snapshot_.committed(txn_).generation; }

const Snapshot::Committed& Snapshot::committed(MDB_txn* txn) {
    std::size_t id = mdb_txn_id(txn);
    if (committed_.valid && committed_.txn_id == id) return committed_;
    Committed now{true, id, read_generation(txn), false};
    if (aliases_db_) {
        MDB_stat stat;
        check_lmdb(mdb_stat(txn, *aliases_db_, &stat), "mdb_stat aliases");
        now.has_aliases = stat.ms_entries != 0;
    }
    committed_ = now;
    return committed_;
}

LookupResult Snapshot::lookup(schema::VisitorKind kind, std::string_view visitor_id,
                              std::uint32_t* out, std::size_t out_capacity) {
    Read read(*this);
    LookupResult result;
    result.generation = read.generation();
    result.segments = read.profile(kind, visitor_id, out, out_capacity);
    return result;
}

std::uint64_t Snapshot::generation() { return Read(*this).generation(); }

std::string_view Snapshot::Read::fragment(std::string_view block, std::uint32_t segment,
                                          std::string_view variant) {
    char key_bytes[schema::kMaxBlockKeySize];
    std::size_t key_size = schema::encode_block_key(block, segment, variant, key_bytes);
    if (key_size == 0) throw SnapshotError("invalid block name");
    MDB_val key{key_size, key_bytes}, value{};
    check_lmdb(mdb_get(txn_, snapshot_.blocks_db_, &key, &value), "mdb_get block");
    if (value.mv_size > schema::kMaxFragmentSize) throw SnapshotError("oversized block fragment");
    return as_view(value);
}

void Snapshot::read_fragments(const BlockChoice* choices, std::size_t n, FragmentSink& sink) {
    Read read(*this);
    for (std::size_t i = 0; i < n; ++i)
        sink.take(i, read.fragment(blocks_.name(choices[i].block), choices[i].segment, choices[i].variant));
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
std::vector<schema::AttributeDef> read_attributes(const Txn& txn, MDB_dbi dbi) {
    std::vector<schema::AttributeDef> defs;
    Cursor cursor(txn, dbi);
    while (cursor.next()) {
        auto id = schema::decode_attribute_key(cursor.key());
        auto def = id ? schema::decode_attribute(*id, cursor.value()) : std::nullopt;
        if (!def) throw SnapshotError("malformed attribute record");
        defs.push_back(std::move(*def));
    }
    return defs;
}

std::unordered_map<std::uint16_t, schema::AttributeType> verify_attributes(const Txn& txn,
                                                                          MDB_dbi dbi) {
    std::unordered_map<std::uint16_t, schema::AttributeType> types;
    for (const auto& def : read_attributes(txn, dbi)) types.emplace(def.id, def.type);
    return types;
}

}  // namespace

std::vector<schema::AttributeDef> Snapshot::attributes() const {
    Txn txn(env_, MDB_RDONLY);
    auto dbi = txn.open_existing_db(schema::kAttributesDb);
    return dbi ? read_attributes(txn, *dbi) : std::vector<schema::AttributeDef>();
}

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
    AttributeTypes attribute_types;
    if (auto dbi = txn.open_existing_db(schema::kAttributesDb))
        attribute_types = verify_attributes(txn, *dbi);
    counts.attributes = attribute_types.size();
    counts.profiles = verify_profiles(txn, attribute_types);
    counts.aliases = verify_aliases(txn);
    verify_blocks(txn, counts);
    counts.experiments = experiments_.all().size();  // checked when opened
    return counts;
}

namespace {

// A key about halfway between `low` and `high` when keys are spread evenly
// (random visitor ids), to walk a database in two halves at once; empty
// when they agree on their first 8 differing bytes' worth.
std::string middle_key(std::string_view low, std::string_view high) {
    std::size_t shared = 0;
    while (shared < low.size() && shared < high.size() && low[shared] == high[shared]) ++shared;
    auto window = [shared](std::string_view key) {
        std::uint64_t w = 0;
        for (std::size_t i = shared; i < shared + 8; ++i)
            w = w << 8 | (i < key.size() ? static_cast<unsigned char>(key[i]) : 0u);
        return w;
    };
    std::uint64_t a = window(low), b = window(high);
    if (b <= a || b - a < 2) return {};
    std::uint64_t middle = a + (b - a) / 2;
    std::string key(low.substr(0, shared));
    for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(middle >> shift));
    return key;
}

}  // namespace

// The two halves at once: on a large snapshot the profiles are most of the
// work.
std::size_t Snapshot::verify_profiles(const Txn& txn, const AttributeTypes& types) const {
    std::string middle;
    {
        Cursor first(txn, profiles_db_), last(txn, profiles_db_);
        if (first.next() && last.last()) middle = middle_key(first.key(), last.key());
    }
    if (middle.empty()) return verify_profiles(txn, types, {}, {});
    // The second half in a read transaction of its own on another thread. It
    // must see what `txn` sees (a live database may have moved on), or this
    // thread walks that half too.
    auto second = std::async(std::launch::async, [&]() -> std::optional<std::size_t> {
        Txn own(env_, MDB_RDONLY);
        if (mdb_txn_id(own.get()) != mdb_txn_id(txn.get())) return std::nullopt;
        return verify_profiles(own, types, middle, {});
    });
    std::size_t count = verify_profiles(txn, types, {}, middle);  // on a throw, ~future waits
    auto rest = second.get();
    return count + (rest ? *rest : verify_profiles(txn, types, middle, {}));
}

// The profiles from `from` up to `to`, excluded (empty: from the first, to
// the last), each decoded and checked; returns how many.
std::size_t Snapshot::verify_profiles(const Txn& txn, const AttributeTypes& types,
                                      std::string_view from, std::string_view to) const {
    Cursor profiles(txn, profiles_db_);
    auto view = std::make_unique<schema::ProfileView>();
    PageReleaser pages;
    std::size_t count = 0;
    for (bool more = from.empty() ? profiles.next() : profiles.seek(from);
         more && (to.empty() || profiles.key() < to); more = profiles.next()) {
        if (!schema::decode_visitor_key_kind(profiles.key())) throw SnapshotError("malformed profile key");
        if (!schema::decode_profile_view(profiles.value(), *view))
            throw SnapshotError("malformed profile record");
        check_profile_ids(view->segment_ids, view->segment_count);
        for (std::size_t i = 0; i < view->attribute_count; ++i) {
            const auto& attribute = view->attributes[i];
            auto type = types.find(attribute.id);
            if (type == types.end() || type->second != attribute.value.type)
                throw SnapshotError("profile names unknown attribute id " + std::to_string(attribute.id) +
                                    " or stores the wrong type");
        }
        pages.read(profiles.value());
        ++count;
    }
    return count;
}

// Only ids the module can read from a cookie can be aliased, and each to a
// known id that fits a profile key.
std::size_t Snapshot::verify_aliases(const Txn& txn) const {
    if (!aliases_db_) return 0;
    std::size_t count = 0;
    PageReleaser pages;
    Cursor aliases(txn, *aliases_db_);
    while (aliases.next()) {
        if (!is_visitor_id(aliases.key())) throw SnapshotError("malformed alias key");
        if (aliases.value().empty() || aliases.value().size() > schema::kMaxVisitorIdSize)
            throw SnapshotError("malformed alias record");
        pages.read(aliases.value());
        ++count;
    }
    return count;
}

void Snapshot::verify_blocks(const Txn& txn, SnapshotCounts& counts) const {
    Cursor blocks(txn, blocks_db_);
    while (blocks.next()) {
        auto key = schema::decode_block_key(blocks.key());
        if (!key) throw SnapshotError("malformed block key");
        if (!segment(key->segment))
            throw SnapshotError("block \"" + std::string(key->block) +
                                "\" has content for unknown segment id " + std::to_string(key->segment));
        if (blocks.value().size() > schema::kMaxFragmentSize)
            throw SnapshotError("block \"" + std::string(key->block) + "\" has a fragment of " +
                                std::to_string(blocks.value().size()) + " bytes, at most " +
                                std::to_string(schema::kMaxFragmentSize));
        ++counts.blocks;
    }
}

}  // namespace segcore
