#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "segcore/identity.h"
#include "segcore/snapshot.h"
#include "snapshot_fixture.h"

namespace {

using segcore::schema::VisitorKind;

const std::string kBrowser = fixture::visitor_id("browser");     // aliased to cust-a
const std::string kOther = fixture::visitor_id("other");         // not aliased
const std::string kOrphan = fixture::visitor_id("orphan");       // aliased to cust-none
const std::string kFresh = fixture::visitor_id("fresh");

// vip 100, cart 50, news 10, deals 10 (tie: lower id first)
std::string snapshot_dir() {
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 100), fixture::segment(2, "cart", 50),
                     fixture::segment(3, "news", 10), fixture::segment(4, "deals", 10)};
    spec.profiles = {{kBrowser, {2, 3}},
                     {kOther, {4}},
                     {kFresh, {1}},
                     {"cust-a", {1, 3}, VisitorKind::known},
                     {"cust-b", {4}, VisitorKind::known}};
    spec.aliases = {{kBrowser, "cust-a"}, {kOrphan, "cust-none"}};
    fixture::write_snapshot(dir, spec);
    return dir;
}

struct Resolved {
    bool known;
    std::vector<std::string> segments;
};

Resolved resolve(segcore::Snapshot* snapshot, std::string anonymous, std::string known = "",
                 bool is_new = false) {
    segcore::VisitorClaims claims;
    claims.anonymous_id = anonymous;
    claims.known_id = known;
    claims.anonymous_is_new = is_new;
    std::uint32_t ids[segcore::kMaxResolvedSegments];
    auto resolution = segcore::resolve_identity(snapshot, claims, ids);
    Resolved result{resolution.known, {}};
    for (std::size_t i = 0; i < resolution.segments; ++i)
        result.segments.push_back(snapshot->segment(ids[i])->name);
    return result;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("an aliased anonymous visitor gets the known profile merged with its own", "[identity]") {
    segcore::Snapshot snapshot(snapshot_dir());
    auto r = resolve(&snapshot, kBrowser);
    CHECK(r.known);
    // cust-a {vip, news} + browser {cart, news}: once each, priority order
    CHECK(r.segments == Names{"vip", "cart", "news"});
}

TEST_CASE("a verified known id wins over the alias", "[identity]") {
    segcore::Snapshot snapshot(snapshot_dir());
    auto r = resolve(&snapshot, kBrowser, "cust-b");
    CHECK(r.known);
    // cust-b {deals} + browser {cart, news}; cust-a's vip does not apply
    CHECK(r.segments == Names{"cart", "news", "deals"});
}

TEST_CASE("without a known id or alias only the anonymous profile applies", "[identity]") {
    segcore::Snapshot snapshot(snapshot_dir());
    auto r = resolve(&snapshot, kOther);
    CHECK_FALSE(r.known);
    CHECK(r.segments == Names{"deals"});
    r = resolve(&snapshot, fixture::visitor_id("nobody"));
    CHECK_FALSE(r.known);
    CHECK(r.segments.empty());
    r = resolve(&snapshot, "");
    CHECK_FALSE(r.known);
    CHECK(r.segments.empty());
}

TEST_CASE("a known id without a profile is still known", "[identity]") {
    segcore::Snapshot snapshot(snapshot_dir());
    auto aliased = resolve(&snapshot, kOrphan);
    CHECK(aliased.known);
    CHECK(aliased.segments.empty());
    auto signed_in = resolve(&snapshot, kOther, "cust-none");
    CHECK(signed_in.known);
    CHECK(signed_in.segments == Names{"deals"});
    auto no_cookie = resolve(&snapshot, "", "cust-a");
    CHECK(no_cookie.known);
    CHECK(no_cookie.segments == Names{"vip", "news"});
}

TEST_CASE("an id issued on this request is not looked up", "[identity]") {
    segcore::Snapshot snapshot(snapshot_dir());
    CHECK(resolve(&snapshot, kFresh).segments == Names{"vip"});
    auto r = resolve(&snapshot, kFresh, "", true);
    CHECK_FALSE(r.known);
    CHECK(r.segments.empty());
    CHECK(resolve(&snapshot, kFresh, "cust-b", true).segments == Names{"deals"});
}

TEST_CASE("without a snapshot only a verified known id is known", "[identity]") {
    std::uint32_t ids[segcore::kMaxResolvedSegments];
    segcore::VisitorClaims claims;
    claims.anonymous_id = kBrowser;
    auto r = segcore::resolve_identity(nullptr, claims, ids);
    CHECK_FALSE(r.known);
    CHECK(r.segments == 0);
    claims.known_id = "cust-a";
    r = segcore::resolve_identity(nullptr, claims, ids);
    CHECK(r.known);
    CHECK(r.segments == 0);
}

TEST_CASE("two full profiles merge into at most kMaxResolvedSegments ids", "[identity]") {
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    std::vector<std::uint32_t> odd, even;
    for (std::uint32_t id = 1; id <= 512; ++id) {
        spec.segments.push_back(fixture::segment(id, "s" + std::to_string(id), 0));
        (id % 2 ? odd : even).push_back(id);
    }
    spec.profiles = {{kOther, odd}, {"cust-a", even, VisitorKind::known}};
    fixture::write_snapshot(dir, spec);
    segcore::Snapshot snapshot(dir);
    auto r = resolve(&snapshot, kOther, "cust-a");
    REQUIRE(r.segments.size() == 512);
    for (std::uint32_t id = 1; id <= 512; ++id) CHECK(r.segments[id - 1] == "s" + std::to_string(id));
}

TEST_CASE("Snapshot reads and verifies aliases, and opens snapshots without them", "[identity][store]") {
    segcore::Snapshot snapshot(snapshot_dir());
    char known[segcore::schema::kMaxVisitorIdSize];
    {
        segcore::Snapshot::Read read(snapshot);
        std::size_t n = read.alias(kBrowser, known);
        CHECK(std::string(known, n) == "cust-a");
        CHECK(read.alias(kOther, known) == 0);
        std::uint32_t ids[4];
        CHECK(read.profile(VisitorKind::known, "cust-a", ids, 4) == 2);
    }
    CHECK(snapshot.verify().aliases == 2);

    auto old_dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec old_spec;
    old_spec.aliases_db = false;
    fixture::write_snapshot(old_dir, old_spec);
    segcore::Snapshot old(old_dir);
    CHECK(segcore::Snapshot::Read(old).alias(kBrowser, known) == 0);
    CHECK(old.verify().aliases == 0);
}

TEST_CASE("verify rejects an alias the module could never look up", "[identity][store]") {
    auto [anonymous, known] = GENERATE(table<std::string, std::string>(
        {{"not-canonical", "cust-a"}, {fixture::visitor_id("x"), ""},
         {fixture::visitor_id("x"), std::string(511, 'k')}}));
    auto dir = fixture::temp_dir() + "/snap";
    fixture::SnapshotSpec spec;
    spec.aliases = {{anonymous, known}};
    fixture::write_snapshot(dir, spec);
    CHECK_THROWS_WITH(segcore::Snapshot(dir).verify(), Catch::Contains("malformed alias"));
}
