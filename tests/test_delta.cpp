// Delta batches applied in place through segsync::LiveDb: one transaction
// per batch, generation + 1, all or nothing, and the map growing (or, at
// its limit, refusing) without touching the live data.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "segcore/snapshot.h"
#include "sync/delta.h"
#include "sync/live.h"
#include "sync_fixture.h"

namespace {

using fixture::dump;
using fixture::write_file;

std::uint64_t apply_file(const std::string& db, const std::string& path,
                         segsync::DeltaStats* stats = nullptr, std::size_t max_map = 0) {
    segsync::LiveDb live(db, {max_map});
    return live.apply("test", "batch", 0, [&](segsync::ProfileEditor& editor) {
        segsync::NdjsonReader reader(path);
        auto applied = segsync::apply_delta(reader, editor, nullptr);
        if (stats) *stats = applied;
    });
}

std::uint64_t generation(const std::string& db) { return segsync::LiveDb(db, {}).generation(); }

// `count` visitors entering vip, with canonical anonymous ids.
std::string enters(int count) {
    std::string lines;
    char id[32];
    for (int i = 0; i < count; ++i) {
        std::snprintf(id, sizeof id, "visitor%014dA", i);
        lines += R"({"op":"enter","id":")" + std::string(id) + R"(","kind":"anonymous","segment":"vip"})" "\n";
    }
    return lines;
}

const std::string kProfiles =
    R"({"id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segments":["news"],"attributes":{"tier":"gold","score":2}})" "\n"
    R"({"id":"c-1","kind":"known","segments":["vip"]})" "\n";

}  // namespace

TEST_CASE("a delta batch applies every kind of change in file order", "[delta]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, kProfiles);
    auto batch = write_file(tmp.path() + "/d.ndjson",
        R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segment":"vip"})" "\n"
        R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv02A","kind":"anonymous","segment":"news"})" "\n"
        R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv02A","kind":"anonymous","segment":"news"})" "\n"
        "\n"
        R"({"op":"exit","id":"c-1","kind":"known","segment":"vip"})" "\n"
        R"({"op":"exit","id":"nobody","kind":"known","segment":"vip"})" "\n"
        R"({"op":"upsert","id":"vvvvvvvvvvvvvvvvvvv03A","kind":"anonymous","segments":["news","vip"],"attributes":{"lifecycle":"new"}})" "\n"
        R"({"op":"upsert","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","attributes":{"score":null,"rfm_recency":5}})" "\n"
        R"({"op":"delete","id":"vvvvvvvvvvvvvvvvvvv02A","kind":"anonymous"})" "\n"
        R"({"op":"alias","anonymous":"vvvvvvvvvvvvvvvvvvv01A","known":"c-1"})" "\n");
    segsync::DeltaStats stats;
    CHECK(apply_file(db, batch, &stats) == 2);
    CHECK(stats.changes == 9);
    CHECK(stats.enters == 3);
    CHECK(stats.exits == 2);
    CHECK(stats.upserts == 2);
    CHECK(stats.deletes == 1);
    CHECK(stats.aliases == 1);
    // c-1 lost its only segment and had no attributes: gone. v-1 keeps tier.
    CHECK(dump(db, "profiles") ==
          R"({"attributes":{"rfm_recency":5,"tier":"gold"},"id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segments":["vip","news"]})" "\n"
          R"({"attributes":{"lifecycle":"new"},"id":"vvvvvvvvvvvvvvvvvvv03A","kind":"anonymous","segments":["vip","news"]})" "\n");
    CHECK(dump(db, "aliases") == R"({"anonymous":"vvvvvvvvvvvvvvvvvvv01A","known":"c-1"})" "\n");
    CHECK(dump(db, "attributes") ==
          R"({"name":"score","type":"number"})" "\n" R"({"name":"tier","type":"text"})" "\n"
          R"({"name":"lifecycle","type":"text"})" "\n" R"({"name":"rfm_recency","type":"number"})" "\n");
    CHECK(segcore::Snapshot(db + "/current").verify().aliases == 1);
}

TEST_CASE("a delta batch with one bad line is rejected whole, naming file and line", "[delta]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, kProfiles);
    std::string before = dump(db, "profiles");
    std::string good = R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv09A","kind":"anonymous","segment":"vip"})" "\n";
    auto [line, expected] = GENERATE(table<std::string, std::string>({
        {R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segment":"vipp"})", ":2: unknown segment \"vipp\""},
        {R"({"op":"teleport","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous"})", ":2: unknown op \"teleport\""},
        {R"({"op":"enter","id":"v 1","kind":"anonymous","segment":"vip"})", ":2: anonymous id \"v 1\" can never match a cookie"},
        {R"({"op":"exit","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segment":"vip","extra":1})", ":2: unknown field \"extra\""},
        {R"({"op":"upsert","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous"})", ":2: upsert needs \"segments\", \"attributes\" or both"},
        {R"({"op":"upsert","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","attributes":{"tier":3}})", ":2: attribute \"tier\" is a text, got a number"},
        {R"({"op":"upsert","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","attributes":{"Bad":3}})", ":2: invalid attribute name \"Bad\""},
        {R"({"op":"upsert","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","attributes":{"x":[1]}})", ":2: attribute \"x\" must be a number or a string (or null to remove it), got array"},
        {R"({"op":"alias","anonymous":"vvvvvvvvvvvvvvvvvvv01A"})", ":2: missing field \"known\""},
        {R"({"op":"delete","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous"} trailing)", ":2: invalid JSON"},
    }));
    auto batch = write_file(tmp.path() + "/d.ndjson", good + line + "\n" + good);
    try {
        apply_file(db, batch);
        FAIL("the batch was applied");
    } catch (const segsync::ImportError& e) {
        CHECK_THAT(e.what(), Catch::StartsWith(batch + expected));
        CHECK(e.about_input());
    }
    CHECK(generation(db) == 1);
    CHECK(dump(db, "profiles") == before);
}

TEST_CASE("a delta needs a published snapshot", "[delta]") {
    fixture::TempDir tmp;
    try {
        segsync::LiveDb live(tmp.path() + "/db", {});
        FAIL("opened a database that does not exist");
    } catch (const segsync::FeedError& e) {
        CHECK_THAT(e.what(), Catch::Contains("a full snapshot must come first"));
    }
}

TEST_CASE("the map grows before a batch that would not fit", "[delta][map]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, kProfiles, 1 << 20);  // a 1 MiB map
    auto batch = write_file(tmp.path() + "/big.ndjson", enters(20000));
    std::size_t before = segsync::LiveDb(db, {}).map_size();
    CHECK(before == 1 << 20);
    CHECK(apply_file(db, batch) == 2);
    CHECK(segsync::LiveDb(db, {}).map_size() > before);
    CHECK(segcore::Snapshot(db + "/current").verify().profiles == 20002);
}

TEST_CASE("a full map at its limit leaves the live data unchanged and says so", "[delta][map]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, kProfiles, 1 << 20);
    std::string before = dump(db, "profiles");
    auto batch = write_file(tmp.path() + "/big.ndjson", enters(20000));
    try {
        apply_file(db, batch, nullptr, 1 << 20);  // may not grow
        FAIL("the batch was applied");
    } catch (const segsync::ImportError& e) {
        CHECK_THAT(e.what(), Catch::Contains("map is full at 1 MiB") && Catch::Contains("unchanged"));
        CHECK_FALSE(e.about_input());  // retried later, not rejected
    }
    CHECK(generation(db) == 1);
    CHECK(dump(db, "profiles") == before);
}

TEST_CASE("a commit that cannot be written leaves the live data unchanged", "[delta][map]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, kProfiles, 1 << 20);
    std::string before = dump(db, "profiles");
    auto batch = write_file(tmp.path() + "/big.ndjson", enters(5000));
    // RLIMIT_FSIZE at the file's current size makes the commit's writes fail
    // (EFBIG) the way a full disk (ENOSPC) does; in a child, so the limit
    // does not outlive the test.
    std::string message_file = tmp.path() + "/message";
    auto size = static_cast<rlim_t>(std::filesystem::file_size(
        std::filesystem::canonical(db + "/current") / "data.mdb"));
    pid_t child = fork();
    if (child == 0) {
        signal(SIGXFSZ, SIG_IGN);
        rlimit limit{size, size};
        setrlimit(RLIMIT_FSIZE, &limit);
        try {
            apply_file(db, batch);
            _exit(0);
        } catch (const segsync::ImportError& e) {
            write_file(message_file, e.what());
            _exit(e.about_input() ? 3 : 2);
        }
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WEXITSTATUS(status) == 2);
    CHECK_THAT(fixture::read_file(message_file), Catch::Contains("the live data is unchanged"));
    CHECK(generation(db) == 1);
    CHECK(dump(db, "profiles") == before);
    CHECK(segcore::Snapshot(db + "/current").verify().profiles == 2);
}

// kill -9 of the daemon after its commit wrote the meta page but before
// LMDB published the transaction id in lock.mdb (held open by nginx):
// LMDB's read transactions still see the previous commit until a writer
// recovers the dead one's mutex. Simulated: a child commits a batch, then
// dies holding the write mutex; lock.mdb's transaction id is set back.
TEST_CASE("a batch committed by a writer killed mid-commit is not applied again", "[delta][crash]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, kProfiles);
    auto dir = std::filesystem::canonical(db + "/current").string();
    // Another process keeps the environment open, as nginx does, so nobody
    // below is its first opener (who would rebuild lock.mdb from the file).
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t holder = fork();
    if (holder == 0) {
        segcore::Env env(dir, {});
        (void) !write(ready[1], "x", 1);
        pause();
        _exit(0);
    }
    char byte;
    REQUIRE(read(ready[0], &byte, 1) == 1);
    segcore::Env reader(dir, {});
    auto txnid = [&] {
        segcore::Txn txn(reader, MDB_RDONLY);
        return static_cast<std::uint64_t>(mdb_txn_id(txn.get()));
    };
    std::uint64_t before = txnid();
    auto batch = write_file(tmp.path() + "/d.ndjson", enters(3));
    pid_t child = fork();
    if (child == 0) {
        segsync::LiveDb live(db, {});
        live.apply("drop", "0001.delta.ndjson", 0, [&](segsync::ProfileEditor& editor) {
            segsync::NdjsonReader reader(batch);
            segsync::apply_delta(reader, editor, nullptr);
        });
        segcore::Env env(dir, {});
        MDB_txn* txn = nullptr;
        mdb_txn_begin(env.get(), nullptr, 0, &txn);  // takes the write mutex
        _exit(0);                                      // and dies holding it
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(txnid() == before + 1);
    // lock.mdb's header: the transaction id sits after magic, format and the
    // reader mutex; find it by value and set it back, as if never published.
    std::fstream lock(dir + "/lock.mdb", std::ios::in | std::ios::out | std::ios::binary);
    bool patched = false;
    for (std::streamoff at = 8; at < 256 && !patched; at += 8) {
        std::uint64_t value = 0;
        lock.seekg(at);
        lock.read(reinterpret_cast<char*>(&value), 8);
        if (value != before + 1) continue;
        lock.seekp(at);
        lock.write(reinterpret_cast<const char*>(&before), 8);
        patched = true;
    }
    lock.close();
    REQUIRE(patched);
    REQUIRE(txnid() == before);  // readers now see the previous commit

    segsync::LiveDb live(db, {});
    CHECK(live.feed_positions().at("drop") == "0001.delta.ndjson");
    CHECK(live.generation() == 2);
    CHECK(txnid() == before + 1);  // and so does every reader again
    kill(holder, SIGKILL);
    waitpid(holder, &status, 0);
}
