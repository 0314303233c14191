#include "segcore/lmdb.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "segcore/schema.h"

namespace segcore {

LmdbError::LmdbError(std::string_view what, int code)
    : std::runtime_error(std::string(what) + ": " + mdb_strerror(code)), code_(code) {}

void check_lmdb(int rc, std::string_view what) {
    if (rc != MDB_SUCCESS) throw LmdbError(what, rc);
}

Env::Env(const std::string& path, const Options& options) {
    check_lmdb(mdb_env_create(&env_), "mdb_env_create");
    try {
        check_lmdb(mdb_env_set_maxdbs(env_, schema::kMaxDbs), "mdb_env_set_maxdbs");
        if (options.map_size)
            check_lmdb(mdb_env_set_mapsize(env_, options.map_size), "mdb_env_set_mapsize");
        if (options.max_readers)
            check_lmdb(mdb_env_set_maxreaders(env_, options.max_readers), "mdb_env_set_maxreaders");
        check_lmdb(mdb_env_open(env_, path.c_str(), options.flags, options.mode),
                   "mdb_env_open " + path);
    } catch (...) {
        mdb_env_close(env_);
        throw;
    }
}

Env::~Env() { mdb_env_close(env_); }

int Env::clear_stale_readers() {
    int dead = 0;
    check_lmdb(mdb_reader_check(env_, &dead), "mdb_reader_check");
    return dead;
}

void PageReleaser::read(std::string_view bytes) {
    constexpr std::size_t kReleaseEvery = std::size_t{1} << 16;  // reads
    auto begin = reinterpret_cast<std::uintptr_t>(bytes.data());
    low_ = std::min(low_, begin);
    high_ = std::max(high_, begin + bytes.size());
    if (++reads_ % kReleaseEvery != 0) return;
    // The map is one mapping, so every page between two addresses in it is
    // mapped too. Advice: a failure changes nothing.
    auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    std::uintptr_t start = low_ & ~(page - 1);
    madvise(reinterpret_cast<void*>(start), high_ - start, MADV_DONTNEED);
    low_ = UINTPTR_MAX;
    high_ = 0;
}

Txn::Txn(const Env& env, unsigned flags) {
    int rc = mdb_txn_begin(env.get(), nullptr, flags, &txn_);
    if (rc == MDB_MAP_RESIZED) {
        // Another process grew the map: adopt the new size and retry once.
        check_lmdb(mdb_env_set_mapsize(env.get(), 0), "mdb_env_set_mapsize");
        rc = mdb_txn_begin(env.get(), nullptr, flags, &txn_);
    }
    check_lmdb(rc, "mdb_txn_begin");
}

Txn::~Txn() {
    if (txn_) mdb_txn_abort(txn_);
}

MDB_dbi Txn::open_db(const char* name, unsigned flags) {
    MDB_dbi dbi = 0;
    check_lmdb(mdb_dbi_open(txn_, name, flags, &dbi), std::string("mdb_dbi_open ") + name);
    return dbi;
}

std::optional<MDB_dbi> Txn::open_existing_db(const char* name) {
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn_, name, 0, &dbi);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check_lmdb(rc, std::string("mdb_dbi_open ") + name);
    return dbi;
}

bool Txn::del(MDB_dbi dbi, std::string_view key) {
    MDB_val k = as_val(key);
    int rc = mdb_del(txn_, dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    check_lmdb(rc, "mdb_del");
    return true;
}

std::optional<std::string_view> Txn::get(MDB_dbi dbi, std::string_view key) const {
    MDB_val k = as_val(key), v{};
    int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check_lmdb(rc, "mdb_get");
    return as_view(v);
}

void Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
    MDB_val k = as_val(key), v = as_val(value);
    check_lmdb(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
}

void Txn::commit() {
    MDB_txn* txn = txn_;
    txn_ = nullptr;
    check_lmdb(mdb_txn_commit(txn), "mdb_txn_commit");
}

Cursor::Cursor(const Txn& txn, MDB_dbi dbi) {
    check_lmdb(mdb_cursor_open(txn.get(), dbi, &cursor_), "mdb_cursor_open");
}

Cursor::~Cursor() { mdb_cursor_close(cursor_); }

bool Cursor::next() { return position(started_ ? MDB_NEXT : MDB_FIRST); }

bool Cursor::seek(std::string_view key) {
    key_ = as_val(key);
    return position(MDB_SET_RANGE);
}

bool Cursor::last() { return position(MDB_LAST); }

bool Cursor::position(MDB_cursor_op op) {
    int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
    started_ = true;
    if (rc == MDB_NOTFOUND) return false;
    check_lmdb(rc, "mdb_cursor_get");
    return true;
}

void Cursor::put(std::string_view key, std::string_view value, unsigned flags) {
    MDB_val k = as_val(key);
    MDB_val v = as_val(value);
    check_lmdb(mdb_cursor_put(cursor_, &k, &v, flags), "mdb_cursor_put");
}

}  // namespace segcore
