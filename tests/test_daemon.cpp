// `segsync run --once` over a drop directory: feeds applied in name order,
// bad ones rejected whole and moved aside, nothing applied twice, the
// writer lock honoured.
#include <catch2/catch.hpp>

#include <ctime>

#include "segcore/snapshot.h"
#include "sync/daemon.h"
#include "sync/live.h"
#include "sync/publish.h"
#include "sync/signature.h"
#include "sync/status.h"
#include "sync_fixture.h"

namespace {

using fixture::dump;
using fixture::read_file;
using fixture::write_file;

struct DropFixture {
    fixture::TempDir tmp;
    std::string db = tmp.path() + "/db";
    std::string drop = tmp.path() + "/drop";
    std::string key = write_file(tmp.path() + "/feed.key", std::string(64, 'c'));
    std::string config = write_file(tmp.path() + "/segsync.json",
        R"({"db":")" + db + R"(","sources":[{"name":"drop","type":"directory","path":")" + drop +
        R"(","signature":{"hmac_sha256_keys":[")" + key + R"("]}}]})");

    // Writes a feed and its signature (made with `signing_key`).
    void drop_feed(const std::string& name, const std::string& text, const std::string& signing_key = "") {
        std::string path = write_file(drop + "/" + name, text);
        write_file(path + ".sig", segsync::sign_feed(signing_key.empty() ? key : signing_key, name, path));
    }
    int run_once() { return segsync::run_daemon({config, true}); }
    bool exists(const std::string& relative) const { return std::filesystem::exists(drop + "/" + relative); }
};

std::string manifest(const std::string& dir, const std::string& segments, const std::string& profiles) {
    return R"({"segments":{"file":")" + dir + R"(/segments.ndjson","sha256":")" + segsync::sha256_file(segments) +
           R"("},"profiles":{"file":")" + dir + R"(/profiles.ndjson","sha256":")" + segsync::sha256_file(profiles) + "\"}}";
}

}  // namespace

TEST_CASE("the daemon applies a drop directory in name order and rejects bad feeds whole", "[daemon]") {
    DropFixture f;
    std::string segments = write_file(f.drop + "/s1/segments.ndjson",
                                      "{\"name\":\"vip\",\"priority\":10}\n{\"name\":\"news\"}\n");
    std::string profiles = write_file(f.drop + "/s1/profiles.ndjson",
                                      R"({"id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segments":["news"]})" "\n");
    f.drop_feed("0001.snapshot.json", manifest("s1", segments, profiles));
    f.drop_feed("0002.delta.ndjson", R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segment":"vip"})" "\n");
    std::string other_key = write_file(f.tmp.path() + "/other.key", std::string(64, 'd'));
    f.drop_feed("0003.delta.ndjson", R"({"op":"delete","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous"})" "\n", other_key);
    f.drop_feed("0004.delta.ndjson", R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv02A","kind":"anonymous","segment":"vip"})" "\n"
                                     R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv02A","kind":"anonymous","segment":"gold"})" "\n");
    std::string yesterday = std::to_string(std::time(nullptr) - 86400);
    f.drop_feed("0005.orders.ndjson", R"({"customer":"c-1","at":)" + yesterday + R"(,"amount":5})" "\n");
    f.drop_feed("0006.delta.ndjson", R"({"op":"alias","anonymous":"vvvvvvvvvvvvvvvvvvv01A","known":"c-1"})" "\n");
    write_file(f.drop + "/.0007.delta.ndjson", "being written");
    write_file(f.drop + "/notes.txt", "not a feed");

    CHECK(f.run_once() == 1);  // something was rejected

    segsync::LiveDb live(f.db, {});
    CHECK(live.generation() == 4);  // snapshot 1, then 0002, 0005, 0006
    CHECK(live.feed_positions() == segsync::FeedPositions{{"drop", "0006.delta.ndjson"}});
    CHECK(dump(f.db, "profiles") ==
          R"({"id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segments":["vip","news"]})" "\n"
          R"({"attributes":{"last_order_at":)" + yesterday + R"(,"lifecycle":"new","order_count":1,"order_total":5,"rfm_frequency":1,"rfm_monetary":1,"rfm_recency":1},"id":"c-1","kind":"known","segments":[]})" "\n");
    CHECK(dump(f.db, "aliases") == R"({"anonymous":"vvvvvvvvvvvvvvvvvvv01A","known":"c-1"})" "\n");
    for (const char* done : {"0001.snapshot.json", "0001.snapshot.json.sig", "s1/segments.ndjson",
                             "s1/profiles.ndjson", "0002.delta.ndjson", "0005.orders.ndjson.sig", "0006.delta.ndjson"})
        CHECK(f.exists(std::string("done/") + done));
    CHECK_FALSE(f.exists("s1"));
    CHECK(f.exists("failed/0003.delta.ndjson.sig"));
    CHECK_THAT(read_file(f.drop + "/failed/0003.delta.ndjson.error"), Catch::Contains("bad signature"));
    CHECK_THAT(read_file(f.drop + "/failed/0004.delta.ndjson.error"),
               Catch::StartsWith(f.drop + "/0004.delta.ndjson:2: unknown segment \"gold\""));
    CHECK(f.exists(".0007.delta.ndjson"));
    CHECK(f.exists("notes.txt"));

    auto status = segsync::read_status(f.db);
    REQUIRE(status);
    CHECK(status->generation == 4);
    CHECK(status->last_success == "drop 0006.delta.ndjson");
    CHECK_THAT(status->last_error, Catch::Contains("0004.delta.ndjson"));
    REQUIRE(status->sources.size() == 1);
    CHECK(status->sources[0].pending == 0);
    CHECK(status->sources[0].caught_up_at > 0);
}

TEST_CASE("the daemon never applies a feed twice, even when it is dropped again", "[daemon]") {
    DropFixture f;
    std::string segments = write_file(f.drop + "/s1/segments.ndjson", "{\"name\":\"vip\"}\n");
    std::string profiles = write_file(f.drop + "/s1/profiles.ndjson", "");
    f.drop_feed("0001.snapshot.json", manifest("s1", segments, profiles));
    f.drop_feed("0002.delta.ndjson", R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segment":"vip"})" "\n");
    CHECK(f.run_once() == 0);
    CHECK(segsync::LiveDb(f.db, {}).generation() == 2);

    // Same name again (a crash before the move aside looks like this), and
    // a name that sorts before what was applied.
    std::filesystem::copy(f.drop + "/done/0002.delta.ndjson", f.drop + "/0002.delta.ndjson");
    f.drop_feed("0000.delta.ndjson", R"({"op":"delete","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous"})" "\n");
    CHECK(f.run_once() == 1);
    CHECK(segsync::LiveDb(f.db, {}).generation() == 2);
    CHECK(dump(f.db, "profiles") == R"({"id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segments":["vip"]})" "\n");
    CHECK_THAT(read_file(f.drop + "/failed/0000.delta.ndjson.error"), Catch::Contains("out of order"));
    CHECK_FALSE(f.exists("0002.delta.ndjson"));
}

TEST_CASE("a delta before any snapshot is rejected; the snapshot after it applies", "[daemon]") {
    DropFixture f;
    f.drop_feed("0001.delta.ndjson", R"({"op":"enter","id":"vvvvvvvvvvvvvvvvvvv01A","kind":"anonymous","segment":"vip"})" "\n");
    std::string segments = write_file(f.drop + "/s1/segments.ndjson", "{\"name\":\"vip\"}\n");
    std::string profiles = write_file(f.drop + "/s1/profiles.ndjson", "");
    f.drop_feed("0002.snapshot.json", manifest("s1", segments, profiles));
    CHECK(f.run_once() == 1);
    CHECK_THAT(read_file(f.drop + "/failed/0001.delta.ndjson.error"), Catch::Contains("a full snapshot must come first"));
    CHECK(segsync::LiveDb(f.db, {}).generation() == 1);
}

TEST_CASE("a second writer on the same database refuses to start", "[daemon]") {
    DropFixture f;
    std::filesystem::create_directories(f.drop);
    segsync::prepare_root(f.db);
    segsync::WriterLock held(f.db);
    CHECK(f.run_once() == 1);
    CHECK_FALSE(std::filesystem::exists(segsync::status_path(f.db)));
}
