// RFM scores and lifecycle stages: the scoring rules on hand-checked
// values, then whole orders feeds applied in place and at import.
#include <catch2/catch.hpp>

#include "sync/import.h"
#include "sync/live.h"
#include "sync/publish.h"
#include "sync/rfm.h"
#include "sync_fixture.h"

namespace {

using fixture::dump;
using fixture::write_file;

constexpr std::int64_t kAsOf = 1719792000;  // 2024-07-01T00:00:00Z
constexpr std::int64_t kDay = 86400;

segsync::RfmStats apply_orders(const std::string& db, const std::string& orders,
                               std::size_t held = segsync::kRfmHeldInMemory) {
    segsync::RfmStats stats;
    segsync::LiveDb live(db, {});
    live.apply("test", "orders", 0, [&](segsync::ProfileEditor& editor) {
        stats = segsync::apply_rfm(orders, {}, kAsOf, editor, std::filesystem::path(orders).parent_path(),
                                   nullptr, held);
    });
    return stats;
}

// Five customers, one per score, hand-checked in the expectations below.
const std::string kOrders =
    R"({"customer":"a","at":"2024-06-30T00:00:00Z","amount":10})" "\n"
    R"({"customer":"b","at":"2024-06-01T00:00:00Z","amount":20})" "\n"
    R"({"customer":"b","at":"2024-06-20T02:00:00+02:00","amount":30})" "\n"
    R"({"customer":"c","at":1704067200,"amount":100})" "\n"
    R"({"customer":"c","at":1709251200,"amount":100})" "\n"
    R"({"customer":"c","at":"2024-04-01T00:00:00Z","amount":100})" "\n"
    R"({"customer":"d","at":1704067200,"amount":10})" "\n"
    R"({"customer":"d","at":1704067200,"amount":10})" "\n"
    R"({"customer":"d","at":1704067200,"amount":10})" "\n"
    R"({"customer":"d","at":"2024-03-01T00:00:00.250Z","amount":10})" "\n"
    R"({"customer":"e","at":1672531200,"amount":200})" "\n"
    R"({"customer":"e","at":1672531200,"amount":200})" "\n"
    R"({"customer":"e","at":1672531200,"amount":200})" "\n"
    R"({"customer":"e","at":1672531200,"amount":200})" "\n"
    R"({"customer":"e","at":1672531200,"amount":200.5})" "\n";

// recency by last order: e < d < c < b < a; frequency a1 b2 c3 d4 e5;
// monetary a10 < d40 < b50 < c300 < e1000.5.
const std::string kScored =
    R"({"attributes":{"last_order_at":1719705600,"lifecycle":"new","order_count":1,"order_total":10,"rfm_frequency":1,"rfm_monetary":1,"rfm_recency":5},"id":"a","kind":"known","segments":[]})" "\n"
    R"({"attributes":{"last_order_at":1718841600,"lifecycle":"repeat","order_count":2,"order_total":50,"rfm_frequency":2,"rfm_monetary":3,"rfm_recency":4},"id":"b","kind":"known","segments":["vip"]})" "\n"
    R"({"attributes":{"last_order_at":1711929600,"lifecycle":"high-value-quiet","order_count":3,"order_total":300,"rfm_frequency":3,"rfm_monetary":4,"rfm_recency":3},"id":"c","kind":"known","segments":[]})" "\n"
    R"({"attributes":{"last_order_at":1709251200,"lifecycle":"at-risk","order_count":4,"order_total":40,"rfm_frequency":4,"rfm_monetary":2,"rfm_recency":2},"id":"d","kind":"known","segments":[]})" "\n"
    R"({"attributes":{"last_order_at":1672531200,"lifecycle":"lapsed","order_count":5,"order_total":1000.5,"rfm_frequency":5,"rfm_monetary":5,"rfm_recency":1},"id":"e","kind":"known","segments":[]})" "\n";

// An import of one known vip profile ("b") with `orders`.
segsync::ImportOptions import_with_orders(const fixture::TempDir& tmp, const std::string& orders) {
    segsync::ImportOptions o;
    o.db = tmp.path() + "/db";
    o.segments_path = write_file(tmp.path() + "/in/segments.ndjson", R"({"name":"vip","priority":10})" "\n");
    o.profiles_path = write_file(tmp.path() + "/in/profiles.ndjson",
                                 R"({"id":"b","kind":"known","segments":["vip"]})" "\n");
    o.orders_path = write_file(tmp.path() + "/in/orders.ndjson", orders);
    o.as_of = kAsOf;
    return o;
}

}  // namespace

TEST_CASE("quintile scores count the cut points a value exceeds; ties score alike", "[rfm]") {
    segsync::QuintileCuts cuts{1, 1, 2, 3};
    CHECK(segsync::quintile_score(0, cuts) == 1);
    CHECK(segsync::quintile_score(1, cuts) == 1);
    CHECK(segsync::quintile_score(1.5, cuts) == 3);
    CHECK(segsync::quintile_score(2, cuts) == 3);
    CHECK(segsync::quintile_score(3, cuts) == 4);
    CHECK(segsync::quintile_score(10, cuts) == 5);
}

TEST_CASE("lifecycle stages follow the thresholds, most severe first", "[rfm]") {
    segsync::RfmThresholds t;  // quiet 60, at risk 90, lapsed 365, high value 4
    auto stage = [&](std::uint64_t orders, int monetary, std::int64_t days_ago) {
        return segsync::lifecycle_stage({orders, 1, kAsOf - days_ago * kDay}, monetary, kAsOf, t);
    };
    CHECK(stage(1, 1, 0) == "new");
    CHECK(stage(1, 5, 60) == "new");
    CHECK(stage(2, 3, 90) == "repeat");
    CHECK(stage(2, 4, 61) == "high-value-quiet");
    CHECK(stage(2, 3, 91) == "at-risk");
    CHECK(stage(1, 1, 91) == "at-risk");
    CHECK(stage(9, 5, 366) == "lapsed");
    CHECK(stage(3, 1, -5) == "repeat");  // an order after as-of counts as today
    t.lapsed_days = 30;
    t.quiet_days = 10;
    t.at_risk_days = 20;
    CHECK(stage(2, 4, 11) == "high-value-quiet");
    CHECK(stage(2, 3, 21) == "at-risk");
    CHECK(stage(2, 5, 31) == "lapsed");
}

TEST_CASE("an orders feed scores every customer onto their known profile", "[rfm]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(
        tmp, R"({"id":"b","kind":"known","segments":["vip"]})" "\n"
             R"({"id":"bbbbbbbbbbbbbbbbbbbbbA","kind":"anonymous","segments":["news"]})" "\n");
    auto orders = write_file(tmp.path() + "/o/x.orders.ndjson", kOrders);
    // held = 2 forces totals and value counts through several merges.
    auto held = GENERATE(std::size_t{2}, segsync::kRfmHeldInMemory);
    auto stats = apply_orders(db, orders, held);
    CHECK(stats.orders == 15);
    CHECK(stats.customers == 5);
    CHECK(stats.created == 4);
    CHECK(stats.cleared == 0);
    std::string profiles = dump(db, "profiles");
    CHECK(profiles == R"({"id":"bbbbbbbbbbbbbbbbbbbbbA","kind":"anonymous","segments":["news"]})" "\n" + kScored);
    CHECK(segcore::Snapshot(db + "/current").verify().profiles == 6);
}

TEST_CASE("customers missing from the next orders feed lose their RFM attributes", "[rfm]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(
        tmp, R"({"id":"z","kind":"known","segments":["vip"],"attributes":{"tier":"gold"}})" "\n");
    apply_orders(db, write_file(tmp.path() + "/o/1.orders.ndjson",
                                R"({"customer":"z","at":1719705600,"amount":5})" "\n"
                                R"({"customer":"y","at":1719705600,"amount":5})" "\n"));
    auto second = GENERATE(std::size_t{1}, segsync::kRfmHeldInMemory);
    auto stats = apply_orders(db, write_file(tmp.path() + "/o/2.orders.ndjson",
                                             R"({"customer":"x","at":1719705600,"amount":5})" "\n"),
                              second);
    CHECK(stats.cleared == 2);
    // z keeps what the feed did not set; y had nothing else and is gone.
    CHECK(dump(db, "profiles") ==
          R"({"attributes":{"last_order_at":1719705600,"lifecycle":"new","order_count":1,"order_total":5,"rfm_frequency":1,"rfm_monetary":1,"rfm_recency":1},"id":"x","kind":"known","segments":[]})" "\n"
          R"({"attributes":{"tier":"gold"},"id":"z","kind":"known","segments":["vip"]})" "\n");
}

TEST_CASE("a bad order line rejects the whole feed, naming file and line", "[rfm]") {
    fixture::TempDir tmp;
    auto db = fixture::import_db(tmp, "");
    auto [line, expected] = GENERATE(table<std::string, std::string>({
        {R"({"customer":"a","at":"yesterday","amount":1})", ":2: field \"at\" \"yesterday\" is not an RFC 3339 time"},
        {R"({"customer":"a","at":-5,"amount":1})", ":2: field \"at\" must be unix seconds"},
        {R"({"customer":"a","at":1,"amount":-1})", ":2: field \"amount\" must be a finite number >= 0"},
        {R"({"customer":"a","at":1,"amount":"12"})", ":2: field \"amount\" must be a number, got string"},
        {R"({"customer":"","at":1,"amount":1})", ":2: field \"customer\" must be 1 to 510 bytes"},
        {R"({"customer":"a","at":1,"amount":1,"currency":"EUR"})", ":2: unknown field \"currency\""},
        {R"({"customer":"a","at":"2024-13-01T00:00:00Z","amount":1})", ":2: field \"at\" \"2024-13-01T00:00:00Z\" is not an RFC 3339 time"},
    }));
    auto orders = write_file(tmp.path() + "/o/bad.orders.ndjson",
                             R"({"customer":"a","at":1,"amount":1})" "\n" + line + "\n");
    try {
        apply_orders(db, orders);
        FAIL("the feed was applied");
    } catch (const segsync::ImportError& e) {
        CHECK_THAT(e.what(), Catch::StartsWith(orders + expected));
    }
    CHECK(dump(db, "profiles").empty());
    CHECK(segsync::LiveDb(db, {}).generation() == 1);
}

TEST_CASE("segsync import --orders computes the attributes into the new snapshot", "[rfm][import]") {
    fixture::TempDir tmp;
    auto result = segsync::run_import(import_with_orders(tmp, kOrders));
    CHECK(result.profiles == 5);
    CHECK(result.attributes == 7);
    CHECK(result.rfm.customers == 5);
    CHECK(dump(tmp.path() + "/db", "profiles") == kScored);
}

TEST_CASE("the map of an import with orders is sized for the RFM attributes too", "[rfm][import][map]") {
    fixture::TempDir tmp;
    std::string orders;
    for (int i = 0; i < 30000; ++i)
        orders += R"({"customer":"cust-)" + std::to_string(i) + R"(","at":1717200000,"amount":)" +
                  std::to_string(i % 500) + "}\n";
    auto o = import_with_orders(tmp, orders);
    o.min_map_size = std::size_t{1} << 20;  // the daemon's initial_map_size_mb 1
    auto result = segsync::run_import(o);   // was MDB_MAP_FULL: the map ignored the orders
    CHECK(result.rfm.customers == 30000);
    CHECK(result.profiles == 30001);
}
