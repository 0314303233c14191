// segsync import, end to end through segsync::run_import: each test builds
// its own database root under /tmp from small NDJSON strings and reads the
// result back with segcore::Snapshot, the reader the module uses.
//
// LMDB must not open one environment twice in a process, so every Snapshot
// a test opens is closed before the next import (which may open or prune it).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "segcore/keys.h"
#include "segcore/signed_id.h"
#include "segcore/snapshot.h"
#include "snapshot_fixture.h"
#include "sync_fixture.h"
#include "sync/import.h"

namespace {

namespace fs = std::filesystem;
namespace schema = segcore::schema;
using schema::VisitorKind;

using fixture::read_file;
using fixture::run_cli;
using fixture::segsync_binary;
using fixture::TempDir;
using fixture::write_file;

// ids: vip 1, newsletter 2, cart_abandoner 3, tie 4 (the blank line is skipped).
const std::string kSegments =
    R"({"name":"vip","description":"Lifetime value over 1000","owner":"crm-team","priority":100})"
    "\n"
    R"({"name":"newsletter","priority":5})"
    "\n\n"
    R"({"name":"cart_abandoner","description":"Left a cart","priority":50})"
    "\n"
    R"({"name":"tie","owner":"growth","priority":5})"
    "\n";

// Anonymous ids must be canonical, as the module issues them.
const std::string kV1 = fixture::visitor_id("v-1");
const std::string kV2 = fixture::visitor_id("v-2");
const std::string kV1001 = fixture::visitor_id("v-1001");
const std::string kV1002 = fixture::visitor_id("v-1002");

std::string profile_line(const std::string& id, const std::string& kind,
                         const std::string& segments) {
    return R"({"id":")" + id + R"(","kind":")" + kind + R"(","segments":[)" + segments + "]}\n";
}

const std::string kProfiles =
    profile_line(kV1001, "anonymous", R"("newsletter","tie","vip","cart_abandoner")") +
    profile_line(kV1001, "known", R"("tie")") + profile_line("cust-42", "known", "") +
    profile_line(kV1002, "anonymous", R"("newsletter")");

struct ImportFixture {
    TempDir tmp;
    std::string db = tmp.path() + "/db";
    std::string segments = write_file(tmp.path() + "/segments.ndjson", kSegments);
    std::string profiles = write_file(tmp.path() + "/profiles.ndjson", kProfiles);
    std::string blocks;  // set by tests that import blocks
    unsigned keep = 2;

    segsync::ImportOptions options() const {
        segsync::ImportOptions o;
        o.db = db;
        o.segments_path = segments;
        o.profiles_path = profiles;
        o.blocks_path = blocks;
        o.keep = keep;
        return o;
    }
    segsync::ImportResult import() const { return segsync::run_import(options()); }
};

std::string error_of(const segsync::ImportOptions& options) {
    try {
        segsync::run_import(options);
    } catch (const segsync::ImportError& e) {
        return e.what();
    }
    FAIL("import succeeded but should have failed");
    return {};
}

std::string current_target(const std::string& db) {
    std::error_code ec;
    return fs::read_symlink(db + "/current", ec).string();
}

std::uint64_t current_generation(const std::string& db) {
    return segcore::Snapshot(db + "/current").meta().generation;
}

std::vector<std::string> entries(const std::string& dir, const std::string& prefix) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
        std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) == 0) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::uint32_t> lookup(segcore::Snapshot& snapshot, VisitorKind kind,
                                  const std::string& id) {
    std::uint32_t ids[schema::kMaxSegmentsPerProfile];
    std::size_t n = snapshot.lookup(kind, id, ids, schema::kMaxSegmentsPerProfile).segments;
    return std::vector<std::uint32_t>(ids, ids + n);
}

unsigned mode_of(const std::string& path) {
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::string block_line(const std::string& block, const std::string& segment, const std::string& html) {
    nlohmann::json line = {{"block", block}, {"segment", segment}, {"html", html}};
    return line.dump() + "\n";
}

// block name -> fragment, for a visitor with these segment ids
std::map<std::string, std::string> blocks_for(segcore::Snapshot& snapshot,
                                              std::vector<std::uint32_t> visitor) {
    struct Sink : segcore::FragmentSink {
        void take(std::size_t i, std::string_view html) override { got.emplace_back(i, html); }
        std::vector<std::pair<std::size_t, std::string>> got;
    } sink;
    std::vector<segcore::BlockChoice> choices(snapshot.blocks().size());
    std::size_t n = snapshot.blocks().choose(visitor.data(), visitor.size(), choices.data());
    snapshot.read_fragments(choices.data(), n, sink);
    std::map<std::string, std::string> result;
    for (const auto& [i, html] : sink.got) result[snapshot.blocks().name(choices[i].block)] = html;
    return result;
}

}  // namespace

TEST_CASE("import publishes a snapshot the module can read", "[import]") {
    ImportFixture f;
    auto options = f.options();
    options.source = "crm-export-2024-05-01";
    auto result = segsync::run_import(options);

    CHECK(result.generation == 1);
    CHECK(result.segments == 4);
    CHECK(result.profiles == 4);
    std::string target = current_target(f.db);
    CHECK(target.rfind("snapshots/snap-0000000001-", 0) == 0);
    CHECK(f.db + "/" + target == result.snapshot_path);

    segcore::Snapshot snapshot(f.db + "/current");
    CHECK(snapshot.meta().generation == 1);
    CHECK(snapshot.meta().schema_version == schema::kVersion);
    CHECK(snapshot.meta().source == "crm-export-2024-05-01");
    REQUIRE(snapshot.segment(1));
    CHECK(snapshot.segment(1)->name == "vip");
    CHECK(snapshot.segment(1)->description == "Lifetime value over 1000");
    CHECK(snapshot.segment(1)->owner == "crm-team");
    CHECK(snapshot.segment(1)->priority == 100);
    REQUIRE(snapshot.segment(3));
    CHECK(snapshot.segment(3)->name == "cart_abandoner");
    REQUIRE(snapshot.segment(2));
    CHECK(snapshot.segment(2)->owner.empty());  // optional fields default to ""
    CHECK(snapshot.segment(5) == nullptr);

    // Priority descending; newsletter and tie share 5, so id order breaks the tie.
    CHECK(lookup(snapshot, VisitorKind::anonymous, kV1001) == std::vector<std::uint32_t>{1, 3, 2, 4});
    // Same id, other kind: a separate visitor.
    CHECK(lookup(snapshot, VisitorKind::known, kV1001) == std::vector<std::uint32_t>{4});
    CHECK(lookup(snapshot, VisitorKind::anonymous, "cust-42").empty());
    CHECK(lookup(snapshot, VisitorKind::anonymous, "nobody").empty());
    auto counts = snapshot.verify();
    CHECK(counts.segments == 4);
    CHECK(counts.profiles == 4);
}

TEST_CASE("each import publishes the next generation behind a relative symlink", "[import]") {
    ImportFixture f;
    auto first = f.import();
    std::string first_target = current_target(f.db);
    auto second = f.import();

    CHECK(first.generation == 1);
    CHECK(second.generation == 2);
    CHECK(current_generation(f.db) == 2);
    std::string target = current_target(f.db);
    CHECK(target != first_target);
    CHECK(fs::path(target).is_relative());
    CHECK(target.rfind("snapshots/snap-0000000002-", 0) == 0);
    CHECK(segcore::Snapshot(f.db + "/current").meta().source == "import");
    CHECK(entries(f.db + "/snapshots", ".staging-").empty());
    CHECK(!fs::exists(f.db + "/.current.tmp"));
}

TEST_CASE("a snapshot is group-readable and only its lock file is group-writable", "[import]") {
    ImportFixture f;
    fs::create_directories(f.db);
    // Root can hand the directory to any group; elsewhere the test only
    // checks the modes.
    gid_t group = getuid() == 0 ? getegid() + 4242 : getegid();
    REQUIRE(chown(f.db.c_str(), static_cast<uid_t>(-1), group) == 0);
    REQUIRE(chmod(f.db.c_str(), 02775) == 0);
    auto result = f.import();

    CHECK((mode_of(result.snapshot_path) & 0777) == 0750);
    CHECK(mode_of(result.snapshot_path + "/data.mdb") == 0640);
    CHECK(mode_of(result.snapshot_path + "/lock.mdb") == 0660);
    // The LMDB files inherit the root's group: what lets nginx workers in
    // that group open them without segsync chowning anything.
    struct stat st;
    REQUIRE(stat((result.snapshot_path + "/data.mdb").c_str(), &st) == 0);
    CHECK(st.st_gid == group);
    REQUIRE(stat((result.snapshot_path + "/lock.mdb").c_str(), &st) == 0);
    CHECK(st.st_gid == group);
}

namespace {

struct BadInput {
    const char* what;
    std::string segments;  // empty: the good kSegments
    std::string profiles;  // empty: the good kProfiles
    bool in_segments;      // which file the error names
    int line;
    std::string message;  // a part of the message after "FILE:LINE: "
};

std::vector<BadInput> bad_inputs() {
    const std::string good = profile_line(kV1, "anonymous", R"("vip")");
    std::string many_segments = R"("vip")";
    for (int i = 0; i < 256; ++i) many_segments += R"(,"vip")";
    // A rule one level deeper than segcore::rules::kMaxRuleDepth allows.
    std::string deep_rule = R"({"input":"path","op":"exists"})";
    for (int i = 0; i < 32; ++i) deep_rule = R"({"not":)" + deep_rule + "}";
    const std::string second = profile_line(kV2, "anonymous", "");
    const std::string nul_hides_a_record =
        second.substr(0, second.size() - 1) + '\0' + profile_line(kV1, "known", "");
    return {
        {"malformed JSON (segments)", "{\"name\": vip}\n", "", true, 1, "invalid JSON"},
        {"malformed JSON (profiles)", "", good + "{\"id\":\"v-2\",\"kind\":\"anonymous\",\"segments\":[}\n",
         false, 2, "invalid JSON"},
        {"blank lines still count", "", "\n\n" + good + "{\n", false, 4, "invalid JSON"},
        {"non-object line", "", good + "[\"v-2\"]\n", false, 2, "expected a JSON object, got array"},
        // Found by fuzzing (tests/fuzz/corpus/feed/nul-byte): nlohmann ends
        // the text at a NUL byte, so the record after it was dropped silently.
        {"NUL byte inside a line", "", good + nul_hides_a_record, false, 2,
         "invalid JSON: a NUL byte at column " + std::to_string(second.size())},
        // Found by fuzzing (tests/fuzz/corpus/feed/number-out-of-range): the
        // JSON parser's out_of_range escaped without FILE:LINE, and the
        // daemon took it for an environment error and retried the feed forever.
        {"number beyond a double", "", good + R"({"id":"k-1","kind":"known","segments":[],"attributes":{"ltv":-1e999}})" "\n",
         false, 2, "invalid JSON: number overflow parsing '-1e999'"},
        {"non-object segment", "\"vip\"\n", "", true, 1, "expected a JSON object, got string"},
        {"number no double holds", "", profile_line(kV1, "anonymous", "") + R"({"id":")" + kV2 +
             R"(","kind":"anonymous","segments":[],"attributes":{"ltv":1e400}})" "\n",
         false, 2, "invalid JSON: number overflow parsing '1e400'"},
        {"wrong type: id", "", R"({"id":42,"kind":"anonymous","segments":[]})" "\n", false, 1,
         R"(field "id" must be a string, got number)"},
        {"wrong type: priority", R"({"name":"vip","priority":"high"})" "\n", "", true, 1,
         R"(field "priority" must be an integer)"},
        {"fractional priority", R"({"name":"vip","priority":1.5})" "\n", "", true, 1,
         R"(field "priority" must be an integer)"},
        {"priority out of int32 range", R"({"name":"vip","priority":2147483648})" "\n", "", true, 1,
         "does not fit in a 32-bit signed integer"},
        {"wrong type: segments", "", profile_line(kV1, "anonymous", "") + R"({"id":")" + kV2 + R"(","kind":"anonymous","segments":"vip"})" "\n",
         false, 2, R"(field "segments" must be an array of segment names)"},
        {"wrong type: segment entry", "", profile_line(kV1, "anonymous", "7"), false, 1,
         "must be a string, got number"},
        {"wrong type: description", R"({"name":"vip","description":null})" "\n", "", true, 1,
         R"(field "description" must be a string, got null)"},
        {"bad rule operator", kSegments + R"({"name":"r","rule":{"all":[{"input":"path","op":"like","value":"/"}]}})" "\n",
         "", true, 6, R"(rule.all[0].op: unknown operator "like")"},
        // Deep nesting overflowed segsync's stack (rule compiler, dump()).
        {"rule nested too deep", R"({"name":"r","rule":)" + deep_rule + "}\n", "", true, 1,
         "nested deeper than 32 levels"},
        {"JSON nested too deep", std::string(100000, '[') + std::string(100000, ']') + "\n", "", true, 1,
         "invalid JSON: nested deeper than 100 levels"},
        {"bad rule regex", R"({"name":"r","rule":{"input":"path","op":"regex","value":"(("}})" "\n", "", true, 1,
         "rule.value: bad regex"},
        {"rule naming a later segment", R"({"name":"r","rule":{"segment":"vip"}})" "\n" + kSegments, "", true, 1,
         R"(rule.segment: unknown segment "vip")"},
        {"unknown field (segments)", kSegments + R"({"name":"extra","prority":3})" "\n", "", true, 6,
         R"(unknown field "prority")"},
        {"unknown field (profiles)", "", R"({"id":"v-1","kind":"anonymous","segments":[],"segment":[]})" "\n",
         false, 1, R"(unknown field "segment")"},
        {"field given twice", "", R"({"id":"v-1","kind":"anonymous","segments":[],"segments":["vip"]})" "\n",
         false, 1, R"(field "segments" given twice)"},
        {"missing name", R"({"priority":1})" "\n", "", true, 1, R"(missing field "name")"},
        {"missing kind", "", R"({"id":"v-1","segments":[]})" "\n", false, 1, R"(missing field "kind")"},
        {"bad segment name", R"({"name":"VIP"})" "\n", "", true, 1, R"(invalid segment name "VIP")"},
        {"segment name too long", R"({"name":")" + std::string(65, 'a') + "\"}\n", "", true, 1,
         "invalid segment name"},
        {"description too long", R"({"name":"vip","description":")" + std::string(1025, 'd') + "\"}\n",
         "", true, 1, R"(field "description" is 1025 bytes, at most 1024)"},
        {"duplicate segment", kSegments + R"({"name":"vip"})" "\n", "", true, 6,
         R"(duplicate segment "vip" (first defined on line 1))"},
        {"unknown segment", "", good + profile_line(kV2, "anonymous", R"("vip","vipp")"), false, 2,
         R"(unknown segment "vipp")"},
        {"segment listed twice", "", profile_line(kV1, "anonymous", R"("vip","tie","vip")"), false, 1,
         R"(segment "vip" listed twice)"},
        {"duplicate visitor", "",
         good + profile_line(kV1, "known", "") + profile_line(kV2, "anonymous", "") +
             profile_line(kV1, "anonymous", R"("tie")"),
         false, 4, "duplicate visitor: anonymous id \"" + kV1 + "\" (first on line 1)"},
        {"anonymous id with bad characters", "", profile_line("v 1001", "anonymous", ""), false, 1,
         R"(anonymous id "v 1001" can never match a cookie)"},
        {"anonymous id longer than a cookie allows", "", profile_line(std::string(129, 'a'), "anonymous", ""),
         false, 1, "can never match a cookie"},
        {"oversized key (known)", "", profile_line(std::string(511, 'k'), "known", ""), false, 1,
         "key too long: 512 bytes (id of 511), LMDB keys are limited to 511 bytes"},
        {"oversized key (anonymous): length before charset", "", good + profile_line(std::string(600, 'a'), "anonymous", ""),
         false, 2, "key too long: 601 bytes (id of 600), LMDB keys are limited to 511 bytes (1 type byte + 510)"},
        {"too many segments", "", profile_line(kV1, "anonymous", many_segments), false, 1,
         "too many segments: 257, at most 256"},
        {"empty id", "", profile_line("", "known", ""), false, 1, R"(field "id" must not be empty)"},
        {"bad kind", "", profile_line(kV1, "visitor", ""), false, 1,
         R"(field "kind" must be "anonymous" or "known", got "visitor")"},
    };
}

}  // namespace

TEST_CASE("bad input is rejected with FILE:LINE and publishes nothing", "[import]") {
    ImportFixture f;
    f.import();
    const std::string target = current_target(f.db);
    const auto snapshots = entries(f.db + "/snapshots", "snap-");

    for (const auto& bad : bad_inputs()) {
        INFO(bad.what);
        write_file(f.segments, bad.segments.empty() ? kSegments : bad.segments);
        write_file(f.profiles, bad.profiles.empty() ? kProfiles : bad.profiles);
        std::string message = error_of(f.options());
        std::string prefix = (bad.in_segments ? f.segments : f.profiles) + ":" + std::to_string(bad.line) + ": ";
        CHECK(message.rfind(prefix, 0) == 0);
        CHECK_THAT(message, Catch::Contains(bad.message));
        CHECK(current_target(f.db) == target);
        CHECK(current_generation(f.db) == 1);
        CHECK(entries(f.db + "/snapshots", ".staging-").empty());
        CHECK(entries(f.db + "/snapshots", "snap-") == snapshots);
    }

    // Failures neither hold the lock nor use up generations.
    write_file(f.segments, kSegments);
    write_file(f.profiles, kProfiles);
    CHECK(f.import().generation == 2);
}

TEST_CASE("segment rules are imported as compact JSON beside precomputed membership", "[import][rules]") {
    ImportFixture f;
    write_file(f.segments, kSegments + R"({"name":"mobile_vip","priority":7,"rule":)"
                           R"({"all":[{"input":"device","op":"eq","value":"mobile"},{"segment":"vip"}]}})" "\n");
    f.import();
    segcore::Snapshot snapshot(f.db + "/current");
    const auto* def = snapshot.segment(5);
    REQUIRE(def);
    CHECK(def->name == "mobile_vip");
    CHECK(def->rule == R"({"all":[{"input":"device","op":"eq","value":"mobile"},{"segment":"vip"}]})");
    CHECK(snapshot.segment(1)->rule.empty());
}

TEST_CASE("a missing input file is named and changes nothing", "[import]") {
    ImportFixture f;
    f.import();
    const std::string target = current_target(f.db);
    auto options = f.options();
    options.profiles_path = f.tmp.path() + "/no-such.ndjson";
    CHECK(error_of(options) == options.profiles_path + ": cannot open: No such file or directory");
    options.profiles_path = f.tmp.path();
    CHECK(error_of(options) == f.tmp.path() + ": cannot open: is a directory");
    CHECK(current_target(f.db) == target);
    CHECK(entries(f.db + "/snapshots", ".staging-").empty());
}

TEST_CASE("block contents are imported, verified and chosen by segment priority", "[import][blocks]") {
    ImportFixture f;
    f.blocks = write_file(f.tmp.path() + "/blocks.ndjson",
                          block_line("hero", "vip", "<h2>Welcome back</h2>") +
                              block_line("hero", "newsletter", "<h2>Read this week's issue</h2>") + "\n" +
                              block_line("offer", "cart_abandoner", "<p>Your cart misses you \xe2\x9d\xa4</p>") +
                              block_line("signup", "newsletter", "") +
                              block_line("big", "tie", std::string(schema::kMaxFragmentSize, 'x')));
    auto result = f.import();
    CHECK(result.blocks == 5);

    segcore::Snapshot snapshot(f.db + "/current");
    CHECK(snapshot.verify().blocks == 5);
    // v-1001 is vip, cart_abandoner, newsletter, tie (ids 1, 3, 2, 4)
    CHECK(blocks_for(snapshot, {1, 3, 2, 4}) ==
          std::map<std::string, std::string>{{"hero", "<h2>Welcome back</h2>"},
                                             {"offer", "<p>Your cart misses you \xe2\x9d\xa4</p>"},
                                             {"signup", ""},
                                             {"big", std::string(schema::kMaxFragmentSize, 'x')}});
    CHECK(blocks_for(snapshot, {2}) == std::map<std::string, std::string>{
                                           {"hero", "<h2>Read this week's issue</h2>"}, {"signup", ""}});
}

TEST_CASE("bad block contents are rejected with FILE:LINE and publish nothing", "[import][blocks]") {
    ImportFixture f;
    f.import();
    const std::string target = current_target(f.db);
    const std::string good = block_line("hero", "vip", "<h2>Hi</h2>");
    std::string many;
    for (std::size_t i = 0; i <= schema::kMaxBlocks; ++i) many += block_line("b" + std::to_string(i), "vip", "");
    struct Bad {
        std::string lines;
        int line;
        std::string message;
    };
    std::vector<Bad> bad = {
        {good + block_line("hero", "vipp", "x"), 2, R"(unknown segment "vipp")"},
        {block_line("Hero", "vip", "x"), 1, R"(invalid block name "Hero": use 1..64 characters)"},
        {block_line(std::string(65, 'h'), "vip", "x"), 1, "invalid block name"},
        {block_line("he ro", "vip", "x"), 1, "invalid block name"},
        {good + "\n" + block_line("offer", "vip", "") + block_line("hero", "vip", "<h2>Again</h2>"), 4,
         R"(duplicate content for block "hero" and segment "vip" (first on line 1))"},
        {block_line("hero", "vip", std::string(schema::kMaxFragmentSize + 1, 'x')), 1,
         R"(field "html" is 65537 bytes, at most 65536)"},
        {block_line("hero", "vip", "<div><!--segedge:inner-->x<!--/segedge:inner--></div>"), 1,
         R"(field "html" contains a block marker "<!--segedge:")"},
        {block_line("hero", "vip", "x<!--/segedge:hero-->"), 1, "contains a block marker"},
        {R"({"block":"hero","segment":"vip","html":"x","variant":"b"})" "\n", 1, R"(unknown field "variant")"},
        {R"({"block":"hero","html":"x"})" "\n", 1, R"(missing field "segment")"},
        {R"({"block":"hero","segment":"vip"})" "\n", 1, R"(missing field "html")"},
        {R"({"block":"hero","segment":"vip","html":null})" "\n", 1, R"(field "html" must be a string, got null)"},
        {R"({"block":7,"segment":"vip","html":""})" "\n", 1, R"(field "block" must be a string, got number)"},
        {"{\"block\":\"hero\",\n", 1, "invalid JSON"},
        {many, static_cast<int>(schema::kMaxBlocks) + 1, "too many blocks: at most 256 distinct block names"},
    };
    f.blocks = f.tmp.path() + "/blocks.ndjson";
    for (const auto& b : bad) {
        INFO(b.message);
        write_file(f.blocks, b.lines);
        std::string message = error_of(f.options());
        CHECK(message.rfind(f.blocks + ":" + std::to_string(b.line) + ": ", 0) == 0);
        CHECK_THAT(message, Catch::Contains(b.message));
        CHECK(current_target(f.db) == target);
        CHECK(entries(f.db + "/snapshots", ".staging-").empty());
    }
    auto options = f.options();
    options.blocks_path = f.tmp.path() + "/no-such.ndjson";
    CHECK(error_of(options) == options.blocks_path + ": cannot open: No such file or directory");
    CHECK(current_target(f.db) == target);
}

TEST_CASE("empty inputs publish an empty snapshot", "[import]") {
    ImportFixture f;
    write_file(f.segments, "");
    write_file(f.profiles, "\n");
    auto result = f.import();
    CHECK(result.segments == 0);
    CHECK(result.profiles == 0);
    CHECK(segcore::Snapshot(f.db + "/current").verify().profiles == 0);
}

TEST_CASE("a held writer lock makes import fail without publishing", "[import]") {
    ImportFixture f;
    f.import();
    const std::string target = current_target(f.db);
    std::string lock_path = f.db + "/.segsync.lock";
    int fd = open(lock_path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);

    CHECK(error_of(f.options()) ==
          "another segsync is writing to " + f.db + " (" + lock_path + " is locked)");
    CHECK(current_target(f.db) == target);
    CHECK(entries(f.db + "/snapshots", "snap-").size() == 1);
    CHECK(entries(f.db + "/snapshots", ".staging-").empty());

    close(fd);
    CHECK(f.import().generation == 2);
}

TEST_CASE("staging directories left by a crashed run are removed", "[import]") {
    ImportFixture f;
    f.import();
    std::string leftover = f.db + "/snapshots/.staging-crash1";
    fs::create_directories(leftover);
    write_file(leftover + "/data.mdb", "half written");
    f.import();
    CHECK(!fs::exists(leftover));
    CHECK(entries(f.db + "/snapshots", ".staging-").empty());
}

TEST_CASE("generations never go backwards, even without a current link", "[import]") {
    ImportFixture f;
    f.import();
    f.import();
    fs::remove(f.db + "/current");
    CHECK(f.import().generation == 3);
}

TEST_CASE("old snapshots are pruned down to --keep", "[import][prune]") {
    ImportFixture f;
    std::vector<std::string> published;
    for (int i = 0; i < 4; ++i) published.push_back(fs::path(f.import().snapshot_path).filename());

    CHECK(entries(f.db + "/snapshots", "snap-") ==
          std::vector<std::string>{published[2], published[3]});
    CHECK(current_target(f.db) == "snapshots/" + published[3]);

    f.keep = 1;
    auto result = f.import();
    CHECK(result.prune.removed == std::vector<std::string>{published[3], published[2]});
    CHECK(entries(f.db + "/snapshots", "snap-").size() == 1);
    CHECK(result.prune.warnings.empty());
}

namespace {

// Kills and reaps a forked reader even when a check fails half way.
struct ChildGuard {
    pid_t pid;
    ~ChildGuard() { stop(); }
    void stop() {
        if (pid <= 0) return;
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        pid = 0;
    }
};

// In a forked child: opens `dir` as the module would, does one lookup (which
// leaves a reader slot registered), reports 'R' on `fd` and waits to be killed.
[[noreturn]] void hold_reader(const std::string& dir, int fd) {
    alarm(60);  // never outlive a broken test run
    char status = 'E';
    try {
        segcore::Snapshot snapshot(dir);
        std::uint32_t ids[4];
        snapshot.lookup(VisitorKind::anonymous, kV1001, ids, 4);
        status = 'R';
        if (write(fd, &status, 1) == 1)
            for (;;) pause();
    } catch (...) {
    }
    if (write(fd, &status, 1) != 1) _exit(2);
    _exit(1);
}

}  // namespace

TEST_CASE("a snapshot still read by another process is kept until the reader goes",
          "[import][prune]") {
    ImportFixture f;
    std::string oldest = f.import().snapshot_path;
    f.import();

    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        hold_reader(oldest, ready[1]);
    }
    ChildGuard child{pid};
    close(ready[1]);
    char status = 0;
    REQUIRE(read(ready[0], &status, 1) == 1);
    close(ready[0]);
    REQUIRE(status == 'R');

    auto third = f.import();
    CHECK(fs::exists(oldest));
    CHECK(third.prune.busy == std::vector<std::string>{fs::path(oldest).filename()});
    CHECK(third.prune.removed.empty());

    child.stop();  // its reader slot is now stale
    auto fourth = f.import();
    CHECK(!fs::exists(oldest));
    CHECK(fourth.prune.busy.empty());
    CHECK(fourth.prune.removed.size() == 2);
    CHECK(entries(f.db + "/snapshots", "snap-").size() == 2);
}

TEST_CASE("a snapshot that cannot be opened is pruned", "[import][prune]") {
    ImportFixture f;
    f.keep = 1;
    f.import();
    std::string broken = f.db + "/snapshots/snap-0000000000-broken";
    fs::create_directories(broken);
    write_file(broken + "/data.mdb", "not an LMDB file");
    auto result = f.import();
    CHECK(!fs::exists(broken));
    CHECK(result.prune.warnings.empty());
}

TEST_CASE("Snapshot::verify rejects a profile naming an uncatalogued segment", "[import][verify]") {
    TempDir tmp;
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 10)};
    spec.profiles = {{"v-1", {1, 9}}};
    fixture::write_snapshot(tmp.path() + "/snap", spec);

    segcore::Snapshot snapshot(tmp.path() + "/snap");
    CHECK_THROWS_AS(snapshot.verify(), segcore::SnapshotError);
    CHECK_THROWS_WITH(snapshot.verify(), Catch::Contains("unknown segment id 9"));
}

TEST_CASE("progress is drawn on the given stream and ends with a newline", "[import]") {
    ImportFixture f;
    std::ostringstream progress;
    auto options = f.options();
    options.progress = &progress;
    segsync::run_import(options);
    CHECK(progress.str() == "\r" + f.profiles + ": 4 lines (100%)\n");

    // Without a stream (stderr is not a terminal) nothing is drawn anywhere.
    CHECK(segsync::run_import(f.options()).generation == 2);
}

TEST_CASE("the demo data imports and holds the visitors the demo prints", "[import][demo]") {
    std::string demo = fs::path(__FILE__).parent_path().parent_path() / "conf" / "demo";
    TempDir tmp;
    segsync::ImportOptions options;
    options.db = tmp.path() + "/db";
    options.segments_path = demo + "/segments.ndjson";
    options.profiles_path = demo + "/profiles.ndjson";
    options.aliases_path = demo + "/aliases.ndjson";
    options.blocks_path = demo + "/blocks.ndjson";
    auto result = segsync::run_import(options);
    CHECK(result.segments >= 6);
    CHECK(result.profiles >= 30);
    CHECK(result.aliases >= 1);
    CHECK(result.blocks >= 4);

    segcore::Snapshot snapshot(options.db + "/current");
    auto names = [&](const std::vector<std::uint32_t>& ids) {
        std::vector<std::string> out;
        for (auto id : ids) out.push_back(snapshot.segment(id)->name);
        return out;
    };
    // conf/demo.sh prints these ids (base64url of the 16-byte labels)
    CHECK(names(lookup(snapshot, VisitorKind::anonymous, "ZGVtby12aXAtdmlzaXRvcg")) ==
          std::vector<std::string>{"vip", "newsletter"});
    CHECK(names(lookup(snapshot, VisitorKind::anonymous, "ZGVtby1uZXctdmlzaXRvcg")) ==
          std::vector<std::string>{"new_visitor"});
    CHECK(names(lookup(snapshot, VisitorKind::anonymous, "ZGVtby1hbGlhcy12aXNpdA")) ==
          std::vector<std::string>{"cart_abandoner"});
    CHECK(names(lookup(snapshot, VisitorKind::known, "cust-10001")) ==
          std::vector<std::string>{"vip", "newsletter"});
    char known[schema::kMaxVisitorIdSize];
    std::size_t n = segcore::Snapshot::Read(snapshot).alias("ZGVtby1hbGlhcy12aXNpdA", known);
    CHECK(std::string(known, n) == "cust-10001");
    // What conf/demo.sh and the browser test show.
    auto vip = blocks_for(snapshot, lookup(snapshot, VisitorKind::anonymous, "ZGVtby12aXAtdmlzaXRvcg"));
    CHECK_THAT(vip["hero"], Catch::Contains("Welcome back, valued customer"));
    CHECK_THAT(vip["offer"], Catch::Contains("Free express shipping"));
    CHECK(vip.at("newsletter").empty());
    auto newcomer = blocks_for(snapshot, lookup(snapshot, VisitorKind::anonymous, "ZGVtby1uZXctdmlzaXRvcg"));
    CHECK_THAT(newcomer["hero"], Catch::Contains("HELLO10"));
    CHECK_THAT(newcomer["offer"], Catch::Contains("Shipping is on us"));
    CHECK(newcomer.count("newsletter") == 0);
    for (std::uint32_t id = 1; id <= snapshot.segment_count(); ++id) {
        INFO("segment " << id);
        CHECK(!snapshot.segment(id)->description.empty());
        CHECK(!snapshot.segment(id)->owner.empty());
    }
}


TEST_CASE("the segsync command line reports success, data errors and usage errors", "[import][cli]") {
    if (segsync_binary().empty()) {
        WARN("segsync binary not built next to the tests; skipping");
        return;
    }
    ImportFixture f;
    std::string out = f.tmp.path() + "/out", err = f.tmp.path() + "/err";
    std::string import = "import --db " + f.db + " --segments " + f.segments + " --profiles " + f.profiles;

    CHECK(run_cli(import, out, err) == 0);
    std::string published = read_file(out);
    CHECK(published.rfind("segsync: published generation 1 (4 segments, 4 profiles, 0 attributes) as " + f.db +
                              "/snapshots/snap-0000000001-", 0) == 0);
    CHECK(read_file(err).empty());  // not a terminal: no progress

    write_file(f.profiles, profile_line(kV1, "anonymous", R"("vipp")"));
    CHECK(run_cli(import, out, err) == 1);
    CHECK(read_file(err) == "segsync: " + f.profiles + ":1: unknown segment \"vipp\"\n");
    CHECK(read_file(out).empty());

    CHECK(run_cli("", out, err) == 2);
    CHECK_THAT(read_file(err), Catch::Contains("usage: segsync import"));
    CHECK(run_cli("frobnicate", out, err) == 2);
    CHECK(run_cli("import --db " + f.db, out, err) == 2);
    CHECK(run_cli(import + " --keep 0", out, err) == 2);
    write_file(f.profiles, kProfiles);
    f.blocks = write_file(f.tmp.path() + "/blocks.ndjson", block_line("hero", "vip", "<h2>Hi</h2>"));
    CHECK(run_cli(import + " --blocks " + f.blocks, out, err) == 0);
    CHECK_THAT(read_file(out), Catch::Contains("(4 segments, 4 profiles, 0 attributes, 1 block contents)"));
    write_file(f.blocks, block_line("hero", "vipp", ""));
    CHECK(run_cli(import + " --blocks=" + f.blocks, out, err) == 1);
    CHECK(read_file(err) == "segsync: " + f.blocks + ":1: unknown segment \"vipp\"\n");
    CHECK(run_cli(import + " --bogus x", out, err) == 2);
    CHECK(run_cli("--help", out, err) == 0);
    CHECK_THAT(read_file(out), Catch::Contains("usage: segsync import"));
    CHECK(run_cli("help", out, err) == 0);
}

namespace {

std::string alias_line(const std::string& anonymous, const std::string& known) {
    return R"({"anonymous":")" + anonymous + R"(","known":")" + known + "\"}\n";
}

std::string known_alias_of(const std::string& db, const std::string& anonymous) {
    segcore::Snapshot snapshot(db + "/current");
    char known[schema::kMaxVisitorIdSize];
    std::size_t n = segcore::Snapshot::Read(snapshot).alias(anonymous, known);
    return std::string(known, n);
}

}  // namespace

TEST_CASE("import publishes aliases, also to known ids without a profile", "[import][aliases]") {
    ImportFixture f;
    auto options = f.options();
    options.aliases_path = write_file(f.tmp.path() + "/aliases.ndjson",
                                      alias_line(kV1001, "cust-42") + "\n" +
                                          alias_line(kV1002, "cust-without-profile") +
                                          alias_line(kV1, std::string(510, 'k')));
    auto result = segsync::run_import(options);
    CHECK(result.aliases == 3);
    CHECK(known_alias_of(f.db, kV1001) == "cust-42");
    CHECK(known_alias_of(f.db, kV1002) == "cust-without-profile");
    CHECK(known_alias_of(f.db, kV1) == std::string(510, 'k'));
    CHECK(known_alias_of(f.db, kV2).empty());
    CHECK(segcore::Snapshot(f.db + "/current").verify().aliases == 3);

    // Without --aliases the snapshot has none: aliases are not carried over.
    CHECK(f.import().aliases == 0);
    CHECK(known_alias_of(f.db, kV1001).empty());
}

TEST_CASE("bad aliases are rejected with FILE:LINE and publish nothing", "[import][aliases]") {
    ImportFixture f;
    f.import();
    const std::string target = current_target(f.db);
    struct Bad {
        const char* what;
        std::string text;
        int line;
        std::string message;
    };
    const std::string good = alias_line(kV1, "cust-1");
    std::vector<Bad> bad = {
        {"not canonical", good + alias_line("v-1001", "cust-2"), 2,
         R"(anonymous id "v-1001" can never match a cookie)"},
        {"non-canonical last character", alias_line(kV1.substr(0, 21) + "B", "cust-2"), 1,
         "can never match a cookie"},
        {"empty known id", good + "\n" + alias_line(kV2, ""), 3, R"(field "known" must not be empty)"},
        {"known id too long", alias_line(kV2, std::string(511, 'k')), 1,
         "known id of 511 bytes, at most 510"},
        {"duplicate anonymous id", good + alias_line(kV2, "cust-2") + alias_line(kV1, "cust-3"), 3,
         "duplicate alias: anonymous id \"" + kV1 + "\" (first on line 1)"},
        {"missing known", R"({"anonymous":")" + kV1 + "\"}\n", 1, R"(missing field "known")"},
        {"unknown field", R"({"anonymous":")" + kV1 + R"(","known":"c","kind":"x"})" "\n", 1,
         R"(unknown field "kind")"},
        {"wrong type", R"({"anonymous":")" + kV1 + R"(","known":7})" "\n", 1,
         R"(field "known" must be a string, got number)"},
        {"malformed JSON", good + "{\"anonymous\":\n", 2, "invalid JSON"},
    };
    auto options = f.options();
    options.aliases_path = f.tmp.path() + "/aliases.ndjson";
    for (const auto& b : bad) {
        INFO(b.what);
        write_file(options.aliases_path, b.text);
        std::string message = error_of(options);
        CHECK(message.rfind(options.aliases_path + ":" + std::to_string(b.line) + ": ", 0) == 0);
        CHECK_THAT(message, Catch::Contains(b.message));
        CHECK(current_target(f.db) == target);
        CHECK(entries(f.db + "/snapshots", ".staging-").empty());
    }
    options.aliases_path = f.tmp.path() + "/missing.ndjson";
    CHECK(error_of(options) == options.aliases_path + ": cannot open: No such file or directory");
    CHECK(current_target(f.db) == target);
}

TEST_CASE("segsync sign prints a cookie value the module's verifier accepts", "[sign][cli]") {
    if (segsync_binary().empty()) {
        WARN("segsync binary not built next to the tests; skipping");
        return;
    }
    TempDir tmp;
    std::string keys = write_file(tmp.path() + "/keys",
                                  "new hex:" + std::string(64, '1') + "\nold hex:" + std::string(64, '2') + "\n");
    std::string out = tmp.path() + "/out", err = tmp.path() + "/err";
    segcore::KeyRing ring = segcore::KeyRing::load(keys);
    char id[schema::kMaxVisitorIdSize];
    auto now = static_cast<std::uint64_t>(std::time(nullptr));

    CHECK(run_cli("sign --keys " + keys + " --id cust-10001", out, err) == 0);
    std::string value = read_file(out);
    REQUIRE(!value.empty());
    CHECK(value.back() == '\n');
    value.pop_back();
    CHECK(value.rfind("v1.new.", 0) == 0);  // the first key signs
    auto verified = segcore::verify_signed_id(ring, value, now, id);
    CHECK(verified.check == segcore::SignedIdCheck::valid);
    CHECK(std::string(id, verified.size) == "cust-10001");
    // default lifetime: 30 days
    CHECK(segcore::verify_signed_id(ring, value, now + 29 * 86400, id).check ==
          segcore::SignedIdCheck::valid);
    CHECK(segcore::verify_signed_id(ring, value, now + 31 * 86400, id).check ==
          segcore::SignedIdCheck::expired);

    CHECK(run_cli("sign --keys " + keys + " --id=cust-1 --ttl 2h", out, err) == 0);
    value = read_file(out);
    value.pop_back();
    CHECK(segcore::verify_signed_id(ring, value, now + 3600, id).check == segcore::SignedIdCheck::valid);
    CHECK(segcore::verify_signed_id(ring, value, now + 3 * 3600, id).check ==
          segcore::SignedIdCheck::expired);

    CHECK(run_cli("sign --keys " + keys + " --id cust-1 --expires 1700000000", out, err) == 0);
    CHECK(read_file(out).find(".1700000000.") != std::string::npos);

    CHECK(run_cli("sign --keys " + tmp.path() + "/nope --id x", out, err) == 1);
    CHECK(read_file(err) == "segsync: " + tmp.path() + "/nope: cannot open: No such file or directory\n");
    CHECK(run_cli("sign --keys " + keys + " --id " + std::string(511, 'k'), out, err) == 1);
    CHECK(run_cli("sign --keys " + keys, out, err) == 2);
    CHECK(run_cli("sign --keys " + keys + " --id x --ttl 0", out, err) == 2);
    CHECK(run_cli("sign --keys " + keys + " --id x --ttl 5y", out, err) == 2);
    CHECK(run_cli("sign --keys " + keys + " --id x --ttl 1h --expires 5", out, err) == 2);
    CHECK(run_cli("sign --keys " + keys + " --id x --db y", out, err) == 2);
    CHECK(run_cli("sign --help", out, err) == 0);
    CHECK_THAT(read_file(out), Catch::Contains("segsync sign --keys FILE --id ID"));
}
