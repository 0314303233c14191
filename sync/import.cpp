#include "sync/import.h"

#include <ctime>
#include <optional>

#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "sync/progress.h"
#include "sync/sources.h"
#include "sync/validate.h"
#include "sync/write.h"

namespace segsync {
namespace {

// "db/" and "db" name the same root; keep messages and paths free of "//".
std::string root_of(std::string db) {
    while (db.size() > 1 && db.back() == '/') db.pop_back();
    return db;
}

Catalogue read_catalogue(NdjsonReader& reader) {
    Catalogue catalogue;
    Record record;
    while (reader.next(record)) catalogue.add(record.object, reader.where());
    return catalogue;
}

[[noreturn]] void reject_duplicate(const NdjsonReader& reader, std::string message,
                                   std::optional<std::size_t> first) {
    if (first) message += " (first on line " + std::to_string(*first) + ")";
    throw ImportError(reader.where(), message);
}

// Streams `reader` through `put`, which validates and writes one record or
// throws ImportError. Returns the number of records written.
template <typename Put>
std::size_t write_records(NdjsonReader& reader, std::ostream* progress_out, Put put) {
    Progress progress(progress_out, reader.path(), reader.size());
    std::size_t count = 0;
    Record record;
    try {
        while (reader.next(record)) {
            put(record.object);
            ++count;
            progress.update(reader.lines(), reader.offset());
        }
    } catch (const segcore::LmdbError& e) {  // MDB_MAP_FULL, I/O errors
        throw ImportError(reader.where(), e.what());
    }
    progress.finish(reader.lines(), reader.offset());
    return count;
}

std::size_t write_profiles(NdjsonReader& reader, const Catalogue& catalogue,
                           SnapshotWriter& writer, std::ostream* progress) {
    return write_records(reader, progress, [&](const nlohmann::json& object) {
        Profile profile = parse_profile(object, catalogue, reader.where());
        if (writer.put_profile(profile)) return;
        const Visitor& visitor = profile.visitor;
        reject_duplicate(reader,
                         "duplicate visitor: " + std::string(segcore::schema::to_string(visitor.kind)) +
                             " id " + quote(visitor.id),
                         find_profile_line(reader.path(), visitor, reader.lines()));
    });
}

std::size_t write_aliases(NdjsonReader& reader, SnapshotWriter& writer, std::ostream* progress) {
    return write_records(reader, progress, [&](const nlohmann::json& object) {
        Alias alias = parse_alias(object, reader.where());
        if (writer.put_alias(alias)) return;
        reject_duplicate(reader, "duplicate alias: anonymous id " + quote(alias.anonymous),
                         find_alias_line(reader.path(), alias.anonymous, reader.lines()));
    });
}

std::size_t write_blocks(NdjsonReader& reader, const Catalogue& catalogue, SnapshotWriter& writer,
                         std::ostream* progress) {
    BlockIndex index;
    return write_records(reader, progress, [&](const nlohmann::json& object) {
        BlockContent content = parse_block(object, catalogue, reader.where());
        index.add(content, catalogue, reader.where());
        writer.put_block(content);
    });
}

// The optional inputs, opened with the others so that a bad path fails
// before anything is written.
struct OptionalInputs {
    std::optional<NdjsonReader> aliases;
    std::optional<NdjsonReader> blocks;

    explicit OptionalInputs(const ImportOptions& options) {
        if (!options.aliases_path.empty()) aliases.emplace(options.aliases_path);
        if (!options.blocks_path.empty()) blocks.emplace(options.blocks_path);
    }
    std::uint64_t size() const {
        return (aliases ? aliases->size() : 0) + (blocks ? blocks->size() : 0);
    }
};

SnapshotExpectation build_snapshot(const std::string& dir, const ImportOptions& options,
                                   std::uint64_t generation, const Catalogue& catalogue,
                                   NdjsonReader& profiles, OptionalInputs& optional,
                                   std::uint64_t input_bytes) {
    SnapshotExpectation expected;
    expected.meta.schema_version = segcore::schema::kVersion;
    expected.meta.generation = generation;
    expected.meta.built_at = static_cast<std::uint64_t>(std::time(nullptr));
    expected.meta.source = options.source;
    SnapshotWriter writer(dir, map_size_for(input_bytes));
    writer.put_meta(expected.meta);
    for (const auto& def : catalogue.segments()) writer.put_segment(def);
    expected.segments = catalogue.segments().size();
    // Before the profiles: the small file fails fast.
    if (optional.blocks)
        expected.blocks = write_blocks(*optional.blocks, catalogue, writer, options.progress);
    expected.profiles = write_profiles(profiles, catalogue, writer, options.progress);
    if (optional.aliases)
        expected.aliases = write_aliases(*optional.aliases, writer, options.progress);
    writer.finish();
    return expected;
}

ImportResult import_locked(const std::string& root, const ImportOptions& options,
                           const Catalogue& catalogue, NdjsonReader& segments,
                           NdjsonReader& profiles, OptionalInputs& optional) {
    ImportResult result;
    result.generation = next_generation(root);
    StagingDir staging(root);
    SnapshotExpectation expected =
        build_snapshot(staging.path(), options, result.generation, catalogue, profiles, optional,
                       segments.size() + profiles.size() + optional.size());
    verify_snapshot(staging.path(), expected);
    std::string name = staging.publish(result.generation);
    result.segments = expected.segments;
    result.profiles = expected.profiles;
    result.aliases = expected.aliases;
    result.blocks = expected.blocks;
    result.snapshot_path = segcore::layout::snapshots_dir(root) + "/" + name;
    return result;
}

}  // namespace

ImportResult run_import(const ImportOptions& options) {
    std::string root = root_of(options.db);
    // Inputs are opened and the small segments file checked before touching
    // the database, so a typo in a path changes nothing.
    NdjsonReader segments(options.segments_path);
    NdjsonReader profiles(options.profiles_path);
    OptionalInputs optional(options);
    Catalogue catalogue = read_catalogue(segments);
    prepare_root(root);
    WriterLock lock(root);
    try {
        ImportResult result = import_locked(root, options, catalogue, segments, profiles, optional);
        result.prune = prune_snapshots(root, options.keep);
        return result;
    } catch (const segcore::LmdbError& e) {  // creating or committing the environment
        throw ImportError(e.what());
    }
}

}  // namespace segsync
