#include "sync/import.h"

#include <ctime>
#include <optional>

#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "sync/bulk_load.h"
#include "sync/editor.h"
#include "sync/experiments.h"
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

constexpr std::size_t kCancelEvery = 4096;
// Records per staging commit: bounds memory (dirty pages) on huge imports.
constexpr std::size_t kCheckpointEvery = 250000;

// Streams `reader` through `put`, which validates and writes one record or
// throws ImportError. Returns the number of records written. (Profiles and
// aliases, the large files, go through sync/bulk_load.h.)
template <typename Put>
std::size_t write_records(NdjsonReader& reader, SnapshotWriter& writer,
                          const ImportOptions& options, Put put) {
    Progress progress(options.progress, reader.path(), reader.size());
    std::size_t count = 0;
    Record record;
    try {
        while (reader.next(record)) {
            if (options.cancelled && count % kCancelEvery == 0 && options.cancelled())
                throw Cancelled();
            put(record.object);
            if (++count % kCheckpointEvery == 0) writer.checkpoint();
            progress.update(reader.lines(), reader.offset());
        }
    } catch (const segcore::LmdbError& e) {  // MDB_MAP_FULL, I/O: not the input's fault
        throw ImportError(reader.path() + ":" + std::to_string(reader.lines()) + ": " + e.what());
    }
    progress.finish(reader.lines(), reader.offset());
    return count;
}

std::size_t write_blocks(NdjsonReader& reader, const Catalogue& catalogue, SnapshotWriter& writer,
                         const ImportOptions& options,
                         const std::vector<segcore::experiments::ExperimentDef>* experiments) {
    BlockIndex index;
    VariantBlocks variants(experiments);
    std::size_t count = write_records(reader, writer, options, [&](const nlohmann::json& object) {
        if (VariantBlocks::is_variant_line(object)) {
            writer.put_block(variants.parse(object, catalogue, reader.where()));
            return;
        }
        BlockContent content = parse_block(object, catalogue, reader.where());
        index.add(content, catalogue, reader.where());
        variants.add_base(content);
        writer.put_block(content);
    });
    variants.check(reader.path(), catalogue);
    return count;
}

// The optional inputs beside segments and profiles.
struct ExtraInputs {
    NdjsonReader* aliases = nullptr;
    NdjsonReader* blocks = nullptr;
    const std::vector<segcore::experiments::ExperimentDef>* experiments = nullptr;
    std::uint64_t bytes = 0;
};

SnapshotExpectation build_snapshot(const std::string& dir, const ImportOptions& options,
                                   std::uint64_t generation, const Catalogue& catalogue,
                                   NdjsonReader& profiles, const ExtraInputs& extra,
                                   RfmStats& rfm) {
    SnapshotExpectation expected;
    expected.meta.schema_version = segcore::schema::kVersion;
    expected.meta.generation = generation;
    expected.meta.built_at = static_cast<std::uint64_t>(options.built_at ? options.built_at : std::time(nullptr));
    expected.meta.source = options.source;
    SnapshotWriter writer(dir, map_size_for(extra.bytes, options.min_map_size));
    writer.put_meta(expected.meta, options.feeds);
    for (const auto& def : catalogue.segments()) writer.put_segment(def);
    expected.segments = catalogue.segments().size();
    if (extra.experiments) {
        for (const auto& def : *extra.experiments) writer.put_experiment(def);
        expected.experiments = extra.experiments->size();
    }
    // Before the profiles: the small file fails fast.
    if (extra.blocks)
        expected.blocks = write_blocks(*extra.blocks, catalogue, writer, options, extra.experiments);
    AttributeCatalogue attributes;
    LoadOptions load{dir, options.progress, options.cancelled};
    expected.profiles = load_profiles(profiles, catalogue, attributes, writer, load);
    writer.put_attributes(attributes.added());
    expected.attributes = attributes.size();
    if (extra.aliases) expected.aliases = load_aliases(*extra.aliases, writer, load);
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
                           const Catalogue& catalogue, NdjsonReader& profiles,
                           const ExtraInputs& extra) {
    ImportResult result;
    result.generation = next_generation(root);
    StagingDir staging(root);
    SnapshotExpectation expected = build_snapshot(staging.path(), options, result.generation,
                                                  catalogue, profiles, extra, result.rfm);
    verify_snapshot(staging.path(), expected);
    std::string name = staging.publish(result.generation);
    result.segments = expected.segments;
    result.profiles = expected.profiles;
    result.aliases = expected.aliases;
    result.attributes = expected.attributes;
    result.blocks = expected.blocks;
    result.experiments = expected.experiments;
    result.snapshot_path = segcore::layout::snapshots_dir(root) + "/" + name;
    return result;
}

// Every input, opened (and the small segments file checked) before the
// database is touched, so a typo in a path changes nothing.
struct Inputs {
    explicit Inputs(const ImportOptions& options)
        : segments(options.segments_path), profiles(options.profiles_path) {
        if (!options.aliases_path.empty()) aliases.emplace(options.aliases_path);
        if (!options.blocks_path.empty()) blocks.emplace(options.blocks_path);
        if (!options.orders_path.empty()) orders_bytes = NdjsonReader(options.orders_path).size();
        catalogue = read_catalogue(segments);
        if (!options.experiments_path.empty()) {
            NdjsonReader reader(options.experiments_path);
            experiments = read_experiments(reader, catalogue);
        }
    }

    NdjsonReader segments;
    NdjsonReader profiles;
    std::optional<NdjsonReader> aliases;
    std::optional<NdjsonReader> blocks;
    Catalogue catalogue;
    std::optional<std::vector<segcore::experiments::ExperimentDef>> experiments;
    std::uint64_t orders_bytes = 0;  // RFM attributes grow with it too
};

ImportResult import_checked(const ImportOptions& options, Inputs& inputs) {
    std::string root = root_of(options.db);
    ExtraInputs extra;
    extra.aliases = inputs.aliases ? &*inputs.aliases : nullptr;
    extra.blocks = inputs.blocks ? &*inputs.blocks : nullptr;
    extra.experiments = inputs.experiments ? &*inputs.experiments : nullptr;
    extra.bytes = inputs.segments.size() + inputs.profiles.size() +
                  (inputs.aliases ? inputs.aliases->size() : 0) +
                  (inputs.blocks ? inputs.blocks->size() : 0) + inputs.orders_bytes;
    try {
        ImportResult result = import_locked(root, options, inputs.catalogue, inputs.profiles, extra);
        result.prune = prune_snapshots(root, options.keep);
        return result;
    } catch (const segcore::LmdbError& e) {  // creating or committing the environment
        throw ImportError(e.what());
    }
}

}  // namespace

ImportResult run_import(const ImportOptions& options) {
    Inputs inputs(options);
    std::string root = root_of(options.db);
    prepare_root(root);
    WriterLock lock(root);
    return import_checked(options, inputs);
}

ImportResult run_import(const ImportOptions& options, const WriterLock&) {
    Inputs inputs(options);
    return import_checked(options, inputs);
}

}  // namespace segsync
