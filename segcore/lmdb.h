// RAII for LMDB handles. Errors become segcore::LmdbError carrying the LMDB
// return code, so callers can tell MDB_MAP_FULL or MDB_MAP_RESIZED apart.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace segcore {

class LmdbError : public std::runtime_error {
public:
    LmdbError(std::string_view what, int code);
    int code() const noexcept { return code_; }

private:
    int code_;
};

// Throws LmdbError unless rc is MDB_SUCCESS.
void check_lmdb(int rc, std::string_view what);

inline std::string_view as_view(const MDB_val& v) {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

inline MDB_val as_val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}

class Env {
public:
    struct Options {
        unsigned flags = 0;
        std::size_t map_size = 0;  // 0: keep the size recorded in the file
        unsigned max_readers = 0;  // 0: LMDB's default
        unsigned mode = 0640;
    };

    Env(const std::string& path, const Options& options);
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    MDB_env* get() const noexcept { return env_; }
    // Clears reader slots left by dead processes; returns how many.
    int clear_stale_readers();

private:
    MDB_env* env_ = nullptr;
};

// A transaction aborted on destruction unless committed.
class Txn {
public:
    Txn(const Env& env, unsigned flags);
    ~Txn();
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;

    MDB_txn* get() const noexcept { return txn_; }
    MDB_dbi open_db(const char* name, unsigned flags = 0);
    // nullopt when the named database does not exist (older snapshots).
    std::optional<MDB_dbi> open_existing_db(const char* name);
    std::optional<std::string_view> get(MDB_dbi dbi, std::string_view key) const;
    void put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
    // false when the key was not there.
    bool del(MDB_dbi dbi, std::string_view key);
    void commit();

private:
    MDB_txn* txn_ = nullptr;
};

// For a walk over a whole database: unmaps the map pages it has read, now
// and then (madvise MADV_DONTNEED), so its resident size stays flat however
// large the file. LMDB maps the file shared, so nothing is lost: a page
// touched again comes back from the page cache.
class PageReleaser {
public:
    // `bytes` points into the map (a key or value just read).
    void read(std::string_view bytes);

private:
    std::uintptr_t low_ = UINTPTR_MAX;  // the span read since the last release
    std::uintptr_t high_ = 0;
    std::size_t reads_ = 0;
};

// Walks a database in key order; key()/value() valid until the next step.
class Cursor {
public:
    Cursor(const Txn& txn, MDB_dbi dbi);
    ~Cursor();
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;

    bool next();
    // Moves to the first key >= `key` (next() goes on from there); false when
    // there is none.
    bool seek(std::string_view key);
    // Moves to the last key; false when the database is empty.
    bool last();
    // Writes through a write transaction's cursor (MDB_APPEND: keys in
    // ascending order, each page written once).
    void put(std::string_view key, std::string_view value, unsigned flags);
    std::string_view key() const { return as_view(key_); }
    std::string_view value() const { return as_view(value_); }

private:
    bool position(MDB_cursor_op op);

    MDB_cursor* cursor_ = nullptr;
    MDB_val key_{};
    MDB_val value_{};
    bool started_ = false;
};

}  // namespace segcore
