#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "segcore/block_choice.h"
#include "segcore/experiments.h"
#include "segcore/snapshot.h"
#include "sync/import.h"
#include "sync/report.h"
#include "sync_fixture.h"

namespace ex = segcore::experiments;

namespace {

const std::string kSegments =
    R"({"name":"vip","description":"big spenders","owner":"crm","priority":100})" "\n"
    R"({"name":"new","description":"first visit","owner":"crm","priority":10})" "\n";

const std::string kLayer = R"({"layer":"checkout-layer","holdout":1000})" "\n";

std::string experiment(const std::string& id, const std::string& extra,
                       const std::string& variants =
                           R"([{"name":"control","weight":5000},{"name":"B","weight":5000}])") {
    return R"({"id":")" + id + R"(","status":"running","salt":")" + id + R"(-salt","variants":)" + variants +
           extra + "}\n";
}

struct Fixture {
    fixture::TempDir tmp;
    std::string db = tmp.path() + "/db";
    std::string experiments = tmp.path() + "/experiments.ndjson";

    segsync::ImportOptions options() const {
        segsync::ImportOptions o;
        o.db = db;
        o.segments_path = fixture::write_file(tmp.path() + "/segments.ndjson", kSegments);
        o.profiles_path = fixture::write_file(tmp.path() + "/profiles.ndjson", "");
        o.experiments_path = experiments;
        return o;
    }

    std::string current() const {
        std::error_code ec;
        return std::filesystem::read_symlink(db + "/current", ec).string();
    }
};

// One bad input file: its lines, the line the error must name, and the text.
struct Bad {
    std::string lines;
    int line;
    std::string message;
};

// Each bad version of `path` fails the import naming path:line and leaves
// the published snapshot as it was.
void check_rejected(const Fixture& f, const segsync::ImportOptions& options, const std::string& path,
                    const std::vector<Bad>& bad) {
    const std::string target = f.current();
    for (const auto& b : bad) {
        INFO(b.lines);
        fixture::write_file(path, b.lines);
        std::string message;
        try {
            segsync::run_import(options);
        } catch (const segsync::ImportError& e) {
            message = e.what();
        }
        CHECK(message.rfind(path + ":" + std::to_string(b.line) + ": ", 0) == 0);
        CHECK_THAT(message, Catch::Contains(b.message));
        CHECK(f.current() == target);
    }
}

}  // namespace

TEST_CASE("experiments are imported in id order with their layer's holdout", "[import][experiments]") {
    Fixture f;
    fixture::write_file(f.experiments,
                        kLayer + experiment("hero", R"(,"holdout":500)") +
                            experiment("checkout", R"(,"segments":["vip"],"layer":"checkout-layer","layer_range":[1000,5000])") +
                            experiment("upsell", R"(,"layer":"checkout-layer","layer_range":[5000,10000])"));
    auto result = segsync::run_import(f.options());
    CHECK(result.experiments == 3);
    segcore::Snapshot snapshot(f.db + "/current");
    const auto& all = snapshot.experiments().all();
    REQUIRE(all.size() == 3);
    CHECK(all[0].id == "checkout");
    CHECK(all[0].segments == std::vector<std::uint32_t>{1});
    CHECK(all[0].holdout == 1000);
    CHECK(all[0].range_begin == 1000);
    CHECK(all[0].range_end == 5000);
    CHECK(all[1].id == "hero");
    CHECK(all[1].layer.empty());
    CHECK(all[1].holdout == 500);
    CHECK(all[1].range_begin == 500);
    CHECK(all[2].id == "upsell");
    CHECK(snapshot.verify().experiments == 3);
}

TEST_CASE("bad experiments are rejected with FILE:LINE and publish nothing", "[import][experiments]") {
    Fixture f;
    fixture::write_file(f.experiments, experiment("hero", ""));
    segsync::run_import(f.options());
    const std::string in_layer = R"(,"layer":"checkout-layer","layer_range":[1000,6000])";
    std::vector<Bad> bad = {
        {experiment("a", "", R"([{"name":"control","weight":5000},{"name":"B","weight":4999}])"), 1,
         "variant weights sum to 9999, not 10000 basis points"},
        {experiment("a", R"(,"segments":["vipp"])"), 1, R"(unknown segment "vipp")"},
        {kLayer + experiment("a", in_layer) +
             experiment("b", R"(,"layer":"checkout-layer","layer_range":[5999,10000])"),
         3, R"("layer_range" of "b" overlaps "a"'s (line 2) in layer "checkout-layer")"},
        {kLayer + experiment("a", R"(,"layer":"checkout-layer","layer_range":[500,6000])"), 2,
         R"(inside layer "checkout-layer"'s holdout [0, 1000))"},
        {experiment("a", in_layer), 1, R"(unknown layer "checkout-layer")"},
        {kLayer + experiment("a", in_layer + R"(,"holdout":10)"), 2, "takes the layer's holdout"},
        {experiment("a", "") + experiment("a", ""), 2, R"(duplicate experiment "a" (first on line 1))"},
        {kLayer + kLayer, 2, R"(duplicate layer "checkout-layer" (first on line 1))"},
        {experiment("a", "", R"([{"name":"holdout","weight":10000}])"), 1, "reserved"},
        {experiment("a", "", R"([{"name":"b","weight":5000},{"name":"b","weight":5000}])"), 1,
         R"(duplicate variant "b")"},
        {experiment("A", ""), 1, R"(invalid experiment name "A")"},
        {experiment(std::string(32, 'a'), ""), 1, "use 1..31 characters of a-z"},
        {experiment("a", "", R"([{"name":"B c","weight":10000}])"), 1,
         R"(invalid variant name "B c": use 1..31 characters of A-Z, a-z)"},
        {experiment("a", R"(,"layer_range":[0,10])"), 1, R"("layer_range" needs a "layer")"},
        {R"({"id":"a","status":"live","salt":"s","variants":[]})" "\n", 1, R"("status" must be "running" or "paused")"},
        {R"({"id":"a","status":"running","variants":[{"name":"c","weight":10000}]})" "\n", 1, R"(missing field "salt")"},
        {experiment("a", R"(,"colour":"red")"), 1, R"(unknown field "colour")"},
        {experiment("a", R"(,"holdout":10000)"), 1, R"("holdout" must be an integer 0..9999)"},
    };
    check_rejected(f, f.options(), f.experiments, bad);
}

TEST_CASE("report lists running experiments without a holdout", "[report][experiments]") {
    ex::ExperimentDef held, bare, paused;
    held.id = "checkout";
    held.holdout = 500;
    bare.id = "hero";
    paused.id = "promo";
    paused.status = ex::Status::paused;
    segsync::Report report;
    segsync::check_holdouts(report, {held, bare, paused});
    CHECK(report.experiments == 3);
    CHECK(report.experiments_without_holdout == std::vector<std::string>{"hero"});
    std::ostringstream out;
    segsync::print_report(report, false, out);
    CHECK_THAT(out.str(), Catch::Contains("experiments without a holdout: 1\n  hero\n"));
}

TEST_CASE("blocks may carry content per experiment variant", "[import][experiments][blocks]") {
    Fixture f;
    fixture::write_file(f.experiments, experiment("checkout", R"(,"segments":["vip"])"));
    auto options = f.options();
    options.blocks_path = f.tmp.path() + "/blocks.ndjson";
    const std::string base = R"({"block":"hero","segment":"vip","html":"<h2>VIP</h2>"})" "\n";
    auto variant_line = [](const std::string& experiment, const std::string& variant, const std::string& segment) {
        return R"({"block":"hero","segment":")" + segment + R"(","experiment":")" + experiment +
               R"(","variant":")" + variant + R"(","html":"<h2>B</h2>"})" "\n";
    };
    fixture::write_file(options.blocks_path, variant_line("checkout", "B", "vip") + base);
    CHECK(segsync::run_import(options).blocks == 2);
    segcore::Snapshot snapshot(f.db + "/current");
    segcore::BlockChoice choice;
    std::uint32_t vip = 1;
    REQUIRE(snapshot.blocks().choose(&vip, 1, &choice) == 1);
    snapshot.blocks().apply_variants(&choice, 1, "checkout:B");
    CHECK(choice.variant == "checkout:B");

    std::vector<Bad> bad = {
        {base + variant_line("hero", "B", "vip"), 2, R"(unknown experiment "hero")"},
        {base + variant_line("checkout", "C", "vip"), 2, R"(experiment "checkout" has no variant "C")"},
        {base + variant_line("checkout", "B", "new"), 2,
         R"(content for variant "checkout:B" of block "hero" needs the block's content for segment "new" too)"},
        {base + variant_line("checkout", "B", "vip") + variant_line("checkout", "B", "vip"), 3,
         R"(duplicate content for block "hero" and variant "checkout:B" (first on line 2))"},
    };
    check_rejected(f, options, options.blocks_path, bad);
}
