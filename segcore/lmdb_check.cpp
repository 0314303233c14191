#include "segcore/lmdb_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace segcore {
namespace {

static_assert(sizeof(void*) == 8, "the layout below is LMDB's on 64-bit platforms");

// LMDB 0.9's on-disk layout (mdb.c: MDB_page, MDB_node, MDB_db, MDB_meta).
constexpr std::size_t kPageHeader = 16;  // pgno u64, pad u16, flags u16, lower u16, upper u16
constexpr std::size_t kNodeHeader = 8;   // size or pgno (lo u16, hi u16), flags u16, key size u16
constexpr std::size_t kDbRecord = 48;    // pad u32, flags u16, depth u16, 4 counters u64, root u64
constexpr std::size_t kMetaSize = 136;   // magic, version, address, mapsize, 2 MDB_db, last_pg, txnid
constexpr std::uint32_t kMagic = 0xBEEFC0DE;
constexpr std::uint32_t kDataVersion = 1;
constexpr std::uint16_t kBranch = 0x01, kLeaf = 0x02, kOverflow = 0x04, kMeta = 0x08;
// P_DIRTY, P_LOOSE, P_KEEP: writer bookkeeping, never read on the read path.
constexpr std::uint16_t kWriterPageFlags = 0x10 | 0x4000 | 0x8000;
constexpr std::uint16_t kBigData = 0x01, kSubData = 0x02;
constexpr std::uint64_t kNoPage = ~std::uint64_t{0};
constexpr unsigned kMaxDepth = 32;  // CURSOR_STACK: LMDB refuses deeper trees itself
constexpr std::uint32_t kMinPageSize = 512, kMaxPageSize = 32768;

template <typename T>
T load(const unsigned char* at) {
    T value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

struct Db {
    std::uint16_t flags = 0;
    std::uint16_t depth = 0;
    std::uint64_t root = kNoPage;
};

Db load_db(const unsigned char* at) {
    return {load<std::uint16_t>(at + 4), load<std::uint16_t>(at + 6), load<std::uint64_t>(at + 40)};
}

struct Meta {
    std::uint32_t page_size = 0;
    Db main;
    std::uint64_t last_page = 0;
    std::uint64_t txnid = 0;
};

[[noreturn]] void fail(const std::string& what) { throw LmdbFileError("data.mdb is corrupt: " + what); }

class DataFile {
public:
    explicit DataFile(const std::string& path) : fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (fd_ < 0) throw LmdbFileError("cannot read " + path + ": " + std::strerror(errno));
    }
    ~DataFile() {
        if (fd_ >= 0) close(fd_);
    }
    DataFile(const DataFile&) = delete;
    DataFile& operator=(const DataFile&) = delete;

    // Through a window of the pages after `offset`: a tree written in key
    // order (MDB_APPEND) lies mostly in file order, so one pread(2) serves
    // many pages instead of one each. `n` is at most a page: the page size
    // is checked before any tree is read.
    void read(std::uint64_t offset, unsigned char* out, std::size_t n) const {
        if (offset < window_offset_ || offset + n > window_offset_ + window_size_) {
            if (!window_) window_.reset(new unsigned char[kWindow]);
            window_size_ = read_some(offset, window_.get(), kWindow, n);
            window_offset_ = offset;
        }
        std::memcpy(out, window_.get() + (offset - window_offset_), n);
    }
    // At least `needed` bytes at `offset`, up to `capacity`; returns how many.
    std::size_t read_some(std::uint64_t offset, unsigned char* out, std::size_t capacity, std::size_t needed) const {
        std::size_t done = 0;
        while (done < needed) {
            ssize_t got = pread(fd_, out + done, capacity - done, static_cast<off_t>(offset + done));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw LmdbFileError(std::string("cannot read data.mdb: ") + std::strerror(errno));
            if (got == 0)
                throw LmdbFileError("data.mdb is truncated: the data at byte " + std::to_string(offset) +
                                    " is past its end");
            done += static_cast<std::size_t>(got);
        }
        return done;
    }

    // Meta page `index` (0 or 1); page 1 starts `page_size` bytes in. Read
    // on its own, not through the window: a writer committing twice
    // overwrites the meta page of a reader's transaction, so it is read as
    // soon as it can be.
    Meta meta(int index, std::uint32_t page_size) const {
        unsigned char page[kPageHeader + kMetaSize];
        read_some(index == 0 ? 0 : page_size, page, sizeof page, sizeof page);
        const unsigned char* m = page + kPageHeader;
        if (!(load<std::uint16_t>(page + 10) & kMeta) || load<std::uint32_t>(m) != kMagic ||
            load<std::uint32_t>(m + 4) != kDataVersion)
            fail("meta page " + std::to_string(index) + " is not an LMDB meta page");
        Meta meta;
        meta.page_size = load<std::uint32_t>(m + 24);  // the free DB's md_pad
        meta.main = load_db(m + 24 + kDbRecord);
        meta.last_page = load<std::uint64_t>(m + 24 + 2 * kDbRecord);
        meta.txnid = load<std::uint64_t>(m + 32 + 2 * kDbRecord);
        return meta;
    }

private:
    static constexpr std::size_t kWindow = 256 * 1024;
    static_assert(kWindow >= kMaxPageSize, "a page must fit in the window");
    int fd_;
    mutable std::unique_ptr<unsigned char[]> window_;  // allocated on first use, never zeroed
    mutable std::uint64_t window_offset_ = 0;
    mutable std::size_t window_size_ = 0;
};

struct Metas {
    Meta pages[2];
};

Metas read_metas(const DataFile& file) {
    Metas metas;
    metas.pages[0] = file.meta(0, 0);
    std::uint32_t size = metas.pages[0].page_size;
    if (size < kMinPageSize || size > kMaxPageSize || (size & (size - 1)) != 0)
        fail("page size " + std::to_string(size));
    metas.pages[1] = file.meta(1, size);
    if (metas.pages[1].page_size != size) fail("the meta pages disagree on the page size");
    // No comparison of the file's size with the last page: a writer may be
    // extending the file meanwhile, and LMDB notes that the file may end
    // before its last page when the free list holds the final pages. What
    // counts is that every page a reader can reach is there: the walk reads
    // each one.
    for (const Meta& meta : metas.pages)
        if (meta.last_page < 1 || meta.last_page >= (std::uint64_t{1} << 40))
            fail("last page " + std::to_string(meta.last_page));
    return metas;
}

// Walks one meta's trees, reading each page into its own buffer.
class TreeCheck {
public:
    TreeCheck(const DataFile& file, const Meta& meta)
        : file_(file), size_(meta.page_size), last_(meta.last_page), seen_(meta.last_page + 1) {}

    void tree(const Db& db, bool main) {
        if (db.flags != 0) fail("a database has flags segedge never sets (" + std::to_string(db.flags) + ")");
        if (db.root == kNoPage) {
            if (db.depth != 0) fail("an empty database has depth " + std::to_string(db.depth));
            return;
        }
        if (db.depth == 0 || db.depth > kMaxDepth) fail("tree depth " + std::to_string(db.depth));
        page(db.root, 1, db.depth, main);
    }

private:
    void claim(std::uint64_t pgno, std::uint64_t count) {
        if (pgno < 2 || pgno > last_ || count > last_ - pgno + 1)
            fail("page number " + std::to_string(pgno) + " is outside the data");
        for (std::uint64_t p = pgno; p < pgno + count; ++p) {
            if (seen_[p]) fail("page " + std::to_string(p) + " is reached twice");
            seen_[p] = true;
        }
    }

    void page(std::uint64_t pgno, unsigned level, unsigned depth, bool main) {
        claim(pgno, 1);
        std::vector<unsigned char> buf(size_);
        file_.read(pgno * size_, buf.data(), size_);
        std::string where = "page " + std::to_string(pgno) + ": ";
        bool leaf = level == depth;
        std::uint16_t flags = load<std::uint16_t>(&buf[10]) & ~kWriterPageFlags;
        std::uint16_t lower = load<std::uint16_t>(&buf[12]), upper = load<std::uint16_t>(&buf[14]);
        if (load<std::uint64_t>(&buf[0]) != pgno) fail(where + "it names another page number");
        if (flags != (leaf ? kLeaf : kBranch)) fail(where + (leaf ? "not a leaf" : "not a branch"));
        if (lower < kPageHeader + 2 || lower > upper || upper > size_ || (lower - kPageHeader) % 2)
            fail(where + "bad free-space bounds");
        for (std::size_t i = 0; i < (lower - kPageHeader) / 2; ++i) {
            std::size_t at = load<std::uint16_t>(&buf[kPageHeader + 2 * i]);
            if (at < upper || at + kNodeHeader > size_) fail(where + "node " + std::to_string(i) + " is outside the page");
            const unsigned char* node = &buf[at];
            std::size_t key_end = at + kNodeHeader + load<std::uint16_t>(node + 6);
            if (key_end > size_) fail(where + "key " + std::to_string(i) + " overruns the page");
            std::uint64_t lo_hi = load<std::uint16_t>(node) | std::uint64_t{load<std::uint16_t>(node + 2)} << 16;
            std::uint16_t node_flags = load<std::uint16_t>(node + 4);
            if (!leaf)
                page(lo_hi | std::uint64_t{node_flags} << 32, level + 1, depth, main);
            else
                value(where, node_flags, lo_hi, key_end, buf, main);
        }
    }

    void value(const std::string& where, std::uint16_t flags, std::uint64_t size, std::size_t at,
               const std::vector<unsigned char>& buf, bool main) {
        if (flags == kBigData) {
            if (at + 8 > size_) fail(where + "an overflow page number overruns the page");
            overflow(load<std::uint64_t>(&buf[at]), size);
        } else if (flags == kSubData && main) {
            if (size != kDbRecord || at + kDbRecord > size_) fail(where + "a bad database record");
            tree(load_db(&buf[at]), false);
        } else if (flags != 0) {
            fail(where + "node flags " + std::to_string(flags));
        } else if (at + size > size_) {
            fail(where + "a value overruns the page");
        }
    }

    void overflow(std::uint64_t pgno, std::uint64_t value_size) {
        unsigned char head[kPageHeader];
        if (pgno < 2 || pgno > last_) fail("overflow page " + std::to_string(pgno) + " is outside the data");
        file_.read(pgno * size_, head, sizeof head);
        std::uint64_t pages = load<std::uint32_t>(head + 12);
        if (load<std::uint64_t>(head) != pgno || (load<std::uint16_t>(head + 10) & ~kWriterPageFlags) != kOverflow ||
            pages == 0 || value_size > pages * size_ - kPageHeader)
            fail("overflow page " + std::to_string(pgno) + " does not hold its value");
        claim(pgno, pages);
        if (value_size > 0) {  // its last byte is in the file
            unsigned char last;
            file_.read(pgno * size_ + kPageHeader + value_size - 1, &last, 1);
        }
    }

    const DataFile& file_;
    std::uint64_t size_;
    std::uint64_t last_;
    std::vector<bool> seen_;
};

}  // namespace

void check_lmdb_header(const std::string& data_file) {
    DataFile file(data_file);
    read_metas(file);
}

bool check_lmdb_tree(const std::string& data_file, std::uint64_t txnid) {
    DataFile file(data_file);
    Metas metas = read_metas(file);
    // LMDB writes transaction N's meta to page N % 2, and a reader of N
    // takes its roots from that page whatever it holds.
    const Meta& meta = metas.pages[txnid & 1];
    if (meta.txnid != txnid) return false;
    if (metas.pages[(txnid + 1) & 1].txnid == txnid) fail("both meta pages claim transaction " + std::to_string(txnid));
    TreeCheck(file, meta).tree(meta.main, true);
    return true;
}

}  // namespace segcore
