#include "sync/live.h"

#include <climits>
#include <cstdlib>

#include "segcore/layout.h"
#include "sync/error.h"

namespace segsync {
namespace {

namespace schema = segcore::schema;

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr int kMaxGrowRetries = 8;

std::string feed_key(const std::string& source) {
    return std::string(schema::kMetaFeedPrefix) + source;
}

std::uint64_t stored_generation(const segcore::Txn& txn, MDB_dbi meta) {
    auto value = txn.get(meta, schema::kMetaGeneration);
    auto generation = value ? schema::decode_u64(*value) : std::nullopt;
    if (!generation) throw ImportError("the live snapshot has no readable generation");
    return *generation;
}

std::size_t round_up(std::size_t size) { return (size + kMiB - 1) / kMiB * kMiB; }

}  // namespace

LiveDb::LiveDb(const std::string& root, const MapPolicy& policy) : policy_(policy) {
    std::string link = segcore::layout::current_link(root);
    char resolved[PATH_MAX];
    if (!realpath(link.c_str(), resolved))
        throw FeedError("no snapshot to apply it to: " + link +
                        " does not exist yet (a full snapshot must come first)");
    dir_ = resolved;
    segcore::Env::Options options;
    options.max_readers = kMaxReaders;
    env_ = std::make_unique<segcore::Env>(dir_, options);
    // A writer killed after writing its meta page but before publishing the
    // new transaction id in lock.mdb leaves readers one commit behind (while
    // nginx keeps lock.mdb open) until the next writer takes the lock and
    // recovers it. Take it first, so the feed positions read next are the
    // ones on disk and a committed batch is not applied a second time.
    segcore::Txn(*env_, 0);
}

std::uint64_t LiveDb::generation() const {
    segcore::Txn txn(*env_, MDB_RDONLY);
    return stored_generation(txn, txn.open_db(schema::kMetaDb));
}

FeedPositions LiveDb::feed_positions() const {
    FeedPositions positions;
    segcore::Txn txn(*env_, MDB_RDONLY);
    segcore::Cursor cursor(txn, txn.open_db(schema::kMetaDb));
    while (cursor.next()) {
        std::string_view key = cursor.key();
        if (key.substr(0, schema::kMetaFeedPrefix.size()) == schema::kMetaFeedPrefix)
            positions.emplace(key.substr(schema::kMetaFeedPrefix.size()), cursor.value());
    }
    return positions;
}

std::size_t LiveDb::map_size() const {
    MDB_envinfo info;
    segcore::check_lmdb(mdb_env_info(env_->get(), &info), "mdb_env_info");
    return info.me_mapsize;
}

// Doubles the map (at least to `at_least`), within the policy's limit.
// Readers in other processes notice at their next transaction
// (MDB_MAP_RESIZED) and remap.
bool LiveDb::grow(std::size_t at_least) {
    std::size_t current = map_size();
    std::size_t wanted = round_up(std::max(current * 2, at_least));
    if (policy_.max_map_size) wanted = std::min(wanted, policy_.max_map_size);
    if (wanted <= current) return false;
    segcore::check_lmdb(mdb_env_set_mapsize(env_->get(), wanted), "mdb_env_set_mapsize");
    return true;
}

// Grows before a batch when less than a quarter of the map, or less than
// twice the batch's input size, is left.
void LiveDb::ensure_room(std::uint64_t expected_bytes) {
    MDB_envinfo info;
    MDB_stat stat;
    segcore::check_lmdb(mdb_env_info(env_->get(), &info), "mdb_env_info");
    segcore::check_lmdb(mdb_env_stat(env_->get(), &stat), "mdb_env_stat");
    std::size_t used = (info.me_last_pgno + 1) * stat.ms_psize;
    std::size_t wanted_free = std::max<std::size_t>(expected_bytes * 2, info.me_mapsize / 4);
    if (info.me_mapsize - std::min(used, info.me_mapsize) < wanted_free) grow(used + 2 * wanted_free);
}

std::uint64_t LiveDb::apply(const std::string& source, const std::string& feed,
                            std::uint64_t expected_bytes,
                            const std::function<void(ProfileEditor&)>& body) {
    ensure_room(expected_bytes);
    for (int attempt = 0;; ++attempt) {
        try {
            segcore::Txn txn(*env_, 0);
            MDB_dbi meta = txn.open_db(schema::kMetaDb);
            std::uint64_t next = stored_generation(txn, meta) + 1;
            ProfileEditor editor(txn);
            body(editor);
            txn.put(meta, schema::kMetaGeneration, schema::encode_u64(next));
            txn.put(meta, feed_key(source), feed);
            txn.commit();
            return next;
        } catch (const segcore::LmdbError& e) {
            std::size_t size = map_size();
            if (e.code() == MDB_MAP_FULL && attempt < kMaxGrowRetries && grow(size * 2)) continue;
            if (e.code() == MDB_MAP_FULL)
                throw ImportError("the database map is full at " + std::to_string(size / kMiB) +
                                  " MiB and may not grow further (max_map_size_mb); the live "
                                  "data is unchanged");
            throw ImportError(std::string(write_error(e, dir_).what()) + "; the live data is unchanged");
        }
    }
}

void LiveDb::skip(const std::string& source, const std::string& feed) {
    try {
        segcore::Txn txn(*env_, 0);
        txn.put(txn.open_db(schema::kMetaDb), feed_key(source), feed);
        txn.commit();
    } catch (const segcore::LmdbError& e) {
        throw ImportError(std::string("cannot record the rejected feed: ") + e.what());
    }
}

}  // namespace segsync
