#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "segcore/experiments.h"

using namespace segcore::experiments;

namespace {

constexpr int kIds = 100000;

std::string visitor(int i) { return "visitor-" + std::to_string(i); }

ExperimentDef split(std::string id, std::vector<std::uint32_t> weights) {
    ExperimentDef def;
    def.id = id;
    def.salt = id + "-salt";
    const char* names[] = {"control", "B", "C", "D"};
    for (std::size_t i = 0; i < weights.size(); ++i) def.variants.push_back({names[i], weights[i]});
    return def;
}

// Pearson's chi-square of observed counts against weights (basis points).
double chi_square(const std::map<std::string_view, int>& observed, const ExperimentDef& def,
                  int total) {
    double chi = 0;
    for (const auto& v : def.variants) {
        double expected = total * (v.weight / double(kBuckets));
        auto it = observed.find(v.name);
        double seen = it == observed.end() ? 0 : it->second;
        chi += (seen - expected) * (seen - expected) / expected;
    }
    return chi;
}

std::map<std::string_view, int> distribution(const ExperimentDef& def) {
    std::map<std::string_view, int> counts;
    for (int i = 0; i < kIds; ++i) ++counts[assign(def, nullptr, 0, visitor(i))];
    return counts;
}

}  // namespace

TEST_CASE("bucket matches the published vectors (computed with Python's hashlib)") {
    // int.from_bytes(hashlib.sha256((salt + ":" + id).encode()).digest()[:8], "big") % 10000
    CHECK(bucket("checkout-2026-11", "a1b2c3") == 9770);
    CHECK(bucket("checkout-2026-11", "visitor-42") == 4689);
    CHECK(bucket("checkout-layer", "a1b2c3") == 3677);
    CHECK(bucket("hero", "0123456789abcdef") == 381);
    CHECK(bucket("", "x") == 9184);
}

TEST_CASE("variant ranges follow the stored order of weights") {
    ExperimentDef def = split("checkout", {5000, 5000});
    def.salt = "checkout-2026-11";
    CHECK(assign(def, nullptr, 0, "a1b2c3") == "B");         // bucket 9770
    CHECK(assign(def, nullptr, 0, "visitor-42") == "control");  // bucket 4689
}

TEST_CASE("a 50/50 split is within chi-square bounds over 100,000 ids") {
    ExperimentDef def = split("fifty", {5000, 5000});
    auto counts = distribution(def);
    CHECK(counts.size() == 2);
    CHECK(chi_square(counts, def, kIds) < 10.83);  // df 1, p = 0.001
}

TEST_CASE("a 10/30/60 split is within chi-square bounds over 100,000 ids") {
    ExperimentDef def = split("three", {1000, 3000, 6000});
    auto counts = distribution(def);
    CHECK(counts.size() == 3);
    CHECK(chi_square(counts, def, kIds) < 13.82);  // df 2, p = 0.001
}

TEST_CASE("two experiments are independent: the joint distribution is uniform") {
    ExperimentDef a = split("a", {5000, 5000});
    ExperimentDef b = split("b", {5000, 5000});
    std::map<std::pair<std::string_view, std::string_view>, int> joint;
    for (int i = 0; i < kIds; ++i)
        ++joint[{assign(a, nullptr, 0, visitor(i)), assign(b, nullptr, 0, visitor(i))}];
    REQUIRE(joint.size() == 4);
    double chi = 0, expected = kIds / 4.0;
    for (const auto& [cell, seen] : joint) chi += (seen - expected) * (seen - expected) / expected;
    CHECK(chi < 16.27);  // df 3, p = 0.001
}

TEST_CASE("experiments of one layer never share a visitor, and the holdout sees none") {
    ExperimentDef a = split("a", {5000, 5000});
    ExperimentDef b = split("b", {5000, 5000});
    for (auto* def : {&a, &b}) {
        def->layer = "checkout-layer";
        def->holdout = 1000;
    }
    a.range_begin = 1000, a.range_end = 5000;
    b.range_begin = 5000, b.range_end = kBuckets;
    int in_a = 0, in_b = 0, held = 0;
    for (int i = 0; i < kIds; ++i) {
        std::string_view va = assign(a, nullptr, 0, visitor(i));
        std::string_view vb = assign(b, nullptr, 0, visitor(i));
        if (va == kHoldout || vb == kHoldout) {
            CHECK(va == kHoldout);  // a holdout covers the whole layer
            CHECK(vb == kHoldout);
            ++held;
            continue;
        }
        CHECK(va.empty() != vb.empty());  // exactly one experiment of the layer
        in_a += !va.empty();
        in_b += !vb.empty();
    }
    CHECK(std::abs(held - 10000) < 500);   // 10 %, within ~5 sigma
    CHECK(std::abs(in_a - 40000) < 800);
    CHECK(std::abs(in_b - 50000) < 800);
}

TEST_CASE("an experiment's holdout share is its holdout basis points") {
    ExperimentDef def = split("hero", {5000, 5000});
    def.holdout = 500;
    def.range_begin = 500;
    int held = 0;
    for (int i = 0; i < kIds; ++i) held += assign(def, nullptr, 0, visitor(i)) == kHoldout;
    CHECK(std::abs(held - 5000) < 350);  // 5 %, within ~5 sigma
}

TEST_CASE("adding an unrelated experiment changes no assignment") {
    Catalogue before, after;
    before.add(split("checkout", {5000, 5000}));
    after.add(split("checkout", {5000, 5000}));
    after.add(split("hero", {2000, 8000}));
    auto index = after.find("checkout");
    REQUIRE(index);
    for (int i = 0; i < 20000; ++i)
        REQUIRE(assign(before.all()[0], nullptr, 0, visitor(i)) ==
                assign(after.all()[*index], nullptr, 0, visitor(i)));
}

TEST_CASE("no variant outside the target, when paused, or without an id") {
    ExperimentDef def = split("checkout", {5000, 5000});
    def.segments = {7};
    std::uint32_t vip[] = {3, 7};
    std::uint32_t other[] = {3};
    CHECK_FALSE(assign(def, vip, 2, "a1b2c3").empty());
    CHECK(assign(def, other, 1, "a1b2c3").empty());
    CHECK(assign(def, nullptr, 0, "a1b2c3").empty());
    CHECK(assign(def, vip, 2, "").empty());
    def.status = Status::paused;
    CHECK(assign(def, vip, 2, "a1b2c3").empty());
}

TEST_CASE("exposure list is id:variant in catalogue order, holdouts marked") {
    Catalogue catalogue;
    ExperimentDef checkout = split("checkout", {5000, 5000});
    checkout.salt = "checkout-2026-11";
    ExperimentDef hero = split("hero", {5000, 5000});
    hero.holdout = kBuckets;  // everyone held out
    hero.range_begin = kBuckets - 1;
    ExperimentDef untargeted = split("promo", {5000, 5000});
    untargeted.segments = {9};
    catalogue.add(checkout);
    catalogue.add(hero);
    catalogue.add(untargeted);
    Assignment assigned[kMaxExperiments];
    std::size_t n = catalogue.assign_all(nullptr, 0, "a1b2c3", assigned);
    REQUIRE(n == 2);
    CHECK(assigned[0].experiment == 0);
    CHECK(assigned[0].variant == 1);
    CHECK(assigned[1].variant == kHoldoutIndex);
    char out[kMaxListSize];
    std::size_t len = catalogue.exposure_list(assigned, n, out);
    CHECK(std::string(out, len) == "checkout:B,hero:holdout");
}

TEST_CASE("experiments round-trip through the stored encoding") {
    ExperimentDef def = split("checkout", {1000, 3000, 6000});
    def.segments = {1, 70000};
    def.layer = "checkout-layer";
    def.holdout = 500;
    def.range_begin = 500;
    def.range_end = 5000;
    def.status = Status::paused;
    auto decoded = decode("checkout", encode(def));
    REQUIRE(decoded);
    CHECK(*decoded == def);
    std::string bytes = encode(def);
    CHECK_FALSE(decode("checkout", bytes.substr(0, bytes.size() - 1)));
    CHECK_FALSE(decode("checkout", bytes + "x"));
    ExperimentDef bad = def;
    bad.variants[0].weight = 999;  // sum 9,999
    CHECK_FALSE(decode("checkout", encode(bad)));
}

TEST_CASE("find_variant reads one experiment's entry of an exposure list") {
    CHECK(find_variant("checkout:B,hero:holdout", "checkout") == "B");
    CHECK(find_variant("checkout:B,hero:holdout", "hero") == "holdout");
    CHECK(find_variant("checkout:B,hero:holdout", "her").empty());
    CHECK(find_variant("checkout:B", "checkout:B").empty());
    CHECK(find_variant("", "checkout").empty());
}
