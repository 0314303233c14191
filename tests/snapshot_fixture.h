// Writes small snapshots straight through segcore, for tests that need a
// database without going through the importer (or that need a broken one).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "segcore/base64.h"
#include "segcore/experiments.h"
#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "segcore/schema.h"

namespace fixture {

struct Profile {
    std::string id;
    std::vector<std::uint32_t> segment_ids;
    segcore::schema::VisitorKind kind = segcore::schema::VisitorKind::anonymous;
};

struct Block {
    std::string block;
    std::uint32_t segment = 0;
    std::string html;
    std::string variant;
};

struct Alias {
    std::string anonymous;
    std::string known;
};

struct SnapshotSpec {
    std::uint64_t generation = 1;
    std::uint32_t schema_version = segcore::schema::kVersion;
    std::vector<segcore::schema::SegmentDef> segments;
    std::vector<Profile> profiles;
    std::vector<Alias> aliases;
    bool aliases_db = true;  // false: a v1 snapshot from before aliases
    std::vector<Block> blocks;
    bool blocks_db = true;  // false: a snapshot missing a required database
    std::vector<segcore::experiments::ExperimentDef> experiments;  // in id order
};

// A canonical anonymous id that reads as `label` when decoded: the label's
// first 16 bytes, zero-padded, in base64url.
inline std::string visitor_id(const std::string& label) {
    char bytes[16] = {};
    label.copy(bytes, sizeof bytes);
    char text[22];
    segcore::base64::encode_url(bytes, sizeof bytes, text);
    return std::string(text, sizeof text);
}

inline std::string temp_dir() {
    char tmpl[] = "/tmp/segedge-test-XXXXXX";
    return mkdtemp(tmpl);
}

inline void write_snapshot(const std::string& dir, const SnapshotSpec& spec) {
    namespace schema = segcore::schema;
    std::filesystem::create_directories(dir);
    segcore::Env::Options options;
    options.map_size = 64u << 20;
    options.mode = 0660;
    segcore::Env env(dir, options);
    segcore::Txn txn(env, 0);
    auto meta = txn.open_db(schema::kMetaDb, MDB_CREATE);
    auto segments = txn.open_db(schema::kSegmentsDb, MDB_CREATE);
    auto profiles = txn.open_db(schema::kProfilesDb, MDB_CREATE);
    if (spec.blocks_db) {
        auto blocks = txn.open_db(schema::kBlocksDb, MDB_CREATE);
        for (const auto& b : spec.blocks) {
            char key[schema::kMaxBlockKeySize];
            auto len = schema::encode_block_key(b.block, b.segment, b.variant, key);
            txn.put(blocks, std::string_view(key, len), b.html);
        }
    }
    txn.put(meta, schema::kMetaSchemaVersion, schema::encode_u32(spec.schema_version));
    txn.put(meta, schema::kMetaGeneration, schema::encode_u64(spec.generation));
    txn.put(meta, schema::kMetaBuiltAt, schema::encode_u64(1700000000));
    txn.put(meta, schema::kMetaSource, "fixture");
    for (const auto& def : spec.segments)
        txn.put(segments, schema::encode_segment_key(def.id), schema::encode_segment(def));
    for (const auto& p : spec.profiles) {
        char key[schema::kMaxKeySize];
        auto len = schema::encode_visitor_key(p.kind, p.id, key);
        txn.put(profiles, std::string_view(key, len), schema::encode_profile(p.segment_ids));
    }
    if (spec.aliases_db) {
        auto aliases = txn.open_db(schema::kAliasesDb, MDB_CREATE);
        for (const auto& a : spec.aliases) txn.put(aliases, a.anonymous, a.known);
    }
    if (!spec.experiments.empty()) {
        auto experiments = txn.open_db(schema::kExperimentsDb, MDB_CREATE);
        for (const auto& e : spec.experiments) txn.put(experiments, e.id, segcore::experiments::encode(e));
    }
    txn.commit();
}

// Points ROOT/current at ROOT/snapshots/NAME the way segsync does.
inline void publish(const std::string& root, const std::string& name) {
    std::string tmp = segcore::layout::next_current_link(root);
    std::filesystem::remove(tmp);
    std::filesystem::create_directory_symlink(segcore::layout::current_target(name), tmp);
    std::filesystem::rename(tmp, segcore::layout::current_link(root));
}

inline segcore::schema::SegmentDef segment(std::uint32_t id, std::string name, int priority) {
    segcore::schema::SegmentDef def;
    def.id = id;
    def.name = std::move(name);
    def.priority = priority;
    return def;
}

}  // namespace fixture
