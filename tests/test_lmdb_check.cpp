#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "segcore/lmdb_check.h"
#include "segcore/snapshot.h"
#include "snapshot_fixture.h"

namespace {

namespace fs = std::filesystem;
namespace schema = segcore::schema;

// Enough records for a two-level profiles tree, and a fragment bigger than
// a page (an overflow page).
std::string good_snapshot() {
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 10), fixture::segment(2, "newsletter", 5)};
    for (int i = 0; i < 600; ++i)
        spec.profiles.push_back({fixture::visitor_id("v-" + std::to_string(i)), {1, 2}});
    spec.blocks = {{"hero", 1, "<b>vip</b>", ""}, {"big", 2, std::string(9000, 'x'), ""}};
    spec.aliases = {{fixture::visitor_id("a-1"), "cust-1"}};
    auto dir = fixture::temp_dir() + "/good";
    fixture::write_snapshot(dir, spec);
    return dir;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A copy of the snapshot whose data.mdb `edit` changed.
template <typename Edit>
std::string damaged_copy(const std::string& good, Edit edit) {
    auto dir = fixture::temp_dir() + "/damaged";
    fs::create_directories(dir);
    std::string bytes = read_file(good + "/data.mdb");
    edit(bytes);
    write_file(dir + "/data.mdb", bytes);
    return dir;
}

// LMDB's page header: flags at byte 10, node offsets from byte 16.
constexpr std::size_t kPageSize = 4096;
std::uint16_t page_flags(const std::string& bytes, std::size_t page) {
    std::uint16_t flags;
    std::memcpy(&flags, &bytes[page * kPageSize + 10], 2);
    return flags;
}

std::size_t first_page_with(const std::string& bytes, std::uint16_t flags) {
    for (std::size_t page = 2; page < bytes.size() / kPageSize; ++page)
        if (page_flags(bytes, page) == flags) return page;
    FAIL("no page with flags " << flags);
    return 0;
}

// Everything a reader does with a snapshot, in a child process: true when
// it ended normally (opened or refused), false when it died on a signal.
bool survives_reading(const std::string& dir) {
    pid_t child = fork();
    if (child == 0) {
        try {
            segcore::Snapshot snapshot(dir);
            std::uint32_t ids[16];
            for (int i = 0; i < 600; ++i)
                snapshot.lookup(schema::VisitorKind::anonymous, fixture::visitor_id("v-" + std::to_string(i)), ids, 16);
            snapshot.verify();
        } catch (const std::exception&) {
        }
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status);
}

}  // namespace

TEST_CASE("the LMDB structure check passes a good snapshot", "[lmdb_check]") {
    auto dir = good_snapshot();
    REQUIRE(fs::file_size(dir + "/data.mdb") > 20 * kPageSize);
    CHECK_NOTHROW(segcore::check_lmdb_header(dir + "/data.mdb"));
    segcore::Snapshot snapshot(dir);
    CHECK(snapshot.verify().profiles == 600);
}

// The check reads data.mdb through a window of pages (256 KiB): a snapshot
// several windows long, whole and cut short.
TEST_CASE("the LMDB structure check reads a snapshot larger than its read window", "[lmdb_check]") {
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 10)};
    for (int i = 0; i < 30000; ++i) spec.profiles.push_back({fixture::visitor_id("w-" + std::to_string(i)), {1}});
    auto good = fixture::temp_dir() + "/large";
    fixture::write_snapshot(good, spec);
    REQUIRE(fs::file_size(good + "/data.mdb") > 4 * 256 * 1024);
    CHECK(segcore::Snapshot(good).verify().profiles == 30000);

    auto cut = damaged_copy(good, [](std::string& b) { b.resize(b.size() / 2 / kPageSize * kPageSize + 100); });
    CHECK_THROWS_WITH(segcore::Snapshot(cut), Catch::Contains("data.mdb is truncated"));
    CHECK(survives_reading(cut));
}

TEST_CASE("the LMDB structure check refuses what would crash a reader", "[lmdb_check]") {
    auto good = good_snapshot();
    std::string expected;
    std::string dir;
    SECTION("another page size in the newer meta page (LMDB itself would use it)") {
        dir = damaged_copy(good, [](std::string& b) { b[kPageSize + 16 + 24] ^= 1; });
        expected = "disagree on the page size";
    }
    SECTION("a file shorter than its meta page says") {
        dir = damaged_copy(good, [](std::string& b) { b.resize(b.size() - kPageSize); });
        expected = "data.mdb is truncated";
    }
    SECTION("a node offset outside its page") {
        dir = damaged_copy(good, [](std::string& b) {
            std::size_t leaf = first_page_with(b, 0x02);
            b[leaf * kPageSize + 16] = '\xf0';
            b[leaf * kPageSize + 17] = '\xff';
        });
        expected = "is outside the page";
    }
    SECTION("a branch pointing outside the file") {
        dir = damaged_copy(good, [](std::string& b) {
            std::size_t branch = first_page_with(b, 0x01);
            std::uint16_t at;
            std::memcpy(&at, &b[branch * kPageSize + 16], 2);
            b[branch * kPageSize + at + 2] = '\x7f';  // the child page number's high half
        });
        expected = "is outside the data";
    }
    SECTION("an overflow page too short for its value") {
        dir = damaged_copy(good, [](std::string& b) {
            std::size_t overflow = first_page_with(b, 0x04);
            std::uint32_t pages = 1;
            std::memcpy(&b[overflow * kPageSize + 12], &pages, 4);
        });
        expected = "does not hold its value";
    }
    CHECK_THROWS_WITH(segcore::Snapshot(dir), Catch::Contains(expected));
    CHECK(survives_reading(dir));
}

TEST_CASE("no bit flip in data.mdb crashes a reader", "[lmdb_check]") {
    auto good = good_snapshot();
    std::string bytes = read_file(good + "/data.mdb");
    int refused = 0;
    for (unsigned seed = 1; seed <= 300; ++seed) {
        std::mt19937 random(seed);
        std::string copy = bytes;
        for (unsigned n = 1 + random() % 8; n > 0; --n)
            copy[random() % copy.size()] ^= static_cast<char>(1 << random() % 8);
        auto dir = fixture::temp_dir() + "/flip";
        fs::create_directories(dir);
        write_file(dir + "/data.mdb", copy);
        INFO("seed " << seed);
        CHECK(survives_reading(dir));
        try {
            segcore::Snapshot snapshot(dir);
        } catch (const segcore::SnapshotError&) {
            ++refused;
        }
        fs::remove_all(fs::path(dir).parent_path());
    }
    CHECK(refused > 0);
}

TEST_CASE("a snapshot written to in place while it is opened is never refused", "[lmdb_check]") {
    auto dir = good_snapshot();
    pid_t writer = fork();
    if (writer == 0) {
        segcore::Env::Options options;
        options.flags = MDB_NOSYNC;  // page reuse is the same, without 2000 fsyncs
        segcore::Env env(dir, options);
        for (int i = 0; i < 2000; ++i) {
            segcore::Txn txn(env, 0);
            auto profiles = txn.open_db(schema::kProfilesDb);
            char key[schema::kMaxKeySize];
            auto id = fixture::visitor_id("w-" + std::to_string(i % 300));
            auto len = schema::encode_visitor_key(schema::VisitorKind::anonymous, id, key);
            txn.put(profiles, std::string_view(key, len), schema::encode_profile({1}));
            txn.commit();
        }
        _exit(0);
    }
    int opened = 0;
    for (int i = 0; i < 200; ++i) {
        segcore::Snapshot snapshot(dir);  // throws if refused
        ++opened;
    }
    int status = 0;
    waitpid(writer, &status, 0);
    CHECK(opened == 200);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
