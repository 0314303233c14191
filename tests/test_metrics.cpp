#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "segcore/block_choice.h"
#include "segcore/metrics.h"
#include "segcore/snapshot.h"
#include "snapshot_fixture.h"

using namespace segcore::metrics;

namespace {

// A zeroed Zone in memory shared with forked children, as nginx's is.
struct SharedZone {
    SharedZone() {
        void* p = mmap(nullptr, sizeof(Zone), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        zone = static_cast<Zone*>(p);
        init(*zone, 1000);
    }
    ~SharedZone() { munmap(zone, sizeof(Zone)); }
    Zone* zone;
};

std::unique_ptr<segcore::Snapshot> open_snapshot(const std::string& dir,
                                                 std::vector<segcore::schema::SegmentDef> segments,
                                                 std::vector<fixture::Block> blocks = {}) {
    fixture::SnapshotSpec spec;
    spec.segments = std::move(segments);
    spec.blocks = std::move(blocks);
    fixture::write_snapshot(dir, spec);
    return std::make_unique<segcore::Snapshot>(dir);
}

RenderInput input(const Zone& zone) {
    RenderInput in;
    in.zone = &zone;
    in.now = 2000;
    in.fail_causes = {"db", "cookie"};
    return in;
}

}  // namespace

TEST_CASE("init leaves a live zone alone and resets garbage") {
    SharedZone shared;
    add(shared.zone->requests, 7);
    init(*shared.zone, 5000);
    CHECK(read(shared.zone->requests) == 7);
    CHECK(shared.zone->created_at == 1000);
    shared.zone->magic = 0;
    init(*shared.zone, 5000);
    CHECK(valid(*shared.zone));
    CHECK(read(shared.zone->requests) == 0);
    CHECK(shared.zone->created_at == 5000);
}

TEST_CASE("a name claims one slot, found again by every process") {
    SharedZone shared;
    Slot* table = shared.zone->segments;
    int vip = find_or_claim(table, kSegmentSlots, "vip");
    REQUIRE(vip >= 0);
    CHECK(find_or_claim(table, kSegmentSlots, "vip") == vip);
    CHECK(find_or_claim(table, kSegmentSlots, "sale") != vip);
    CHECK(find_or_claim(table, kSegmentSlots, "") == -1);
    CHECK(find_or_claim(table, kSegmentSlots, std::string(65, 'x')) == -1);

    // Forked children racing to claim the same names end up with one slot each.
    pid_t children[4];
    for (pid_t& child : children) {
        child = fork();
        if (child == 0) {
            for (int i = 0; i < 200; ++i) add(table[find_or_claim(table, kSegmentSlots, "n" + std::to_string(i))].count);
            _exit(0);
        }
    }
    for (pid_t child : children) waitpid(child, nullptr, 0);
    int named = 0;
    for (std::size_t i = 0; i < kSegmentSlots; ++i)
        if (table[i].state == 2) {
            ++named;
            std::string name(table[i].name, table[i].length);
            if (name != "vip" && name != "sale") CHECK(table[i].count == 4);
        }
    CHECK(named == 202);
}

TEST_CASE("a full table refuses new names") {
    SharedZone shared;
    Slot* table = shared.zone->blocks;
    for (std::size_t i = 0; i < kBlockSlots; ++i) REQUIRE(find_or_claim(table, kBlockSlots, "b" + std::to_string(i)) >= 0);
    CHECK(find_or_claim(table, kBlockSlots, "one-more") == -1);
    CHECK(find_or_claim(table, kBlockSlots, "b7") >= 0);
}

TEST_CASE("the recorder counts by name across snapshots whose ids differ") {
    SharedZone shared;
    std::string dir = fixture::temp_dir();
    auto first = open_snapshot(dir + "/a", {fixture::segment(1, "vip", 10), fixture::segment(2, "sale", 5)},
                               {{"hero", 1, "<b>vip</b>", ""}});
    auto second = open_snapshot(dir + "/b", {fixture::segment(7, "vip", 10)});
    Recorder recorder(shared.zone);
    std::uint32_t both[] = {1, 2};
    recorder.use(first.get(), 1);
    recorder.request(false);
    recorder.segments(both, 2);
    segcore::BlockChoice hero{0, 1, {}};
    recorder.blocks(&hero, 1);
    std::uint32_t vip_now = 7, unknown = 99;
    recorder.use(second.get(), 1);
    recorder.request(true);
    recorder.segments(&vip_now, 1);
    recorder.segments(&unknown, 1);
    recorder.fail_open(1);
    recorder.fail_open(kFailCauses);  // out of range: ignored

    auto json = render_json(input(*shared.zone));
    CHECK(json.find("\"requests\":2,\"stale_requests\":1,\"uncounted\":1,\"fail_open\":{\"db\":0,\"cookie\":1}") !=
          std::string::npos);
    CHECK(json.find("\"vip\":2") != std::string::npos);
    CHECK(json.find("\"sale\":1") != std::string::npos);
    CHECK(json.find("\"blocks\":{\"hero\":1}") != std::string::npos);
    CHECK(json.find("\"snapshot\":null") != std::string::npos);
}

TEST_CASE("label values and JSON strings are escaped") {
    CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    CHECK(escape_label("plain") == "plain");
    CHECK(escape_json("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\u000a\\u0001\"");
}

TEST_CASE("the exposition has HELP and TYPE before each family, counters end in _total") {
    SharedZone shared;
    add(shared.zone->segments[find_or_claim(shared.zone->segments, kSegmentSlots, "vip")].count, 3);
    RenderInput in = input(*shared.zone);
    in.gauges.has_snapshot = true;
    in.gauges.generation = 4;
    in.gauges.map_size = 100;
    in.gauges.map_used = 40;
    std::string text = render_prometheus(in);
    CHECK(text.find("# HELP segedge_segment_matches_total ") != std::string::npos);
    CHECK(text.find("# TYPE segedge_segment_matches_total counter\nsegedge_segment_matches_total{segment=\"vip\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("segedge_fail_open_total{cause=\"cookie\"} 0\n") != std::string::npos);
    CHECK(text.find("# TYPE segedge_snapshot_generation gauge\nsegedge_snapshot_generation 4\n") != std::string::npos);
    CHECK(text.find("segedge_lmdb_map_used_bytes 40\n") != std::string::npos);
    CHECK(text.back() == '\n');

    in.gauges.has_snapshot = false;
    CHECK(render_prometheus(in).find("segedge_snapshot_generation") == std::string::npos);
}

TEST_CASE("a slot left half-claimed by a dead process does not hang the others") {
    SharedZone shared;
    Slot* table = shared.zone->segments;
    int vip = find_or_claim(table, kSegmentSlots, "vip");
    table[vip].state = 1;  // as if its claimer died before naming it
    int again = find_or_claim(table, kSegmentSlots, "vip");
    CHECK(again >= 0);
    CHECK(again != vip);
}

TEST_CASE("exposures are counted by experiment:variant across snapshots") {
    namespace ex = segcore::experiments;
    SharedZone shared;
    std::string dir = fixture::temp_dir();
    ex::ExperimentDef checkout;
    checkout.id = "checkout";
    checkout.salt = "s";
    checkout.variants = {{"control", 5000}, {"B", 5000}};
    ex::ExperimentDef alpha = checkout;
    alpha.id = "alpha";
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 10)};
    spec.experiments = {checkout};
    fixture::write_snapshot(dir + "/a", spec);
    spec.experiments = {alpha, checkout};  // checkout moves to index 1
    fixture::write_snapshot(dir + "/b", spec);
    segcore::Snapshot first(dir + "/a"), second(dir + "/b");
    Recorder recorder(shared.zone);
    recorder.use(&first, 1);
    ex::Assignment b{0, 1}, holdout{0, ex::kHoldoutIndex}, bogus{5, 0};
    recorder.exposures(&b, 1);
    recorder.exposures(&holdout, 1);
    recorder.exposures(&bogus, 1);
    recorder.use(&second, 1);
    ex::Assignment b_again{1, 1}, alpha_control{0, 0};
    recorder.exposures(&b_again, 1);
    recorder.exposures(&alpha_control, 1);

    auto json = render_json(input(*shared.zone));
    CHECK(json.find("\"uncounted\":1,") != std::string::npos);
    CHECK(json.find("\"checkout:B\":2") != std::string::npos);
    CHECK(json.find("\"checkout:holdout\":1") != std::string::npos);
    CHECK(json.find("\"checkout:control\":0") != std::string::npos);
    CHECK(json.find("\"alpha:control\":1") != std::string::npos);
    CHECK(render_prometheus(input(*shared.zone))
              .find("segedge_experiment_exposures_total{exposure=\"checkout:B\"} 2\n") != std::string::npos);
}
