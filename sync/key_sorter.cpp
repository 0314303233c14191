#include "sync/key_sorter.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <new>
#include <utility>

#include "sync/error.h"

namespace segsync {
namespace {

// Each record, in memory and in a run file: this header, the key, the value.
struct Header {
    std::uint32_t key_size;
    std::uint32_t value_size;
    std::uint64_t line;
};

// Read and write buffer per run file.
constexpr std::size_t kRunBuffer = 128 * 1024;
// Run files of a level (0: spilled chunks) merged into one of the next
// level: a sorter's open runs, and the memory to read them back, grow with
// the logarithm of its input, each record rewritten once per level.
constexpr std::size_t kRunsPerLevel = 16;

constexpr std::size_t kHugeBuffer = std::size_t{1} << 20;

// Records are read in key order, all over the chunk: ask for the one
// `kPrefetchAhead` places on while copying this one, to hide memory latency.
constexpr std::size_t kPrefetchAhead = 8;

// 8 key bytes from `from`, big-endian, zero-padded: ordering by these never
// contradicts LMDB's order of keys that agree before `from`.
std::uint64_t window_of(std::string_view key, std::size_t from) {
    if (key.size() >= from + 8) {
        std::uint64_t word;
        std::memcpy(&word, key.data() + from, sizeof word);
        return __builtin_bswap64(word);  // x86 and ARM Linux are little-endian
    }
    unsigned char bytes[8] = {};
    if (key.size() > from) std::memcpy(bytes, key.data() + from, key.size() - from);
    std::uint64_t window = 0;
    for (unsigned char b : bytes) window = window << 8 | b;
    return window;
}

template <typename Entries>
void radix_sort(Entries& entries, Entries& scratch) {
    scratch.resize(entries.size());
    for (int shift = 0; shift < 64; shift += 8) {
        std::size_t counts[256] = {};
        for (const auto& e : entries) ++counts[(e.prefix >> shift) & 0xff];
        if (counts[(entries.front().prefix >> shift) & 0xff] == entries.size()) continue;
        std::size_t position = 0;
        for (auto& count : counts) position += std::exchange(count, position);
        for (const auto& e : entries) scratch[counts[(e.prefix >> shift) & 0xff]++] = e;
        entries.swap(scratch);  // capacities move with them: nothing allocated
    }
}

// A new run file, buffered; unlinked at once.
class RunWriter {
public:
    explicit RunWriter(const std::string& dir) {
        std::string path = dir + "/.sort-XXXXXX";
        fd_ = mkostemp(path.data(), O_CLOEXEC);
        if (fd_ < 0) throw system_error("cannot create a sort run in " + dir);
        unlink(path.c_str());
        buffer_.reserve(kRunBuffer);
    }
    ~RunWriter() {
        if (fd_ >= 0) close(fd_);
    }
    RunWriter(const RunWriter&) = delete;
    RunWriter& operator=(const RunWriter&) = delete;

    void write(const char* framed, std::size_t size) {
        if (buffer_.size() + size > kRunBuffer) flush();
        buffer_.insert(buffer_.end(), framed, framed + size);
    }

    // The file, written; the caller owns it from now.
    int finish() {
        flush();
        return std::exchange(fd_, -1);
    }

private:
    void flush() {
        const char* data = buffer_.data();
        std::size_t size = buffer_.size();
        while (size > 0) {
            ssize_t wrote = ::write(fd_, data, size);
            if (wrote < 0 && errno == EINTR) continue;
            if (wrote < 0) throw system_error("writing a sort run");
            data += wrote;
            size -= static_cast<std::size_t>(wrote);
        }
        buffer_.clear();
    }

    int fd_ = -1;
    std::vector<char> buffer_;
};

}  // namespace

void* allocate_buffer(std::size_t bytes) {
    if (bytes < kHugeBuffer) {
        void* data = std::malloc(bytes ? bytes : 1);
        if (!data) throw std::bad_alloc();
        return data;
    }
    void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) throw std::bad_alloc();
    madvise(data, bytes, MADV_HUGEPAGE);  // advice: without it, ordinary pages
    return data;
}

void free_buffer(void* data, std::size_t bytes) {
    if (bytes < kHugeBuffer)
        std::free(data);
    else
        munmap(data, bytes);
}

ByteBuffer::~ByteBuffer() {
    if (data_) free_buffer(data_, capacity_);
}

void ByteBuffer::reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    char* data = static_cast<char*>(allocate_buffer(capacity));
    if (size_ > 0) std::memcpy(data, data_, size_);
    if (data_) free_buffer(data_, capacity_);
    data_ = data;
    capacity_ = capacity;
}

void append_framed(ByteBuffer& out, std::string_view key, std::string_view value, std::uint64_t line) {
    Header header{static_cast<std::uint32_t>(key.size()), static_cast<std::uint32_t>(value.size()), line};
    char* record = out.extend(sizeof header + key.size() + value.size());
    std::memcpy(record, &header, sizeof header);
    std::memcpy(record + sizeof header, key.data(), key.size());
    std::memcpy(record + sizeof header + key.size(), value.data(), value.size());
}

FramedRecord read_framed(const char* framed, std::size_t& offset) {
    Header header;
    std::memcpy(&header, framed + offset, sizeof header);
    const char* start = framed + offset;
    const char* key = start + sizeof header;
    std::size_t size = sizeof header + header.key_size + header.value_size;
    offset += size;
    return {std::string_view(key, header.key_size), std::string_view(key + header.key_size, header.value_size),
            header.line, std::string_view(start, size)};
}

struct KeySorter::Entry {
    std::uint64_t prefix;  // the key's bytes where keys start to differ
    std::uint64_t offset;  // of the record's header in arena_
};

// One sorted sequence of records, read in order: a spilled file, or a
// sorter's chunk still in memory.
class SortedRun {
public:
    explicit SortedRun(int fd) : fd_(fd), buffer_(kRunBuffer) {
        if (lseek(fd, 0, SEEK_SET) != 0) throw system_error("rewinding a sort run");
    }
    explicit SortedRun(const KeySorter& sorter) : sorter_(&sorter) {}

    // Moves to the next record; false after the last.
    bool next() { return sorter_ ? next_in_memory() : next_in_file(); }

    // Key order, then line order: a repeated key's records come out in the
    // order of their lines.
    bool after(const SortedRun& other) const {
        if (prefix_ != other.prefix_) return prefix_ > other.prefix_;
        int c = record.key.compare(other.record.key);
        return c != 0 ? c > 0 : record.line > other.record.line;
    }

    FramedRecord record;

private:
    void take(const char* buffer, std::size_t offset) {
        record = read_framed(buffer, offset);
        prefix_ = window_of(record.key, 0);
    }

    bool next_in_memory() {
        const auto& entries = sorter_->entries_;
        if (index_ == entries.size()) return false;
        if (index_ + kPrefetchAhead < entries.size())
            __builtin_prefetch(sorter_->arena_.data() + entries[index_ + kPrefetchAhead].offset);
        take(sorter_->arena_.data(), entries[index_++].offset);
        return true;
    }

    bool next_in_file() {
        Header header;
        if (!ensure(sizeof header)) return false;
        std::memcpy(&header, buffer_.data() + begin_, sizeof header);
        std::size_t size = sizeof header + header.key_size + header.value_size;
        if (!ensure(size)) throw ImportError("sort run truncated");
        take(buffer_.data(), begin_);
        begin_ += size;
        return true;
    }

    // At least `size` unread bytes in the buffer; false at a clean end.
    bool ensure(std::size_t size) {
        if (end_ - begin_ >= size) return true;
        std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        if (buffer_.size() < size) buffer_.resize(size);
        while (end_ < size) {
            ssize_t got = read(fd_, buffer_.data() + end_, buffer_.size() - end_);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw system_error("reading a sort run");
            if (got == 0) break;
            end_ += static_cast<std::size_t>(got);
        }
        if (end_ >= size) return true;
        if (end_ == 0) return false;
        throw ImportError("sort run truncated");
    }

    std::uint64_t prefix_ = 0;  // the key's first 8 bytes: most comparisons end there
    int fd_ = -1;
    std::vector<char> buffer_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    const KeySorter* sorter_ = nullptr;
    std::size_t index_ = 0;
};

// Every record of several runs, in (key, line) order.
class RunMerge {
public:
    explicit RunMerge(std::vector<std::unique_ptr<SortedRun>> runs) : runs_(std::move(runs)) {
        for (auto& run : runs_)
            if (run->next()) heap_.push_back(run.get());
        std::make_heap(heap_.begin(), heap_.end(), later);
    }

    // The next record, or nullptr after the last; valid until the next call.
    const SortedRun* next() {
        if (current_ && current_->next()) {
            heap_.push_back(current_);
            std::push_heap(heap_.begin(), heap_.end(), later);
        }
        current_ = nullptr;
        if (heap_.empty()) return nullptr;
        std::pop_heap(heap_.begin(), heap_.end(), later);
        current_ = heap_.back();
        heap_.pop_back();
        return current_;
    }

private:
    // A lambda, not a function pointer, so the heap operations inline it.
    static constexpr auto later = [](const SortedRun* a, const SortedRun* b) { return a->after(*b); };

    std::vector<std::unique_ptr<SortedRun>> runs_;
    std::vector<SortedRun*> heap_;  // runs not yet exhausted, smallest record on top
    SortedRun* current_ = nullptr;
};

KeySorter::KeySorter(std::string dir, std::size_t memory) : dir_(std::move(dir)) {
    // Reserved once and never reallocated: a chunk costs no copy, and memory
    // is bounded whatever the input's size (untouched pages cost nothing).
    arena_.reserve(memory / 3 * 2);
    entries_.reserve(memory / 6 / sizeof(Entry));
    scratch_.reserve(entries_.capacity());
}

KeySorter::~KeySorter() {
    for (const auto& run : run_files_) close(run.fd);
}

void KeySorter::add(std::string_view key, std::string_view value, std::uint64_t line) {
    std::size_t size = sizeof(Header) + key.size() + value.size();
    if (arena_.size() + size > arena_.capacity() || entries_.size() == entries_.capacity()) spill();
    entries_.push_back(Entry{0, arena_.size()});
    append_framed(arena_, key, value, line);
    ++count_;
}

std::string_view KeySorter::key_at(const Entry& entry) const {
    std::size_t offset = entry.offset;
    return read_framed(arena_.data(), offset).key;
}

std::uint64_t KeySorter::line_at(const Entry& entry) const {
    std::size_t offset = entry.offset;
    return read_framed(arena_.data(), offset).line;
}

// Radix sort on 8 key bytes past what all keys share (visitor ids often
// share a prefix: "kcust-00..."), then a comparison sort (key, then line)
// where those 8 bytes tie.
void KeySorter::sort_chunk() {
    if (entries_.empty()) return;
    std::string_view first = key_at(entries_.front());
    std::size_t shared = first.size();
    for (const Entry& e : entries_) {
        std::string_view key = key_at(e);
        std::size_t n = std::min(shared, key.size());
        shared = static_cast<std::size_t>(
            std::mismatch(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(n), key.begin()).first -
            first.begin());
    }
    for (Entry& e : entries_) e.prefix = window_of(key_at(e), shared);
    radix_sort(entries_, scratch_);
    auto by_key_then_line = [this](const Entry& a, const Entry& b) {
        int c = key_at(a).compare(key_at(b));
        return c != 0 ? c < 0 : line_at(a) < line_at(b);
    };
    for (std::size_t begin = 0, end; begin < entries_.size(); begin = end) {
        for (end = begin + 1; end < entries_.size() && entries_[end].prefix == entries_[begin].prefix;) ++end;
        if (end - begin > 1)
            std::sort(entries_.begin() + static_cast<std::ptrdiff_t>(begin),
                      entries_.begin() + static_cast<std::ptrdiff_t>(end), by_key_then_line);
    }
}

void KeySorter::spill() {
    if (entries_.empty()) return;
    sort_chunk();
    RunWriter run(dir_);
    SortedRun sorted(*this);
    while (sorted.next()) run.write(sorted.record.framed.data(), sorted.record.framed.size());
    run_files_.push_back({run.finish(), 0});
    arena_.clear();
    entries_.clear();
    merge_runs();
}

// Like a counter in base kRunsPerLevel: the last runs of one level, when
// there are enough, become one run of the next. Every record is kept
// (repeats are only decided by KeyMerger).
void KeySorter::merge_runs() {
    for (;;) {
        std::size_t n = run_files_.size();
        if (n < kRunsPerLevel) return;
        unsigned level = run_files_.back().level;
        if (run_files_[n - kRunsPerLevel].level != level) return;
        std::vector<std::unique_ptr<SortedRun>> runs;
        for (std::size_t i = n - kRunsPerLevel; i < n; ++i)
            runs.push_back(std::make_unique<SortedRun>(run_files_[i].fd));
        RunMerge merge(std::move(runs));
        RunWriter merged(dir_);
        while (const SortedRun* run = merge.next())
            merged.write(run->record.framed.data(), run->record.framed.size());
        RunFile next{merged.finish(), level + 1};
        for (std::size_t i = n - kRunsPerLevel; i < n; ++i) close(run_files_[i].fd);
        run_files_.resize(n - kRunsPerLevel);
        run_files_.push_back(next);
    }
}

KeyMerger::KeyMerger(const std::vector<KeySorter*>& sorters) {
    std::vector<std::future<void>> sorting;
    for (KeySorter* sorter : sorters)
        sorting.push_back(std::async(std::launch::async, [sorter] { sorter->sort_chunk(); }));
    for (auto& sorted : sorting) sorted.get();
    std::vector<std::unique_ptr<SortedRun>> runs;
    for (KeySorter* sorter : sorters) {
        for (const auto& run : sorter->run_files_) runs.push_back(std::make_unique<SortedRun>(run.fd));
        runs.push_back(std::make_unique<SortedRun>(*sorter));
    }
    merge_ = std::make_unique<RunMerge>(std::move(runs));
}

KeyMerger::~KeyMerger() = default;

bool KeyMerger::next(FramedRecord& record) {
    while (const SortedRun* run = merge_->next()) {
        const FramedRecord& next = run->record;
        std::string_view previous(previous_.data(), previous_.size());
        if (started_ && next.key == previous) {
            // The first repeat of a key has its lowest repeated line.
            if (!repeated_ && (!duplicate_ || next.line < duplicate_->line))
                duplicate_ = Duplicate{std::string(previous), previous_line_, next.line};
            repeated_ = true;
            continue;
        }
        previous_.clear();
        previous_.append(next.key);
        previous_line_ = next.line;
        started_ = true;
        repeated_ = false;
        record = next;
        return true;
    }
    return false;
}

std::optional<Duplicate> first_duplicate(const std::vector<KeySorter*>& sorters) {
    KeyMerger merger(sorters);
    FramedRecord record;
    while (merger.next(record)) {
    }
    return merger.duplicate();
}

}  // namespace segsync
