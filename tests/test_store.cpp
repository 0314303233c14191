#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "segcore/layout.h"
#include "segcore/store.h"
#include "snapshot_fixture.h"

namespace {

std::string publish_generation(const std::string& root, std::uint64_t generation,
                               std::vector<std::uint32_t> visitor_segments) {
    fixture::SnapshotSpec spec;
    spec.generation = generation;
    spec.segments = {fixture::segment(1, "vip", 10), fixture::segment(2, "newsletter", 5)};
    spec.profiles = {{"visitor-1", std::move(visitor_segments)}};
    std::string name = "snap-" + std::to_string(generation);
    fixture::write_snapshot(segcore::layout::snapshots_dir(root) + "/" + name, spec);
    fixture::publish(root, name);
    return name;
}

std::size_t segments_of(segcore::Store& store, const char* visitor) {
    std::uint32_t ids[8];
    return store.current()->lookup(segcore::schema::VisitorKind::anonymous, visitor, ids, 8).segments;
}

}  // namespace

TEST_CASE("a store without a published snapshot reports it and serves nothing", "[store]") {
    segcore::Store store(fixture::temp_dir(), 1000);
    auto error = store.refresh(0);
    CHECK_THAT(error, Catch::Contains("cannot open") && Catch::Contains("current"));
    CHECK(store.current() == nullptr);
}

TEST_CASE("a store switches to a newly published snapshot after the check interval", "[store]") {
    auto root = fixture::temp_dir();
    publish_generation(root, 1, {1});
    segcore::Store store(root, 1000);

    REQUIRE(store.refresh(0).empty());
    REQUIRE(store.current());
    CHECK(store.current()->meta().generation == 1);
    CHECK(segments_of(store, "visitor-1") == 1);

    publish_generation(root, 2, {1, 2});
    CHECK(store.refresh(500).empty());
    CHECK(store.current()->meta().generation == 1);  // not checked yet

    CHECK(store.refresh(1000).empty());
    CHECK(store.current()->meta().generation == 2);
    CHECK(segments_of(store, "visitor-1") == 2);
    CHECK(store.switched_at_ms() == 1000);
}

TEST_CASE("a store keeps its snapshot when the new one is broken", "[store]") {
    auto root = fixture::temp_dir();
    publish_generation(root, 1, {1});
    segcore::Store store(root, 0);
    REQUIRE(store.refresh(0).empty());

    SECTION("not an LMDB environment") {
        auto broken = segcore::layout::snapshots_dir(root) + "/snap-broken";
        std::filesystem::create_directories(broken);
        std::ofstream(broken + "/data.mdb") << std::string(8192, '\0');
        fixture::publish(root, "snap-broken");
    }
    SECTION("a schema version this build does not read") {
        fixture::SnapshotSpec spec;
        spec.generation = 2;
        spec.schema_version = segcore::schema::kVersion + 1;
        fixture::write_snapshot(segcore::layout::snapshots_dir(root) + "/snap-future", spec);
        fixture::publish(root, "snap-future");
    }

    auto error = store.refresh(1);
    CHECK_THAT(error, Catch::Contains("keeping the previous snapshot"));
    REQUIRE(store.current());
    CHECK(store.current()->meta().generation == 1);
    CHECK(segments_of(store, "visitor-1") == 1);

    // The same broken target is not retried (and not logged) again...
    CHECK(store.refresh(2).empty());
    // ...but the next publish is picked up.
    publish_generation(root, 3, {2});
    CHECK(store.refresh(3).empty());
    CHECK(store.current()->meta().generation == 3);
}

// A refused snapshot's directory, once pruned, can lend its inode number to
// a later one; simulated by repairing the refused directory and publishing
// it under a new name (same inode).
TEST_CASE("a new snapshot on a refused one's inode number is opened", "[store]") {
    auto root = fixture::temp_dir();
    publish_generation(root, 1, {1});
    segcore::Store store(root, 0);
    REQUIRE(store.refresh(0).empty());

    auto snapshots = segcore::layout::snapshots_dir(root);
    std::filesystem::create_directories(snapshots + "/snap-2");
    std::ofstream(snapshots + "/snap-2/data.mdb") << std::string(8192, '\0');
    fixture::publish(root, "snap-2");
    CHECK_THAT(store.refresh(1), Catch::Contains("keeping the previous snapshot"));

    std::filesystem::remove(snapshots + "/snap-2/data.mdb");
    std::filesystem::remove(snapshots + "/snap-2/lock.mdb");
    std::filesystem::rename(snapshots + "/snap-2", snapshots + "/snap-3");
    fixture::SnapshotSpec spec;
    spec.generation = 3;
    spec.segments = {fixture::segment(1, "vip", 10)};
    fixture::write_snapshot(snapshots + "/snap-3", spec);
    fixture::publish(root, "snap-3");
    CHECK(store.refresh(2).empty());
    REQUIRE(store.current());
    CHECK(store.current()->meta().generation == 3);
}

// Opening the directory in use a second time, and closing one of the two,
// would drop the process's LMDB reader lock on it (fcntl locks go with any
// close): other processes' stale-reader checks would then free its slot.
TEST_CASE("the snapshot in use is not opened again when the link names it another way", "[store]") {
    auto root = fixture::temp_dir();
    auto name = publish_generation(root, 1, {1});
    segcore::Store store(root, 0);
    REQUIRE(store.refresh(0).empty());
    segcore::Snapshot* in_use = store.current();

    auto link = segcore::layout::current_link(root);
    std::filesystem::remove(link);
    std::filesystem::create_directory_symlink(segcore::layout::snapshots_dir(root) + "/" + name, link);
    CHECK(store.refresh(1).empty());
    CHECK(store.current() == in_use);
}

TEST_CASE("a snapshot of the wrong schema version names both versions", "[store]") {
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    spec.schema_version = 99;
    fixture::write_snapshot(dir, spec);
    CHECK_THROWS_WITH(segcore::Snapshot(dir), Catch::Contains("99") && Catch::Contains("reads 1"));
}

TEST_CASE("lookups return ids as stored and nothing for unknown visitors", "[store]") {
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 10), fixture::segment(2, "newsletter", 5)};
    spec.profiles = {{"v", {1, 2}}, {"v", {2}, segcore::schema::VisitorKind::known}};
    fixture::write_snapshot(dir, spec);

    segcore::Snapshot snapshot(dir);
    std::uint32_t ids[4];
    auto found = snapshot.lookup(segcore::schema::VisitorKind::anonymous, "v", ids, 4);
    REQUIRE(found.segments == 2);
    CHECK(found.generation == 1);
    CHECK(ids[0] == 1);
    CHECK(ids[1] == 2);
    REQUIRE(snapshot.lookup(segcore::schema::VisitorKind::known, "v", ids, 4).segments == 1);
    CHECK(ids[0] == 2);
    CHECK(snapshot.lookup(segcore::schema::VisitorKind::anonymous, "nobody", ids, 4).segments == 0);
    CHECK(snapshot.segment(1)->name == "vip");
    CHECK(snapshot.segment(3) == nullptr);
    CHECK(snapshot.verify().profiles == 2);
}

TEST_CASE("verify rejects profiles whose ids are out of priority order or repeated", "[store]") {
    auto ids = GENERATE(std::vector<std::uint32_t>{2, 1}, std::vector<std::uint32_t>{1, 1});
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 10), fixture::segment(2, "newsletter", 5)};
    spec.profiles = {{"v", ids}};
    fixture::write_snapshot(dir, spec);
    CHECK_THROWS_WITH(segcore::Snapshot(dir).verify(), Catch::Contains("order"));
}

TEST_CASE("lookups report the generation committed in place after the snapshot was opened",
          "[store]") {
    namespace schema = segcore::schema;
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    spec.generation = 7;
    spec.segments = {fixture::segment(1, "vip", 10), fixture::segment(2, "newsletter", 5)};
    spec.profiles = {{"v", {1}}};
    fixture::write_snapshot(dir, spec);

    segcore::Snapshot snapshot(dir);
    std::uint32_t ids[4];
    CHECK(snapshot.lookup(schema::VisitorKind::anonymous, "v", ids, 4).generation == 7);
    CHECK(snapshot.generation() == 7);

    // A writer in another process applies a batch in place (a child, since
    // LMDB must not open one environment twice in a process).
    pid_t child = fork();
    if (child == 0) {
        segcore::Env::Options options;
        segcore::Env env(dir, options);
        segcore::Txn txn(env, 0);
        auto meta = txn.open_db(schema::kMetaDb);
        auto profiles = txn.open_db(schema::kProfilesDb);
        char key[schema::kMaxKeySize];
        auto len = schema::encode_visitor_key(schema::VisitorKind::anonymous, "v", key);
        txn.put(profiles, std::string_view(key, len), schema::encode_profile({1, 2}));
        txn.put(meta, schema::kMetaGeneration, schema::encode_u64(8));
        txn.commit();
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(status == 0);

    auto found = snapshot.lookup(schema::VisitorKind::anonymous, "v", ids, 4);
    CHECK(found.segments == 2);
    CHECK(found.generation == 8);
    CHECK(snapshot.generation() == 8);
    CHECK(snapshot.meta().generation == 7);  // as opened
}
