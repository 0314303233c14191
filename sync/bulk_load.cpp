#include "sync/bulk_load.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "segcore/lmdb.h"
#include "sync/key_sorter.h"
#include "sync/pipeline.h"
#include "sync/profile_fast.h"
#include "sync/progress.h"

namespace segsync {
namespace {

namespace schema = segcore::schema;

// Parsing threads: CI machines have two cores; this thread (reading, and
// the lines the fast path leaves) needs little.
constexpr std::size_t kParseThreads = 2;
// Lines parsed before the parsing threads start (see parse_all).
constexpr std::size_t kFirstLines = 1000;
// Blocks of lines in flight: enough to keep every thread busy while this
// one waits for the next block in order. Blocks of 256 KiB rather than a
// whole read(2) of 1 MiB: their buffers are fresh memory this thread first
// touches while the parsing threads wait, a page fault per 4 KiB.
constexpr std::size_t kBlocksInFlight = 4 * kParseThreads;
constexpr std::size_t kBlockBytes = 256 * 1024;
// Sorted records handed to the writing thread at a time, and batches in
// flight: the merge goes on while a checkpoint commit waits for the disk.
constexpr std::size_t kBatchBytes = 512 * 1024;
constexpr std::size_t kBatchesInFlight = 8;
// Records per staging commit: bounds LMDB's dirty pages in memory. Measured
// (tests/bench/segsync.sh): 100 000 imports faster than 250 000 or
// 1 000 000, whose longer dirty-page lists cost LMDB more than the commits
// they save.
constexpr std::size_t kCheckpointEvery = 100000;

constexpr std::uint64_t kNoLine = std::numeric_limits<std::uint64_t>::max();

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

// Input lines on their way through a parsing thread.
struct LineBlock {
    std::vector<char> text;        // whole lines as read, newlines included
    std::uint64_t first_line = 0;  // the number of text's first line
    std::uint64_t end_line = 0;    // and of the last, for progress
    std::uint64_t end_offset = 0;
    // Lines the fast path left to the full parser: offset, size, number.
    struct Line {
        std::size_t offset;
        std::size_t size;
        std::uint64_t number;
    };
    std::vector<Line> unparsed;
};

// For the aliases file: every line goes to the full parser.
struct NoFastPath {
    bool parse(std::string_view, std::string&, std::string&) { return false; }
};

// What the parsing threads share with this one.
template <typename Fast>
struct Parsers {
    std::vector<Fast> fast;                            // one per thread
    std::vector<std::unique_ptr<KeySorter>> sorters;   // one per thread, and this thread's last
    std::vector<std::pair<std::string, std::string>> scratch;  // key, value per thread

    std::vector<KeySorter*> all_sorters() const {
        std::vector<KeySorter*> all;
        for (const auto& sorter : sorters) all.push_back(sorter.get());
        return all;
    }
};

// Parses every line of `reader`: each parsing thread with its fast path into
// its own sorter, this thread with `full`, in input order, the lines the
// fast paths leave. `failing_line` is the line `full` threw for.
template <typename Fast, typename Full>
void parse_all(NdjsonReader& reader, Parsers<Fast>& parsers, Full full, std::uint64_t& failing_line,
               const LoadOptions& options) {
    Progress progress(options.progress, reader.path(), reader.size());
    KeySorter& full_sorter = *parsers.sorters.back();
    std::string key, value;
    auto parse_here = [&](std::string_view line, std::uint64_t number) {
        failing_line = number;
        full(line, Location{reader.path(), number}, key, value);
        failing_line = kNoLine;
        full_sorter.add(key, value, number);
    };
    // The first lines here, in order: they catalogue the attribute names the
    // fast paths need, which a parsing thread would otherwise leave to this
    // thread line after line while the first blocks are in flight.
    std::string_view first;
    for (std::size_t i = 0; i < kFirstLines && reader.next_line(first); ++i) {
        if (parsers.fast[0].parse(first, key, value))
            full_sorter.add(key, value, reader.lines());
        else
            parse_here(first, reader.lines());
    }
    auto fill = [&](LineBlock& block) {
        std::string_view lines;
        block.first_line = reader.lines() + 1;
        if (!reader.next_lines(lines, kBlockBytes)) return false;
        block.text.assign(lines.begin(), lines.end());
        block.end_line = reader.lines();
        block.end_offset = reader.offset();
        return true;
    };
    auto work = [&](LineBlock& block, std::size_t thread) {
        block.unparsed.clear();
        auto& [fast_key, fast_value] = parsers.scratch[thread];
        KeySorter& sorter = *parsers.sorters[thread];
        const char* text = block.text.data();
        const char* end = text + block.text.size();
        for (std::uint64_t number = block.first_line; text != end; ++number) {
            auto* newline = static_cast<const char*>(std::memchr(text, '\n', static_cast<std::size_t>(end - text)));
            std::string_view line(text, static_cast<std::size_t>((newline ? newline : end) - text));
            text = newline ? newline + 1 : end;
            if (is_blank(line)) continue;
            if (parsers.fast[thread].parse(line, fast_key, fast_value))
                sorter.add(fast_key, fast_value, number);
            else
                block.unparsed.push_back({static_cast<std::size_t>(line.data() - block.text.data()), line.size(), number});
        }
    };
    auto take = [&](LineBlock& block) {
        if (options.cancelled && options.cancelled()) throw Cancelled();
        for (const auto& line : block.unparsed)
            parse_here(std::string_view(block.text.data() + line.offset, line.size), line.number);
        progress.update(block.end_line, block.end_offset);
    };
    run_ordered<LineBlock>(parsers.fast.size(), kBlocksInFlight, fill, work, take);
    progress.finish(reader.lines(), reader.offset());
}

// Appends the sorted records on this thread, which owns LMDB's write
// transaction, while another merges the next batch.
template <typename Append>
std::size_t append_sorted(KeyMerger& merger, SnapshotWriter& writer, const std::string& path,
                          const LoadOptions& options, Append append) {
    struct Batch {
        ByteBuffer records;
    };
    std::atomic<bool> merged{false};
    std::size_t count = 0;
    std::uint64_t line = 0;
    auto fill = [&](Batch&) { return !merged.load(); };
    auto work = [&](Batch& batch, std::size_t) {
        batch.records.clear();
        FramedRecord record;
        while (batch.records.size() < kBatchBytes) {
            if (!merger.next(record)) {
                merged = true;
                return;
            }
            // After a repeat nothing more is written: the merge goes on only
            // to find the input's first repeat.
            if (!merger.duplicate()) batch.records.append(record.framed);
        }
    };
    auto take = [&](Batch& batch) {
        if (options.cancelled && options.cancelled()) throw Cancelled();
        for (std::size_t offset = 0; offset < batch.records.size();) {
            FramedRecord record = read_framed(batch.records.data(), offset);
            line = record.line;
            append(record.key, record.value);
            if (++count % kCheckpointEvery == 0) writer.checkpoint();
        }
    };
    try {
        run_ordered<Batch>(1, kBatchesInFlight, fill, work, take);
    } catch (const segcore::LmdbError& e) {  // MDB_MAP_FULL, I/O: not the input's fault
        throw ImportError(path + ":" + std::to_string(line) + ": " + e.what());
    }
    return count;
}

// `reject` throws the error for a repeated key.
template <typename Fast, typename Full, typename Append, typename Reject>
std::size_t load_sorted(NdjsonReader& reader, Parsers<Fast>& parsers, Full full, Append append,
                        Reject reject, SnapshotWriter& writer, const LoadOptions& options) {
    // One sorter per parsing thread and one for this thread's lines: each
    // touches memory only as it fills, and this one rarely does.
    std::size_t share = options.sort_memory / (parsers.fast.size() + 1);
    for (std::size_t i = 0; i <= parsers.fast.size(); ++i)
        parsers.sorters.push_back(std::make_unique<KeySorter>(options.temp_dir, share));
    parsers.scratch.resize(parsers.fast.size());
    std::uint64_t failing_line = kNoLine;
    try {
        parse_all(reader, parsers, full, failing_line, options);
    } catch (const ImportError&) {
        // Read line by line, a repeat before the bad line comes first.
        auto repeat = first_duplicate(parsers.all_sorters());
        if (repeat && repeat->line < failing_line) reject(*repeat);
        throw;
    }
    KeyMerger merger(parsers.all_sorters());
    std::size_t count = append_sorted(merger, writer, reader.path(), options, append);
    if (merger.duplicate()) reject(*merger.duplicate());
    return count;
}

}  // namespace

std::size_t load_profiles(NdjsonReader& reader, const Catalogue& catalogue,
                          AttributeCatalogue& attributes, SnapshotWriter& writer,
                          const LoadOptions& options) {
    std::mutex attributes_lock;
    Parsers<FastProfileParser> parsers;
    parsers.fast.reserve(kParseThreads);
    for (std::size_t i = 0; i < kParseThreads; ++i)
        parsers.fast.emplace_back(catalogue, attributes, attributes_lock);
    auto full = [&](std::string_view line, const Location& where, std::string& key, std::string& value) {
        std::unique_lock<std::mutex> lock(attributes_lock);
        Profile profile = parse_profile(parse_line(line, where), catalogue, attributes, where);
        lock.unlock();
        encode_profile_record(profile, key, value);
    };
    auto append = [&](std::string_view key, std::string_view value) { writer.append_profile(key, value); };
    auto reject = [&](const Duplicate& repeat) {
        auto kind = schema::decode_visitor_key_kind(repeat.key);
        throw ImportError(Location{reader.path(), repeat.line},
                          "duplicate visitor: " + std::string(schema::to_string(*kind)) + " id " +
                              quote(std::string_view(repeat.key).substr(1)) + " (first on line " +
                              std::to_string(repeat.first_line) + ")");
    };
    return load_sorted(reader, parsers, full, append, reject, writer, options);
}

std::size_t load_aliases(NdjsonReader& reader, SnapshotWriter& writer, const LoadOptions& options) {
    Parsers<NoFastPath> parsers;
    parsers.fast.resize(kParseThreads);
    auto full = [](std::string_view line, const Location& where, std::string& key, std::string& value) {
        Alias alias = parse_alias(parse_line(line, where), where);
        key = std::move(alias.anonymous);
        value = std::move(alias.known);
    };
    auto append = [&](std::string_view key, std::string_view value) { writer.append_alias(key, value); };
    auto reject = [&](const Duplicate& repeat) {
        throw ImportError(Location{reader.path(), repeat.line},
                          "duplicate alias: anonymous id " + quote(repeat.key) + " (first on line " +
                              std::to_string(repeat.first_line) + ")");
    };
    return load_sorted(reader, parsers, full, append, reject, writer, options);
}

}  // namespace segsync
