#include "sync/import.h"

#include <ctime>

#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "sync/editor.h"
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

[[noreturn]] void reject_duplicate(const NdjsonReader& reader, const Visitor& visitor) {
    std::string message = "duplicate visitor: " +
                          std::string(segcore::schema::to_string(visitor.kind)) + " id " +
                          quote(visitor.id);
    if (auto first = find_profile_line(reader.path(), visitor, reader.lines()))
        message += " (first on line " + std::to_string(*first) + ")";
    throw ImportError(reader.where(), message);
}

constexpr std::size_t kCancelEvery = 4096;
// Profiles per staging commit: bounds memory (dirty pages) on huge imports.
constexpr std::size_t kCheckpointEvery = 250000;

// Returns the number of profiles written.
std::size_t write_profiles(NdjsonReader& reader, const Catalogue& catalogue,
                           AttributeCatalogue& attributes, SnapshotWriter& writer,
                           const ImportOptions& options) {
    Progress progress(options.progress, reader.path(), reader.size());
    std::size_t count = 0;
    Record record;
    try {
        while (reader.next(record)) {
            if (options.cancelled && count % kCancelEvery == 0 && options.cancelled())
                throw Cancelled();
            Profile profile = parse_profile(record.object, catalogue, attributes, reader.where());
            if (!writer.put_profile(profile)) reject_duplicate(reader, profile.visitor);
            if (++count % kCheckpointEvery == 0) writer.checkpoint();
            progress.update(reader.lines(), reader.offset());
        }
    } catch (const segcore::LmdbError& e) {  // MDB_MAP_FULL, I/O: not the input's fault
        throw ImportError(reader.path() + ":" + std::to_string(reader.lines()) + ": " + e.what());
    }
    progress.finish(reader.lines(), reader.offset());
    return count;
}

SnapshotExpectation build_snapshot(const std::string& dir, const ImportOptions& options,
                                   std::uint64_t generation, const Catalogue& catalogue,
                                   NdjsonReader& profiles, std::uint64_t input_bytes,
                                   RfmStats& rfm) {
    SnapshotExpectation expected;
    expected.meta.schema_version = segcore::schema::kVersion;
    expected.meta.generation = generation;
    expected.meta.built_at = static_cast<std::uint64_t>(std::time(nullptr));
    expected.meta.source = options.source;
    SnapshotWriter writer(dir, map_size_for(input_bytes, options.min_map_size));
    writer.put_meta(expected.meta, options.feeds);
    for (const auto& def : catalogue.segments()) writer.put_segment(def);
    expected.segments = catalogue.segments().size();
    AttributeCatalogue attributes;
    expected.profiles = write_profiles(profiles, catalogue, attributes, writer, options);
    writer.put_attributes(attributes.added());
    expected.attributes = attributes.size();
    if (!options.orders_path.empty()) {
        ProfileEditor editor(writer.txn());
        std::int64_t as_of = options.as_of ? options.as_of : std::time(nullptr);
        rfm = apply_rfm(options.orders_path, options.rfm, as_of, editor, dir, options.cancelled);
        expected.profiles += rfm.created;
        expected.attributes = editor.attributes().size();
    }
    writer.finish();
    return expected;
}

ImportResult import_locked(const std::string& root, const ImportOptions& options,
                           const Catalogue& catalogue, NdjsonReader& segments,
                           NdjsonReader& profiles) {
    ImportResult result;
    result.generation = next_generation(root);
    StagingDir staging(root);
    SnapshotExpectation expected =
        build_snapshot(staging.path(), options, result.generation, catalogue, profiles,
                       segments.size() + profiles.size(), result.rfm);
    verify_snapshot(staging.path(), expected);
    std::string name = staging.publish(result.generation);
    result.segments = expected.segments;
    result.profiles = expected.profiles;
    result.attributes = expected.attributes;
    result.snapshot_path = segcore::layout::snapshots_dir(root) + "/" + name;
    return result;
}

ImportResult import_checked(const std::string& root, const ImportOptions& options,
                            const Catalogue& catalogue, NdjsonReader& segments,
                            NdjsonReader& profiles) {
    try {
        ImportResult result = import_locked(root, options, catalogue, segments, profiles);
        result.prune = prune_snapshots(root, options.keep);
        return result;
    } catch (const segcore::LmdbError& e) {  // creating or committing the environment
        throw ImportError(e.what());
    }
}

}  // namespace

ImportResult run_import(const ImportOptions& options) {
    std::string root = root_of(options.db);
    // Inputs are opened and the small segments file checked before touching
    // the database, so a typo in a path changes nothing.
    NdjsonReader segments(options.segments_path);
    NdjsonReader profiles(options.profiles_path);
    if (!options.orders_path.empty()) NdjsonReader orders(options.orders_path);
    Catalogue catalogue = read_catalogue(segments);
    prepare_root(root);
    WriterLock lock(root);
    return import_checked(root, options, catalogue, segments, profiles);
}

ImportResult run_import(const ImportOptions& options, const WriterLock&) {
    NdjsonReader segments(options.segments_path);
    NdjsonReader profiles(options.profiles_path);
    Catalogue catalogue = read_catalogue(segments);
    return import_checked(root_of(options.db), options, catalogue, segments, profiles);
}

}  // namespace segsync
