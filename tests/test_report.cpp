#include <catch2/catch.hpp>

#include <sstream>

#include "sync/error.h"
#include "sync/report.h"
#include "sync/status.h"

using segsync::Counters;

namespace {

std::vector<segcore::schema::SegmentDef> catalogue() {
    return {{1, "vip", "Top customers", "crm", 10, {}},
            {2, "everyone", "All visitors", "web", 1, {}},
            {3, "rare", "Almost nobody", "crm", 1, {}},
            {4, "dormant", "Nobody", "crm", 1, {}},
            {5, "normal", "Some", "shop", 1, {}}};
}

Counters counters(std::uint64_t now, std::uint64_t requests, std::map<std::string, std::uint64_t> segments) {
    Counters c;
    c.now = now;
    c.created_at = 100;
    c.requests = requests;
    c.segments = std::move(segments);
    return c;
}

std::vector<std::string> names(const std::vector<segsync::SegmentRow>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.name);
    return out;
}

}  // namespace

TEST_CASE("report sorts segments into dead, near-universal and near-empty") {
    auto now = counters(100 + 86400, 10000, {{"vip", 500}, {"everyone", 9500}, {"rare", 3}, {"normal", 2000}, {"gone", 7}});
    auto r = segsync::build_report(catalogue(), now, nullptr, {});
    CHECK(r.from == 100);
    CHECK(r.requests == 10000);
    CHECK(names(r.dead) == std::vector<std::string>{"dormant"});
    CHECK(r.dead[0].owner == "crm");
    CHECK(names(r.near_universal) == std::vector<std::string>{"everyone"});
    CHECK(names(r.near_empty) == std::vector<std::string>{"rare"});
    CHECK(r.near_empty[0].share == Approx(0.0003));
}

TEST_CASE("a baseline makes the window: counts are differences") {
    auto then = counters(1000, 4000, {{"vip", 500}, {"everyone", 3900}, {"rare", 3}, {"normal", 100}});
    auto now = counters(5000, 10000, {{"vip", 500}, {"everyone", 9500}, {"rare", 3}, {"normal", 2000}});
    auto r = segsync::build_report(catalogue(), now, &then, {});
    CHECK(r.from == 1000);
    CHECK(r.requests == 6000);
    CHECK(names(r.dead) == std::vector<std::string>{"dormant", "rare", "vip"});
    CHECK(names(r.near_universal) == std::vector<std::string>{"everyone"});
}

TEST_CASE("thresholds are options") {
    auto now = counters(1000, 1000, {{"vip", 50}, {"everyone", 800}, {"rare", 1}, {"normal", 200}, {"dormant", 1}});
    segsync::ReportOptions o;
    o.near_universal = 0.8;
    o.near_empty = 0.1;
    auto r = segsync::build_report(catalogue(), now, nullptr, o);
    CHECK(names(r.near_universal) == std::vector<std::string>{"everyone"});
    CHECK(names(r.near_empty) == std::vector<std::string>{"dormant", "rare", "vip"});
}

TEST_CASE("report refuses a short window and a baseline of other counters") {
    auto now = counters(100 + 3 * 86400, 10, {});
    segsync::ReportOptions o;
    o.window = 90 * 86400;
    CHECK_THROWS_WITH(segsync::build_report(catalogue(), now, nullptr, o),
                      Catch::Contains("cover 3d 0h") && Catch::Contains("window of 90d 0h"));
    auto reset = counters(50, 5, {});
    reset.created_at = 7;
    CHECK_THROWS_WITH(segsync::build_report(catalogue(), now, &reset, {}), Catch::Contains("reset"));
    auto later = counters(now.now + 1, 10, {});
    CHECK_THROWS_AS(segsync::build_report(catalogue(), now, &later, {}), segsync::ImportError);
}

TEST_CASE("no requests: every segment is dead, none near-universal") {
    auto r = segsync::build_report(catalogue(), counters(200, 0, {}), nullptr, {});
    CHECK(r.dead.size() == 5);
    CHECK(r.near_universal.empty());
    CHECK(r.near_empty.empty());
}

TEST_CASE("counters parse from segedge_status JSON and bad input is named") {
    auto c = segsync::parse_counters(
        R"({"now":50,"counters_created_at":10,"requests":3,"segments":{"vip":2},"blocks":{},"snapshot":null})", "f.json");
    CHECK(c.now == 50);
    CHECK(c.created_at == 10);
    CHECK(c.segments.at("vip") == 2);
    CHECK_THROWS_WITH(segsync::parse_counters("{\"now\":1}", "f.json"), Catch::StartsWith("f.json: not segedge_status JSON"));
    CHECK_THROWS_WITH(segsync::parse_counters("<html>", "u"), Catch::StartsWith("u: not segedge_status JSON"));
}

TEST_CASE("the text report says there are no experiments rather than none missing a holdout") {
    std::ostringstream out;
    auto r = segsync::build_report(catalogue(), counters(100 + 86400, 10, {{"vip", 10}}), nullptr, {});
    segsync::print_report(r, false, out);
    CHECK(out.str().find("window: 1970-01-01T00:01:40Z to 1970-01-02T00:01:40Z (1d 0h), 10 requests\n") == 0);
    CHECK(out.str().find("segments with no matches: 4\n  dormant  matches 0 (0.000%)  owner crm  Nobody\n") !=
          std::string::npos);
    CHECK(out.str().find("experiments without a holdout: none (the snapshot has no experiments)") != std::string::npos);
}

TEST_CASE("the daemon's metrics file: per-source counters with escaped labels, lag as of writing") {
    segsync::DaemonStatus status;
    status.generation = 9;
    status.snapshot_bytes = 4096;
    segsync::SourceStatus s;
    s.name = "crm\"eu";
    s.applied = 3;
    s.rejected = 1;
    s.caught_up_at = 900;
    status.sources = {s};
    s.name = "never";
    s.caught_up_at = 0;
    status.sources.push_back(s);
    std::string text = segsync::render_metrics(status, 1000);
    CHECK(text.find("# TYPE segsync_feeds_applied_total counter\nsegsync_feeds_applied_total{source=\"crm\\\"eu\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("segsync_feeds_rejected_total{source=\"crm\\\"eu\"} 1\n") != std::string::npos);
    CHECK(text.find("segsync_source_lag_seconds{source=\"crm\\\"eu\"} 100\n") != std::string::npos);
    CHECK(text.find("segsync_source_lag_seconds{source=\"never\"} -1\n") != std::string::npos);
    CHECK(text.find("segsync_snapshot_bytes 4096\n") != std::string::npos);
    CHECK(text.find("segsync_generation 9\n") != std::string::npos);
}
