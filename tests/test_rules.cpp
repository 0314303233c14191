#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>

#include "segcore/rules.h"
#include "segcore/schema.h"

namespace rules = segcore::rules;
using rules::InputKind;

namespace {

struct Names : rules::SegmentNames {
    std::optional<std::uint32_t> find(std::string_view name) const override {
        if (name == "vip") return 1;
        if (name == "lapsed") return 2;
        return std::nullopt;
    }
};

// A request as a map: "path", "query.utm_source", "attribute.rfm_r", ...
struct Request : rules::Inputs {
    std::map<std::string, std::string, std::less<>> text;
    std::map<std::string, double, std::less<>> numbers;
    std::set<std::uint32_t> segments;
    std::set<InputKind> asked;
    int gets = 0;

    bool get(const rules::Input& input, rules::Value& out) override {
        asked.insert(input.kind);
        ++gets;
        std::string key = std::string(word(input.kind)) + (input.name.empty() ? "" : ".") +
                          std::string(input.name);
        if (auto it = numbers.find(key); it != numbers.end()) {
            out.is_number = true;
            out.number = it->second;
            return true;
        }
        auto it = text.find(key);
        if (it == text.end()) return false;
        out.is_number = false;
        out.text = it->second;
        return true;
    }
    bool member(std::uint32_t id) override { return segments.count(id) != 0; }

    static std::string_view word(InputKind kind) {
        switch (kind) {
        case InputKind::path: return "path";
        case InputKind::query: return "query";
        case InputKind::referrer_host: return "referrer_host";
        case InputKind::header: return "header";
        case InputKind::cookie: return "cookie";
        case InputKind::context: return "context";
        case InputKind::device: return "device";
        case InputKind::hour: return "hour";
        case InputKind::weekday: return "weekday";
        case InputKind::visitor: return "visitor";
        case InputKind::attribute: return "attribute";
        case InputKind::first_seen_days: return "first_seen_days";
        }
        return "";
    }
};

rules::Rule compile(const std::string& json) { return rules::Rule::compile(json, Names()); }

bool matches(const std::string& json, Request& request) { return compile(json).evaluate(request); }

bool on_path(const std::string& op_and_value, const std::string& path) {
    Request request;
    request.text["path"] = path;
    return matches(R"({"input":"path",)" + op_and_value + "}", request);
}

std::string compile_error(const std::string& json) {
    try {
        compile(json);
    } catch (const rules::RuleError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("string operators", "[rules]") {
    CHECK(on_path(R"("op":"eq","value":"/sale")", "/sale"));
    CHECK_FALSE(on_path(R"("op":"eq","value":"/sale")", "/Sale"));
    CHECK(on_path(R"("op":"eq","value":"/sale","ignore_case":true)", "/SALE"));
    CHECK(on_path(R"("op":"ne","value":"/sale")", "/home"));
    CHECK_FALSE(on_path(R"("op":"ne","value":"/sale","ignore_case":true)", "/SaLe"));
    CHECK(on_path(R"("op":"in","value":["/a","/b"])", "/b"));
    CHECK_FALSE(on_path(R"("op":"in","value":["/a","/b"])", "/c"));
    CHECK(on_path(R"("op":"not-in","value":["/a","/b"])", "/c"));
    CHECK_FALSE(on_path(R"("op":"not-in","value":["/a","/B"],"ignore_case":true)", "/b"));
    CHECK(on_path(R"("op":"prefix","value":"/shop/")", "/shop/shoes"));
    CHECK_FALSE(on_path(R"("op":"prefix","value":"/shop/")", "/shop"));
    CHECK(on_path(R"("op":"prefix","value":"/SHOP/","ignore_case":true)", "/shop/x"));
    CHECK(on_path(R"("op":"suffix","value":".pdf")", "/doc/a.pdf"));
    CHECK_FALSE(on_path(R"("op":"suffix","value":".pdf")", "pdf"));
    CHECK(on_path(R"("op":"contains","value":"sale")", "/summer-sale/x"));
    CHECK(on_path(R"("op":"contains","value":"SALE","ignore_case":true)", "/summer-sale/x"));
    CHECK_FALSE(on_path(R"("op":"contains","value":"sale")", "/sal"));
    CHECK(on_path(R"("op":"regex","value":"^/p/[0-9]+$")", "/p/123"));
    CHECK_FALSE(on_path(R"("op":"regex","value":"^/p/[0-9]+$")", "/p/12a"));
    CHECK(on_path(R"("op":"regex","value":"^/P/","ignore_case":true)", "/p/1"));
    CHECK(on_path(R"("op":"exists")", ""));
}

TEST_CASE("empty values and empty operands", "[rules]") {
    CHECK(on_path(R"("op":"eq","value":"")", ""));
    CHECK_FALSE(on_path(R"("op":"eq","value":"")", "/"));
    CHECK(on_path(R"("op":"prefix","value":"")", ""));
    CHECK(on_path(R"("op":"contains","value":"")", "/x"));
    CHECK_FALSE(on_path(R"("op":"gt","value":0)", ""));
}

TEST_CASE("unicode text compares byte-wise; ignore_case folds ASCII only", "[rules]") {
    CHECK(on_path(R"("op":"eq","value":"/caf\u00e9")", "/caf\xc3\xa9"));
    CHECK(on_path(R"("op":"contains","value":"\u00e9")", "/caf\xc3\xa9s"));
    CHECK(on_path(R"("op":"regex","value":"^/caf.$")", "/caf\xc3\xa9"));  // RE2: UTF-8 aware
    CHECK_FALSE(on_path(R"("op":"eq","value":"/CAF\u00c9","ignore_case":true)", "/caf\xc3\xa9"));
    CHECK(on_path(R"("op":"regex","value":"^/CAF\u00c9$","ignore_case":true)", "/caf\xc3\xa9"));
}

TEST_CASE("numbers, and numbers as strings", "[rules]") {
    Request request;
    request.numbers["attribute.rfm_r"] = 5;
    request.text["query.page"] = "12";
    request.text["query.bad"] = "12abc";
    request.text["attribute.tier"] = "gold";
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"gte","value":4})", request));
    CHECK_FALSE(matches(R"({"input":"attribute.rfm_r","op":"gt","value":5})", request));
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"lte","value":5})", request));
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"lt","value":5.5})", request));
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"eq","value":"5"})", request));
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"eq","value":5.0})", request));
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"in","value":[4,5]})", request));
    CHECK(matches(R"({"input":"attribute.rfm_r","op":"between","value":[5,5]})", request));
    CHECK_FALSE(matches(R"({"input":"attribute.rfm_r","op":"between","value":[1,4]})", request));
    CHECK(matches(R"({"input":"query.page","op":"gt","value":10})", request));
    CHECK(matches(R"({"input":"query.page","op":"eq","value":12})", request));
    CHECK_FALSE(matches(R"({"input":"query.bad","op":"gt","value":1})", request));
    CHECK_FALSE(matches(R"({"input":"query.bad","op":"eq","value":12})", request));
    CHECK_FALSE(matches(R"({"input":"attribute.tier","op":"gt","value":1})", request));
    CHECK_FALSE(matches(R"({"input":"attribute.rfm_r","op":"prefix","value":"5"})", request));
}

TEST_CASE("a missing input makes every condition false, negations included", "[rules]") {
    Request request;
    CHECK_FALSE(matches(R"({"input":"header.x-ab","op":"exists"})", request));
    CHECK_FALSE(matches(R"({"input":"header.x-ab","op":"ne","value":"a"})", request));
    CHECK_FALSE(matches(R"({"input":"cookie.c","op":"not-in","value":["a"]})", request));
    CHECK(matches(R"({"not":{"input":"header.x-ab","op":"exists"}})", request));
}

TEST_CASE("boolean composition and segment membership", "[rules]") {
    Request request;
    request.text["device"] = "mobile";
    request.text["query.utm_medium"] = "paid_social";
    request.segments = {1};
    const char* rule = R"({"all":[
        {"input":"device","op":"eq","value":"mobile"},
        {"any":[{"input":"query.utm_medium","op":"eq","value":"paid_social"},
                {"input":"query.utm_source","op":"in","value":["facebook","tiktok"]}]},
        {"not":{"segment":"lapsed"}},
        {"segment":"vip"}]})";
    CHECK(matches(rule, request));
    request.segments = {1, 2};
    CHECK_FALSE(matches(rule, request));
    request.segments = {1};
    request.text["query.utm_medium"] = "email";
    CHECK_FALSE(matches(rule, request));
    request.text["query.utm_source"] = "tiktok";
    CHECK(matches(rule, request));
}

TEST_CASE("evaluation reads only the inputs it needs; uses() lists them", "[rules]") {
    auto rule = compile(R"({"any":[{"input":"path","op":"eq","value":"/"},
                                   {"input":"device","op":"eq","value":"bot"}]})");
    CHECK(rule.uses() == (rules::uses_bit(InputKind::path) | rules::uses_bit(InputKind::device)));
    Request request;
    request.text["path"] = "/";
    CHECK(rule.evaluate(request));
    CHECK(request.asked == std::set<InputKind>{InputKind::path});  // short-circuit
    CHECK(compile(R"({"segment":"vip"})").references() == std::vector<std::uint32_t>{1});
}

TEST_CASE("compile errors name the position", "[rules]") {
    CHECK(compile_error(R"({"all":[{"input":"path","op":"eq","value":"/"},{"input":"path","op":"eqq","value":1}]})") ==
          "rule.all[1].op: unknown operator \"eqq\"");
    CHECK(compile_error(R"({"all":[{"input":"browser","op":"exists"}]})").rfind(
              "rule.all[0].input: unknown input \"browser\"", 0) == 0);
    CHECK(compile_error(R"({"input":"query","op":"exists"})") ==
          "rule.input: input \"query\" needs a name: \"query.NAME\"");
    CHECK(compile_error(R"({"input":"device.x","op":"exists"})") == "rule.input: input \"device\" takes no name");
    CHECK(compile_error(R"({"any":[{"not":{"input":"path","op":"regex","value":"(a"}}]})").rfind(
              "rule.any[0].not.value: bad regex: ", 0) == 0);
    CHECK(compile_error(R"({"input":"hour","op":"between","value":[1]})") ==
          "rule.value: \"between\" takes [low, high]");
    CHECK(compile_error(R"({"input":"hour","op":"gt","value":"x"})") == "rule.value: must be a number");
    CHECK(compile_error(R"({"input":"hour","op":"in","value":[]})") == "rule.value: must be a non-empty array");
    CHECK(compile_error(R"({"input":"path","op":"exists","value":1})") == "rule.value: \"exists\" takes no value");
    CHECK(compile_error(R"({"input":"path","op":"eq"})") == "rule: missing \"value\"");
    CHECK(compile_error(R"({"input":"path","op":"eq","value":"/","extra":1})") == "rule.extra: unknown field");
    CHECK(compile_error(R"({"segment":"nobody"})") == "rule.segment: unknown segment \"nobody\"");
    CHECK(compile_error(R"({"all":[]})") == "rule.all: must be a non-empty array");
    CHECK(compile_error(R"({"all":[1]})") == "rule.all[0]: must be a non-empty object");
    CHECK(compile_error(R"({"input":"path","op":"eq","value":"/","ignore_case":"yes"})") ==
          "rule.ignore_case: must be true or false");
    CHECK(compile_error(R"({"all":[)") == "rule: malformed JSON at byte 9");
    // Found by fuzzing (tests/fuzz/corpus/rules/huge-number): nlohmann throws
    // out_of_range, not parse_error, for a number no double holds.
    CHECK(compile_error(R"({"input":"path","op":"eq","value":1e999})") == "rule: a number is out of range");
    // Found by fuzzing (tests/fuzz/corpus/rules/nul-byte): nlohmann ends the
    // text at a NUL byte, so anything after it was silently ignored.
    CHECK(compile_error(std::string(R"({"segment":"vip"})" "\0" R"(garbage)", 25)) ==
          "rule: malformed JSON at byte 18");
}

// Compiling and evaluating recurse per level: without a bound, a deeply
// nested rule overflowed the stack (segsync import crashed on one).
TEST_CASE("rules nest at most kMaxRuleDepth levels", "[rules]") {
    auto nested = [](int levels) {  // {"all":[{"any":[ ... COND ... ]}]}
        std::string json;
        for (int i = levels - 1; i >= 1; --i) json += i % 2 ? R"({"any":[)" : R"({"all":[)";
        json += R"({"input":"path","op":"exists"})";
        for (int i = 1; i < levels; ++i) json += "]}";
        return json;
    };
    Request request;
    request.text["path"] = "/";
    CHECK(matches(nested(rules::kMaxRuleDepth), request));
    CHECK_THAT(compile_error(nested(rules::kMaxRuleDepth + 1)),
               Catch::Matches("rule(\\.(any|all)\\[0\\])+: nested deeper than 32 levels"));
    CHECK_THAT(compile_error(nested(100000)), Catch::EndsWith("nested deeper than 32 levels"));
}

TEST_CASE("a pathological regex stays linear", "[rules]") {
    // (a+)+$ on "aaaa...!" is exponential for backtracking engines.
    auto rule = compile(R"({"input":"path","op":"regex","value":"^(a+)+$"})");
    Request request;
    request.text["path"] = std::string(20000, 'a') + "!";
    CHECK_FALSE(rule.evaluate(request));  // returns at all: a backtracker would not
}

TEST_CASE("device classes from User-Agent", "[rules]") {
    using rules::classify_device;
    CHECK(classify_device("") == "bot");
    CHECK(classify_device("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)") == "bot");
    CHECK(classify_device("curl/7.88.1") == "bot");
    CHECK(classify_device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148") == "mobile");
    CHECK(classify_device("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari/537.36") == "mobile");
    CHECK(classify_device("Mozilla/5.0 (Linux; Android 13; SM-X700) Chrome/120 Safari/537.36") == "tablet");
    CHECK(classify_device("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)") == "tablet");
    CHECK(classify_device("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120 Safari/537.36") == "desktop");
}

TEST_CASE("referrer host", "[rules]") {
    using rules::referrer_host;
    CHECK(referrer_host("https://www.Google.com/search?q=x") == "www.Google.com");
    CHECK(referrer_host("http://user@shop.example:8080") == "shop.example");
    CHECK(referrer_host("https://[::1]:8443/") == "[::1]");
    CHECK(referrer_host("android-app://com.google") == "com.google");
    CHECK(referrer_host("not a url") == "");
}

TEST_CASE("segment definitions keep their rule through the snapshot encoding", "[rules][schema]") {
    segcore::schema::SegmentDef def;
    def.name = "paid_social_mobile";
    def.rule = R"({"input":"device","op":"eq","value":"mobile"})";
    auto decoded = segcore::schema::decode_segment(3, segcore::schema::encode_segment(def));
    REQUIRE(decoded);
    CHECK(decoded->rule == def.rule);
    def.rule.clear();
    CHECK(segcore::schema::decode_segment(3, segcore::schema::encode_segment(def))->rule.empty());
}

// ---- SegmentRules over a snapshot: layering, merge order, attributes ----

#include <filesystem>

#include "segcore/lmdb.h"
#include "segcore/segment_rules.h"
#include "segcore/snapshot.h"
#include "snapshot_fixture.h"

namespace {

segcore::schema::SegmentDef rule_segment(std::uint32_t id, std::string name, int priority,
                                         std::string rule) {
    auto def = fixture::segment(id, std::move(name), priority);
    def.rule = std::move(rule);
    return def;
}

void add_attributes(const std::string& dir) {
    namespace schema = segcore::schema;
    segcore::Env::Options options;
    options.map_size = 64u << 20;
    segcore::Env env(dir, options);
    segcore::Txn txn(env, 0);
    auto db = txn.open_db(schema::kAttributesDb, MDB_CREATE);
    txn.put(db, schema::encode_attribute_key(1), schema::encode_attribute({1, schema::AttributeType::number, "rfm_r"}));
    txn.put(db, schema::encode_attribute_key(2), schema::encode_attribute({2, schema::AttributeType::text, "lifecycle"}));
    txn.commit();
}

}  // namespace

TEST_CASE("segment rules layer on earlier segments and merge in priority order", "[rules][snapshot]") {
    namespace schema = segcore::schema;
    std::string dir = fixture::temp_dir();
    fixture::SnapshotSpec spec;
    spec.segments = {fixture::segment(1, "vip", 50),
                     rule_segment(2, "mobile", 10, R"({"input":"device","op":"eq","value":"mobile"})"),
                     rule_segment(3, "mobile_vip", 100, R"({"all":[{"segment":"vip"},{"segment":"mobile"}]})"),
                     rule_segment(4, "champion", 20,
                                  R"({"all":[{"input":"attribute.rfm_r","op":"gte","value":4},)"
                                  R"({"input":"attribute.lifecycle","op":"eq","value":"customer"}]})")};
    fixture::write_snapshot(dir, spec);
    add_attributes(dir);
    {
        segcore::Snapshot snapshot(dir);
        segcore::SegmentRules rules(snapshot);
        REQUIRE(rules.size() == 3);
        CHECK(rules.uses() == (rules::uses_bit(InputKind::device) | rules::uses_bit(InputKind::attribute)));
        rules.refresh_attributes(1);

        Request request;
        request.text["device"] = "mobile";
        std::uint32_t vip[] = {1};
        // known profile (rfm_r 5) shadows the anonymous one (rfm_r 1)
        std::string known = schema::encode_profile({}, {{1, schema::AttributeType::number, 5, ""},
                                                        {2, schema::AttributeType::text, 0, "customer"}});
        std::string anonymous = schema::encode_profile({}, {{1, schema::AttributeType::number, 1, ""}});
        std::string_view profiles[] = {known, anonymous};

        segcore::SegmentRules::Visitor visitor;
        visitor.ids = vip;
        visitor.n = 1;
        std::vector<std::uint64_t> scratch(rules.scratch_size() / 8 + 1);
        std::uint32_t out[4];
        std::size_t n = rules.evaluate(request, visitor, scratch.data(), out);
        CHECK(std::vector<std::uint32_t>(out, out + n) == std::vector<std::uint32_t>{3, 1, 2});

        visitor.profiles = profiles;
        visitor.nprofiles = 2;
        n = rules.evaluate(request, visitor, scratch.data(), out);
        CHECK(std::vector<std::uint32_t>(out, out + n) == std::vector<std::uint32_t>{3, 1, 4, 2});

        visitor.profiles = profiles + 1;  // anonymous only: rfm_r 1
        visitor.nprofiles = 1;
        visitor.n = 0;
        request.text["device"] = "desktop";
        n = rules.evaluate(request, visitor, scratch.data(), out);
        CHECK(n == 0);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("segment rules ask each distinct input once; attribute names are read by refresh",
          "[rules][snapshot]") {
    namespace schema = segcore::schema;
    std::string dir = fixture::temp_dir();
    fixture::SnapshotSpec spec;
    spec.segments = {rule_segment(1, "mobile", 30, R"({"input":"device","op":"eq","value":"mobile"})"),
                     rule_segment(2, "not_tablet", 20, R"({"not":{"input":"device","op":"eq","value":"tablet"}})"),
                     rule_segment(3, "email", 10, R"({"any":[{"input":"device","op":"eq","value":"bot"},)"
                                                  R"({"input":"query.utm_medium","op":"eq","value":"email"}]})"),
                     rule_segment(4, "champion", 5, R"({"input":"attribute.rfm_r","op":"gte","value":4})")};
    fixture::write_snapshot(dir, spec);
    add_attributes(dir);
    {
        segcore::Snapshot snapshot(dir);
        segcore::SegmentRules rules(snapshot);
        std::vector<std::uint64_t> scratch(rules.scratch_size() / 8 + 1);
        std::uint32_t out[4];
        std::string profile = schema::encode_profile({}, {{1, schema::AttributeType::number, 5, ""}});
        std::string_view profiles[] = {profile};
        segcore::SegmentRules::Visitor visitor;
        visitor.profiles = profiles;
        visitor.nprofiles = 1;

        Request request;
        request.text["device"] = "mobile";
        request.text["query.utm_medium"] = "email";
        // attribute names not read yet: rfm_r is not known to the rules
        std::size_t n = rules.evaluate(request, visitor, scratch.data(), out);
        CHECK(std::vector<std::uint32_t>(out, out + n) == std::vector<std::uint32_t>{1, 2, 3});
        CHECK(request.gets == 2);  // device once for three rules, then utm_medium

        rules.refresh_attributes(1);
        n = rules.evaluate(request, visitor, scratch.data(), out);
        CHECK(std::vector<std::uint32_t>(out, out + n) == std::vector<std::uint32_t>{1, 2, 3, 4});
        CHECK(request.gets == 4);  // the cache lives for one evaluation only
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("profile attributes are read in place", "[rules][schema]") {
    namespace schema = segcore::schema;
    std::string bytes = schema::encode_profile({7}, {{2, schema::AttributeType::text, 0, "gold"},
                                                    {9, schema::AttributeType::number, 3.5, ""}});
    schema::AttributeView value;
    std::uint16_t id = 0;
    schema::AttributeReader reader(bytes);
    REQUIRE(reader.next(id, value));
    CHECK(id == 2);
    CHECK(value.type == schema::AttributeType::text);
    CHECK(value.text == "gold");
    REQUIRE(reader.next(id, value));
    CHECK(id == 9);
    CHECK(value.number == 3.5);
    CHECK_FALSE(reader.next(id, value));
    std::string no_attributes = schema::encode_profile({7});
    CHECK_FALSE(schema::AttributeReader(no_attributes).next(id, value));
    std::string cut = bytes.substr(0, bytes.size() - 3);
    schema::AttributeReader truncated(cut);
    CHECK(truncated.next(id, value));
    CHECK_FALSE(truncated.next(id, value));  // the malformed last one ends the walk
}
