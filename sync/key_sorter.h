// Stage 3's ordering: records of a large input put into LMDB key order with
// bounded memory (an external merge sort), so the writer appends each page
// once (MDB_APPEND) instead of inserting at random places, which with random
// visitor ids rewrites most of the tree on every commit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace segsync {

// Memory for the large buffers a bulk load fills and reuses: above 1 MiB,
// mapped with transparent huge pages where the kernel offers them (THP in
// "madvise" mode, Debian's default), which saves most of the page faults of
// first touching tens of megabytes.
void* allocate_buffer(std::size_t bytes);
void free_buffer(void* data, std::size_t bytes);

template <typename T>
struct BufferAllocator {
    using value_type = T;
    BufferAllocator() = default;
    template <typename U>
    BufferAllocator(const BufferAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(allocate_buffer(n * sizeof(T))); }
    void deallocate(T* data, std::size_t n) noexcept { free_buffer(data, n * sizeof(T)); }
    // resize() leaves new elements uninitialised (they are written at once),
    // instead of zeroing them first.
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
    template <typename U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <typename U>
    bool operator==(const BufferAllocator<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const BufferAllocator<U>&) const noexcept { return false; }
};

template <typename T>
using BulkVector = std::vector<T, BufferAllocator<T>>;

// Bytes appended to a reused buffer: no zeroing first (unlike a vector's
// resize), and large ones on allocate_buffer's pages.
class ByteBuffer {
public:
    ByteBuffer() = default;
    ~ByteBuffer();
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    // Grows the capacity to at least `capacity`, keeping the contents.
    void reserve(std::size_t capacity);
    // `n` more bytes at the end, for the caller to write.
    char* extend(std::size_t n) {
        if (size_ + n > capacity_) reserve(std::max(size_ + n, 2 * capacity_));
        char* end = data_ + size_;
        size_ += n;
        return end;
    }
    void append(std::string_view bytes) {
        if (!bytes.empty()) std::memcpy(extend(bytes.size()), bytes.data(), bytes.size());
    }
    void clear() noexcept { size_ = 0; }
    const char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }

private:
    char* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// A record as KeySorter frames it in memory and in its run files.
struct FramedRecord {
    std::string_view key;
    std::string_view value;
    std::uint64_t line = 0;
    std::string_view framed;  // all of it, as framed: to copy it on at once
};
void append_framed(ByteBuffer& out, std::string_view key, std::string_view value, std::uint64_t line);
// The record at `offset` in `framed`; moves `offset` past it.
FramedRecord read_framed(const char* framed, std::size_t& offset);

class SortedRun;
class RunMerge;

// Sorts what one thread adds: chunks that fill `memory` bytes are sorted and
// spilled to unlinked temporary files in `dir` (gone with the process, even
// after a crash), merged by sixteens as they pile up; the last chunk stays in
// memory.
class KeySorter {
public:
    KeySorter(std::string dir, std::size_t memory);
    ~KeySorter();
    KeySorter(const KeySorter&) = delete;
    KeySorter& operator=(const KeySorter&) = delete;

    // `line`: where the record came from, for repeated keys.
    void add(std::string_view key, std::string_view value, std::uint64_t line);
    std::size_t size() const noexcept { return count_; }

private:
    friend class KeyMerger;
    friend class SortedRun;
    struct Entry;

    std::string_view key_at(const Entry& entry) const;
    std::uint64_t line_at(const Entry& entry) const;
    void sort_chunk();
    void spill();
    void merge_runs();

    std::string dir_;
    ByteBuffer arena_;           // the current chunk's records, framed
    BulkVector<Entry> entries_;  // and their index, sorted before a spill
    BulkVector<Entry> scratch_;  // the radix sort's other half
    struct RunFile {
        int fd;
        unsigned level;  // 0: a spilled chunk; n + 1: merged from runs of level n
    };
    std::vector<RunFile> run_files_;
    std::size_t count_ = 0;
};

// A key given more than once: the lines of its first two records.
struct Duplicate {
    std::string key;
    std::uint64_t first_line = 0;
    std::uint64_t line = 0;
};

// The records of one or more sorters, read as one in key order. The sorters
// must outlive the merger, and nothing more may be added to them.
class KeyMerger {
public:
    // Sorts the chunks still in memory, one thread per sorter.
    explicit KeyMerger(const std::vector<KeySorter*>& sorters);
    ~KeyMerger();
    KeyMerger(const KeyMerger&) = delete;
    KeyMerger& operator=(const KeyMerger&) = delete;

    // The next record in ascending key order (LMDB's byte order); views
    // valid until the next call. A key's later records (by line) are not
    // returned, only noted in duplicate(). false after the last.
    bool next(FramedRecord& record);
    // Of the repeats next() has passed, the one whose second record comes
    // first in the input: the one a writer reading line by line finds.
    const std::optional<Duplicate>& duplicate() const noexcept { return duplicate_; }

private:
    std::unique_ptr<RunMerge> merge_;
    ByteBuffer previous_;  // the last key returned
    std::uint64_t previous_line_ = 0;
    bool started_ = false;
    bool repeated_ = false;
    std::optional<Duplicate> duplicate_;
};

// Reads all of `sorters`: the input's first repeat, if any.
std::optional<Duplicate> first_duplicate(const std::vector<KeySorter*>& sorters);

}  // namespace segsync
