// Block choice over a real snapshot: for each block, the visitor's
// highest-priority segment with content wins; fragments come back intact.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "segcore/snapshot.h"
#include "snapshot_fixture.h"

namespace {

namespace schema = segcore::schema;

// ids: vip 1 (priority 100), cart 2 (50), newsletter 3 (5), new 4 (1)
fixture::SnapshotSpec block_spec() {
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 100), fixture::segment(2, "cart", 50),
                     fixture::segment(3, "newsletter", 5), fixture::segment(4, "new", 1)};
    spec.blocks = {{"hero", 1, "<h2>VIP</h2>", ""},
                   {"hero", 4, "<h2>Welcome</h2>", ""},
                   {"offer", 2, "<p>Your cart</p>", ""},
                   {"offer", 4, "<p>First order</p>", ""},
                   {"signup", 3, "", ""},
                   {"hero-2", 3, std::string(schema::kMaxFragmentSize, 'x'), ""},
                   {"hero", 1, "<h2>experiment B</h2>", "checkout:B"}};
    return spec;
}

struct Fragments : segcore::FragmentSink {
    void take(std::size_t choice, std::string_view html) override { got[choice] = std::string(html); }
    std::map<std::size_t, std::string> got;
};

// block name -> (winning segment name, fragment)
std::map<std::string, std::pair<std::string, std::string>> choose(segcore::Snapshot& snapshot,
                                                                  std::vector<std::uint32_t> visitor,
                                                                  std::string_view exposures = {}) {
    const auto& catalogue = snapshot.blocks();
    std::vector<segcore::BlockChoice> choices(catalogue.size());
    std::size_t n = catalogue.choose(visitor.data(), visitor.size(), choices.data());
    catalogue.apply_variants(choices.data(), n, exposures);
    Fragments fragments;
    snapshot.read_fragments(choices.data(), n, fragments);
    std::map<std::string, std::pair<std::string, std::string>> result;
    for (std::size_t i = 0; i < n; ++i)
        result[catalogue.name(choices[i].block)] = {snapshot.segment(choices[i].segment)->name,
                                                   fragments.got.at(i)};
    return result;
}

struct Dir {
    std::string path = fixture::temp_dir();
    ~Dir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("each block goes to the visitor's highest-priority segment with content", "[blocks][choice]") {
    Dir dir;
    fixture::write_snapshot(dir.path, block_spec());
    segcore::Snapshot snapshot(dir.path);
    REQUIRE(snapshot.blocks().size() == 4);  // the variant entry is not block content
    CHECK(snapshot.blocks().name(0) == "hero");
    CHECK(snapshot.blocks().name(1) == "hero-2");

    using Choice = std::map<std::string, std::pair<std::string, std::string>>;
    CHECK(choose(snapshot, {1, 2, 3}) == Choice{{"hero", {"vip", "<h2>VIP</h2>"}},
                                                {"offer", {"cart", "<p>Your cart</p>"}},
                                                {"signup", {"newsletter", ""}},
                                                {"hero-2", {"newsletter", std::string(schema::kMaxFragmentSize, 'x')}}});
    CHECK(choose(snapshot, {2, 4}) == Choice{{"hero", {"new", "<h2>Welcome</h2>"}},
                                             {"offer", {"cart", "<p>Your cart</p>"}}});
    CHECK(choose(snapshot, {4}) == Choice{{"hero", {"new", "<h2>Welcome</h2>"}},
                                          {"offer", {"new", "<p>First order</p>"}}});
    CHECK(choose(snapshot, {}).empty());
    CHECK(choose(snapshot, {99}).empty());  // ids the catalogue does not know
    CHECK(snapshot.verify().blocks == 7);
}

TEST_CASE("the catalogue holds at most kMaxBlocks names", "[blocks][choice]") {
    segcore::BlockCatalogue catalogue;
    for (std::size_t i = 0; i < schema::kMaxBlocks; ++i) CHECK(catalogue.add("b" + std::to_string(1000 + i), 1));
    CHECK(catalogue.add("b" + std::to_string(1000 + schema::kMaxBlocks - 1), 2));  // same name: fine
    CHECK_FALSE(catalogue.add("zzz", 1));
    std::vector<segcore::BlockChoice> out(catalogue.size());
    std::uint32_t visitor[] = {2, 1};
    REQUIRE(catalogue.choose(visitor, 2, out.data()) == schema::kMaxBlocks);
    CHECK(out.back().segment == 2);
    CHECK(out.front().segment == 1);
}

TEST_CASE("a snapshot without the blocks database is refused by name", "[blocks][snapshot]") {
    Dir dir;
    auto spec = block_spec();
    spec.blocks_db = false;
    fixture::write_snapshot(dir.path, spec);
    CHECK_THROWS_WITH(segcore::Snapshot(dir.path), Catch::Contains("no \"blocks\" database"));
}

TEST_CASE("block content for an uncatalogued segment is refused", "[blocks][snapshot]") {
    Dir dir;
    auto spec = block_spec();
    spec.blocks.push_back({"hero", 9, "x", ""});
    fixture::write_snapshot(dir.path, spec);
    CHECK_THROWS_WITH(segcore::Snapshot(dir.path), Catch::Contains("unknown segment id 9"));
}

TEST_CASE("verify rejects oversized fragments and malformed block keys", "[blocks][snapshot]") {
    SECTION("oversized") {
        Dir dir;
        auto spec = block_spec();
        spec.blocks.push_back({"big", 1, std::string(schema::kMaxFragmentSize + 1, 'x'), ""});
        fixture::write_snapshot(dir.path, spec);
        segcore::Snapshot snapshot(dir.path);
        CHECK_THROWS_WITH(snapshot.verify(), Catch::Contains("at most 65536"));
    }
    SECTION("malformed key") {
        Dir dir;
        fixture::write_snapshot(dir.path, block_spec());
        {
            segcore::Env::Options options;
            segcore::Env env(dir.path, options);
            segcore::Txn txn(env, 0);
            txn.put(txn.open_db(schema::kBlocksDb), std::string_view("Hero\0\0\0\0\1", 9), "x");
            txn.commit();
        }
        CHECK_THROWS_WITH(segcore::Snapshot(dir.path), Catch::Contains("malformed block key"));
    }
}

TEST_CASE("a visitor with an experiment variant gets its content for the winning segment",
          "[blocks][choice][experiments]") {
    Dir dir;
    fixture::write_snapshot(dir.path, block_spec());
    segcore::Snapshot snapshot(dir.path);
    using Choice = std::map<std::string, std::pair<std::string, std::string>>;
    CHECK(choose(snapshot, {1}, "checkout:B,hero:x") == Choice{{"hero", {"vip", "<h2>experiment B</h2>"}}});
    CHECK(choose(snapshot, {1}, "checkout:control") == Choice{{"hero", {"vip", "<h2>VIP</h2>"}}});
    CHECK(choose(snapshot, {1}, "checkout:holdout") == Choice{{"hero", {"vip", "<h2>VIP</h2>"}}});
    // the variant's content is for vip; a visitor whose hero comes from "new" keeps it
    CHECK(choose(snapshot, {4}, "checkout:B") == Choice{{"hero", {"new", "<h2>Welcome</h2>"}},
                                                        {"offer", {"new", "<p>First order</p>"}}});
}

TEST_CASE("only a page whose chosen blocks have variant content asks for the visitor's variants",
          "[blocks][choice][experiments]") {
    Dir dir;
    fixture::write_snapshot(dir.path, block_spec());
    segcore::Snapshot snapshot(dir.path);
    const auto& catalogue = snapshot.blocks();
    auto has_variants = [&](std::vector<std::uint32_t> visitor) {
        std::vector<segcore::BlockChoice> choices(catalogue.size());
        std::size_t n = catalogue.choose(visitor.data(), visitor.size(), choices.data());
        return catalogue.has_variants(choices.data(), n);
    };
    CHECK(has_variants({1}));       // vip's hero has checkout:B content
    CHECK_FALSE(has_variants({4}));  // new's hero and offer have none
    CHECK_FALSE(has_variants({}));
}

TEST_CASE("variant content without its segment's content is refused when opened", "[blocks][experiments]") {
    Dir dir;
    fixture::SnapshotSpec spec = block_spec();
    spec.blocks.push_back({"offer", 1, "<p>B</p>", "checkout:B"});  // vip has no offer content
    fixture::write_snapshot(dir.path, spec);
    CHECK_THROWS_WITH(segcore::Snapshot(dir.path), Catch::Contains("without the segment's content"));
}
