// The block scanner: output must not depend on how the body is cut into
// chunks, bad markup must pass through untouched, and no more than one
// marker is ever held back.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "segcore/block_scanner.h"

namespace {

using segcore::BlockProblem;
using segcore::BlockScanner;
using segcore::Piece;
using Markers = BlockScanner::Markers;

// Collects the output and checks every piece against the scanner's promises.
class Collector : public segcore::BlockHandler {
public:
    explicit Collector(std::map<std::string, std::string> content) : content_(std::move(content)) {}

    std::optional<std::string_view> replacement(std::string_view name) override {
        lookups.emplace_back(name);
        auto it = content_.find(std::string(name));
        if (it == content_.end()) return std::nullopt;
        return std::string_view(it->second);
    }

    void output(std::string_view bytes, Piece piece) override {
        REQUIRE(!bytes.empty());
        if (piece == Piece::input) {
            REQUIRE(bytes.data() >= chunk.data());
            REQUIRE(bytes.data() + bytes.size() <= chunk.data() + chunk.size());
        } else if (piece == Piece::replacement) {
            bool known = false;
            for (const auto& entry : content_) known |= entry.second.data() == bytes.data();
            REQUIRE(known);
        } else {
            REQUIRE(bytes.size() <= BlockScanner::kMaxMarkerSize);
        }
        out.append(bytes);
        ++pieces;
    }

    std::string_view chunk;
    std::string out;
    std::vector<std::string> lookups;
    std::size_t pieces = 0;

private:
    std::map<std::string, std::string> content_;
};

struct Result {
    std::string out;
    std::vector<std::string> lookups;
    BlockProblem problem;
    std::string problem_block;
    std::size_t max_held = 0;
};

// Feeds `doc` cut at `cuts` (increasing offsets), each chunk copied into
// its own buffer so that a piece pointing at an old chunk would be caught.
Result scan(const std::string& doc, const std::vector<std::size_t>& cuts,
            const std::map<std::string, std::string>& content, Markers markers = Markers::keep) {
    Collector collector(content);
    BlockScanner scanner(markers);
    Result result;
    std::size_t from = 0;
    auto feed = [&](std::size_t to) {
        std::string chunk = doc.substr(from, to - from);
        collector.chunk = chunk;
        scanner.feed(chunk, collector);
        result.max_held = std::max(result.max_held, scanner.held());
        from = to;
    };
    for (std::size_t cut : cuts) feed(cut);
    feed(doc.size());
    scanner.finish(collector);
    result.out = collector.out;
    result.lookups = collector.lookups;
    result.problem = scanner.problem();
    result.problem_block = std::string(scanner.problem_block());
    return result;
}

Result scan(const std::string& doc, const std::map<std::string, std::string>& content,
            Markers markers = Markers::keep) {
    return scan(doc, {}, content, markers);
}

std::string open(const std::string& name) { return "<!--segedge:" + name + "-->"; }
std::string close(const std::string& name) { return "<!--/segedge:" + name + "-->"; }
std::string block(const std::string& name, const std::string& body) {
    return open(name) + body + close(name);
}

const std::map<std::string, std::string> kContent = {
    {"hero", "<h2>Welcome back</h2>"}, {"offer", "<p>Free shipping</p>"}, {"empty", ""},
    {"a-b", "[a-b]"}, {"inner", "[inner]"}};

// A page exercising every rule at once.
std::string mixed_document() {
    return "<!DOCTYPE html><html><!-- a comment --><body>\n" + block("hero", "<h2>Spring</h2>") +
           "<p>x < y <!- <!-- -->" + open("Hero") + "</p>" + block("offer", "<p>Standard</p>") +
           block("unknown", "<p>kept</p>") + close("stray") + block("empty", "<form>sign up</form>") +
           block("a-b", "dash") + "<!--segedge:" + std::string(65, 'n') + "-->" +
           block("hero", "again") + "<!--segedge:hero->" + "<!--segedge:-->" +
           open("offer") + "tail without end <!--";
}

}  // namespace

TEST_CASE("a block with content is replaced, markers kept or removed", "[blocks]") {
    std::string doc = "<p>a</p>" + block("hero", "<h2>Default</h2>") + "<p>b</p>";
    CHECK(scan(doc, kContent).out == "<p>a</p>" + block("hero", "<h2>Welcome back</h2>") + "<p>b</p>");
    CHECK(scan(doc, kContent, Markers::remove).out == "<p>a</p><h2>Welcome back</h2><p>b</p>");
    CHECK(scan(doc, kContent).lookups == std::vector<std::string>{"hero"});
    CHECK(scan(doc, kContent).problem == BlockProblem::none);
}

TEST_CASE("a block without content keeps its default", "[blocks]") {
    std::string doc = "<p>a</p>" + block("other", "<h2>Default</h2>") + "<p>b</p>";
    CHECK(scan(doc, kContent).out == doc);
    CHECK(scan(doc, kContent, Markers::remove).out == "<p>a</p><h2>Default</h2><p>b</p>");
    CHECK(scan(doc, {}).out == doc);
}

TEST_CASE("an empty fragment hides the block", "[blocks]") {
    std::string doc = "a" + block("empty", "<form>sign up</form>") + "b";
    CHECK(scan(doc, kContent).out == "a" + open("empty") + close("empty") + "b");
    CHECK(scan(doc, kContent, Markers::remove).out == "ab");
}

TEST_CASE("every occurrence of a block is replaced, each asked for once", "[blocks]") {
    std::string doc = block("hero", "1") + block("offer", "2") + block("hero", "3");
    CHECK(scan(doc, kContent, Markers::remove).out == "<h2>Welcome back</h2><p>Free shipping</p><h2>Welcome back</h2>");
    CHECK(scan(doc, kContent).lookups == std::vector<std::string>{"hero", "offer", "hero"});
}

TEST_CASE("names may contain dashes; the marker ends at the last two", "[blocks]") {
    CHECK(scan(block("a-b", "x"), kContent, Markers::remove).out == "[a-b]");
    std::string doc = "<!--segedge:a-b--->x<!--/segedge:a-b--->";  // the name is "a-b-"
    CHECK(scan(doc, kContent).lookups == std::vector<std::string>{"a-b-"});
    CHECK(scan(doc, kContent).out == doc);
    std::string longest(64, 'z');
    CHECK(scan(block(longest, "x"), {{longest, "y"}}, Markers::remove).out == "y");
}

TEST_CASE("markers with bad names are ordinary text", "[blocks]") {
    for (const std::string& name : std::vector<std::string>{"Hero", "he ro", "hero.x", "h\xc3\xa9ro", std::string(65, 'a'), std::string(),
                             std::string("he\0ro", 5)}) {
        INFO(name);
        std::string doc = "<p>" + block(name, "default") + "</p>";
        auto result = scan(doc, {{name, "X"}, {"hero", "X"}}, Markers::remove);
        CHECK(result.out == doc);
        CHECK(result.lookups.empty());
        CHECK(result.problem == BlockProblem::none);
    }
    for (const std::string& doc : std::vector<std::string>{"<!-- segedge:hero -->d<!-- /segedge:hero -->", "<!--segedge:hero->d",
                            "<!--SEGEDGE:hero-->d", "<!--segedge:hero--!>d", "<!--segedge:hero- ->d",
                            "<!--segedgehero-->d", "<!--segedge:hero--", "<!--/segedge:-->"}) {
        INFO(doc);
        CHECK(scan(doc, kContent, Markers::remove).out == doc);
    }
}

TEST_CASE("a closing marker without an opening one passes through", "[blocks]") {
    std::string doc = "a" + close("hero") + "b" + block("hero", "d") + close("hero");
    CHECK(scan(doc, kContent).out == "a" + close("hero") + "b" + block("hero", "<h2>Welcome back</h2>") + close("hero"));
    CHECK(scan(doc, kContent, Markers::remove).out == "a" + close("hero") + "b<h2>Welcome back</h2>" + close("hero"));
}

TEST_CASE("an unterminated block without content passes through untouched", "[blocks][bad]") {
    std::string doc = "<p>a</p>" + open("other") + "<p>rest of the page</p></body></html>";
    auto result = scan(doc, kContent);
    CHECK(result.out == doc);
    CHECK(result.problem == BlockProblem::unterminated);
    CHECK(result.problem_block == "other");
}

// Without buffering the default there is nothing to give back when the end
// never comes: what was dropped is what a replacement drops anyway.
TEST_CASE("an unterminated replaced block keeps everything before it and the fragment", "[blocks][bad]") {
    std::string doc = "<p>a</p>" + open("hero") + "<h2>Default</h2></body></html>";
    auto result = scan(doc, kContent);
    CHECK(result.out == "<p>a</p>" + open("hero") + "<h2>Welcome back</h2>");
    CHECK(result.problem == BlockProblem::unterminated);
    CHECK(result.problem_block == "hero");
}

TEST_CASE("a misspelt closing marker stops the dropping; the rest passes through", "[blocks][bad]") {
    std::string rest = "<p>rest</p>" + block("offer", "<p>Standard</p>") + "</body>";
    std::string doc = open("hero") + "<h2>Default</h2>" + close("heor") + rest;
    auto result = scan(doc, kContent);
    CHECK(result.out == open("hero") + "<h2>Welcome back</h2>" + close("heor") + rest);
    CHECK(result.problem == BlockProblem::nested);
    CHECK(result.problem_block == "hero");
    // The broken block still ends at its own closing marker.
    std::string later = doc + close("hero") + block("offer", "x");
    CHECK(scan(later, kContent, Markers::remove).out ==
          "<h2>Welcome back</h2>" + close("heor") + rest + "<p>Free shipping</p>");
}

TEST_CASE("nested markers pass through and leave the outer block as it is", "[blocks][bad]") {
    std::string inner = block("inner", "Y");
    SECTION("outer block kept: the whole default, inner markers included, is untouched") {
        std::string doc = "A" + block("outer", "X" + inner + "Z") + "B";
        auto result = scan(doc, kContent);
        CHECK(result.out == doc);
        CHECK(result.lookups == std::vector<std::string>{"outer"});
        CHECK(result.problem == BlockProblem::nested);
        CHECK(scan(doc, kContent, Markers::remove).out == "AX" + inner + "ZB");
    }
    SECTION("outer block replaced: dropping stops at the nested marker") {
        std::string doc = "A" + block("hero", "X" + inner + "Z") + "B";
        CHECK(scan(doc, kContent).out == "A" + open("hero") + "<h2>Welcome back</h2>" + inner + "Z" + close("hero") + "B");
        CHECK(scan(doc, kContent, Markers::remove).out == "A<h2>Welcome back</h2>" + inner + "ZB");
    }
}

TEST_CASE("output does not depend on where the body is cut", "[blocks][chunks]") {
    std::string doc = mixed_document();
    for (auto markers : {Markers::keep, Markers::remove}) {
        Result whole = scan(doc, kContent, markers);
        REQUIRE(whole.lookups.size() == 7);
        SECTION("every single cut") {
            for (std::size_t cut = 0; cut <= doc.size(); ++cut) {
                INFO("cut at " << cut);
                Result split = scan(doc, {cut}, kContent, markers);
                REQUIRE(split.out == whole.out);
                REQUIRE(split.lookups == whole.lookups);
                REQUIRE(split.problem == whole.problem);
            }
        }
        SECTION("one-byte chunks") {
            std::vector<std::size_t> cuts;
            for (std::size_t i = 1; i < doc.size(); ++i) cuts.push_back(i);
            Result split = scan(doc, cuts, kContent, markers);
            CHECK(split.out == whole.out);
            CHECK(split.lookups == whole.lookups);
            CHECK(split.max_held <= BlockScanner::kMaxMarkerSize);
        }
        SECTION("random cuts, many seeds") {
            for (unsigned seed = 1; seed <= 300; ++seed) {
                std::mt19937 random(seed);
                std::vector<std::size_t> cuts;
                for (std::size_t at = 0;;) {
                    at += 1 + random() % (seed % 3 == 0 ? 97 : 9);
                    if (at >= doc.size()) break;
                    cuts.push_back(at);
                }
                INFO("seed " << seed);
                Result split = scan(doc, cuts, kContent, markers);
                REQUIRE(split.out == whole.out);
                REQUIRE(split.lookups == whole.lookups);
            }
        }
    }
}

TEST_CASE("the mixed document gives the documented output", "[blocks]") {
    std::string expected = "<!DOCTYPE html><html><!-- a comment --><body>\n" + block("hero", "<h2>Welcome back</h2>") +
                           "<p>x < y <!- <!-- -->" + open("Hero") + "</p>" + block("offer", "<p>Free shipping</p>") +
                           block("unknown", "<p>kept</p>") + close("stray") + block("empty", "") +
                           block("a-b", "[a-b]") + "<!--segedge:" + std::string(65, 'n') + "-->" +
                           block("hero", "<h2>Welcome back</h2>") + "<!--segedge:hero->" + "<!--segedge:-->" +
                           open("offer") + "<p>Free shipping</p>";
    auto result = scan(mixed_document(), kContent);
    CHECK(result.out == expected);
    CHECK(result.problem == BlockProblem::unterminated);
    CHECK(result.problem_block == "offer");
}

TEST_CASE("a 1 MB default is dropped or kept while holding at most one marker", "[blocks][adversarial]") {
    std::string body;
    while (body.size() < (1u << 20)) body += "<div class=\"x\"><!-- c --><p>filler &lt;!-- text</p></div>\n";
    std::string doc = "<html>" + block("hero", body) + block("other", body) + "</html>";
    std::vector<std::size_t> cuts;
    for (std::size_t at = 4093; at < doc.size(); at += 4093) cuts.push_back(at);
    auto result = scan(doc, cuts, kContent);
    CHECK(result.out == "<html>" + block("hero", "<h2>Welcome back</h2>") + block("other", body) + "</html>");
    CHECK(result.max_held <= BlockScanner::kMaxMarkerSize);
    CHECK(result.problem == BlockProblem::none);
}

TEST_CASE("'<!--' storms and marker-like prefixes pass through", "[blocks][adversarial]") {
    std::string storm;
    for (int i = 0; i < 20000; ++i) storm += i % 3 ? "<!--" : "<!--segedge:";
    storm += "<!--/segedge:" + std::string(5000, 'a') + "<<<<<<!-<!--segedge:hero--" + std::string(3000, '-');
    std::string doc = storm + block("hero", "d") + storm;
    std::string expected = storm + block("hero", "<h2>Welcome back</h2>") + storm;
    CHECK(scan(doc, kContent).out == expected);
    std::vector<std::size_t> cuts;
    for (std::size_t at = 1; at < doc.size(); at += 1 + at % 13) cuts.push_back(at);
    auto result = scan(doc, cuts, kContent);
    CHECK(result.out == expected);
    CHECK(result.max_held <= BlockScanner::kMaxMarkerSize);
    CHECK(result.lookups == std::vector<std::string>{"hero"});
}

TEST_CASE("a marker split across chunks is held, then emitted from the hold", "[blocks][chunks]") {
    Collector collector(kContent);
    BlockScanner scanner;
    std::string first = "abc<!--segedge:he", second = "llo-->x";
    collector.chunk = first;
    scanner.feed(first, collector);
    CHECK(collector.out == "abc");
    CHECK(scanner.held() == 14);
    collector.chunk = second;
    scanner.feed(second, collector);
    CHECK(scanner.held() == 0);
    CHECK(collector.out == "abc<!--segedge:hello-->x");
    CHECK(collector.lookups == std::vector<std::string>{"hello"});
}
