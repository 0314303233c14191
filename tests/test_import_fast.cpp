// The import's fast paths against the full parser they stand in for:
// FastProfileParser (sync/profile_fast.h) takes a line only when the full
// parser (parse_line + parse_profile) would accept it and encode the same
// bytes; the sorted, parallel load (sync/bulk_load.h) publishes the same
// records and reports the same first error, FILE:LINE included.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "segcore/lmdb.h"
#include "segcore/schema.h"
#include "snapshot_fixture.h"
#include "sync/bulk_load.h"
#include "sync/import.h"
#include "sync/key_sorter.h"
#include "sync/profile_fast.h"
#include "sync/sources.h"
#include "sync_fixture.h"

namespace {

namespace schema = segcore::schema;
using fixture::TempDir;
using fixture::write_file;
using segsync::AttributeCatalogue;
using segsync::Catalogue;
using segsync::FastProfileParser;
using segsync::ImportError;
using segsync::Location;

// Stored order differs from file order: vip, cart, news, tie.
const std::string kSegments =
    "{\"name\":\"vip\",\"priority\":100}\n{\"name\":\"news\",\"priority\":5}\n"
    "{\"name\":\"cart\",\"priority\":50}\n{\"name\":\"tie\",\"priority\":5}\n";

Catalogue segment_catalogue() {
    TempDir tmp;
    segsync::NdjsonReader reader(write_file(tmp.path() + "/segments.ndjson", kSegments));
    Catalogue catalogue;
    segsync::Record record;
    while (reader.next(record)) catalogue.add(record.object, reader.where());
    return catalogue;
}

// "score" (number) and "stage" (text) already catalogued, as after the
// first lines of a file.
AttributeCatalogue attribute_catalogue() {
    AttributeCatalogue attributes;
    attributes.add_stored({1, schema::AttributeType::number, "score"});
    attributes.add_stored({2, schema::AttributeType::text, "stage"});
    return attributes;
}

const std::string kId = fixture::visitor_id("fast-1");

// What the full parser makes of a line: its key and value, or its error.
struct Outcome {
    std::string key, value, error;
};

Outcome full_parse(std::string_view line, const Catalogue& catalogue, AttributeCatalogue attributes) {
    Outcome out;
    Location where{"profiles.ndjson", 7};
    try {
        segsync::Profile profile =
            segsync::parse_profile(segsync::parse_line(line, where), catalogue, attributes, where);
        segsync::encode_profile_record(profile, out.key, out.value);
    } catch (const ImportError& e) {
        out.error = e.what();
    }
    return out;
}

struct Parsers {
    Catalogue catalogue = segment_catalogue();
    AttributeCatalogue attributes = attribute_catalogue();
    std::mutex lock;
    FastProfileParser fast{catalogue, attributes, lock};

    // True when the fast path took the line; then the full parser must have
    // accepted it and encoded the same bytes.
    bool agree(const std::string& line) {
        std::string key, value;
        bool taken = fast.parse(line, key, value);
        Outcome full = full_parse(line, catalogue, attributes);
        INFO(line);
        if (taken) {
            CHECK(full.error == "");
            CHECK(full.key == key);
            CHECK(full.value == value);
        }
        return taken;
    }
};

std::string line(const std::string& fields) { return "{" + fields + "}"; }
std::string id_kind(const std::string& id = kId, const std::string& kind = "anonymous") {
    return "\"id\":\"" + id + "\",\"kind\":\"" + kind + "\"";
}

}  // namespace

TEST_CASE("the fast path encodes common profile lines exactly as the full parser", "[import][fast]") {
    Parsers p;
    const std::vector<std::string> taken = {
        line(id_kind() + ",\"segments\":[]"),
        line(id_kind() + ",\"segments\":[\"news\",\"tie\",\"vip\",\"cart\"]"),
        line(id_kind("cust-42", "known") + ",\"segments\":[\"tie\"]"),
        line("\"segments\":[\"news\"],\"kind\":\"known\",\"id\":\"x\"") ,  // any field order
        line(id_kind() + ",\"segments\":[\"vip\"],\"attributes\":{}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"stage\":\"repeat\",\"score\":3}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":-0}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":-0.0}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":1.5e3}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":0.1}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":9007199254740993}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":123456789012345678901234567890}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":-9223372036854775809}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":5e-324}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":1.7976931348623157e308}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"score\":1E+2}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"stage\":\"caf\xC3\xA9 \xF0\x9F\x8E\x89\"}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"stage\":\"\"}"),
        line(id_kind() + ",\"segments\":[],\"attributes\":{\"stage\":\"" + std::string(1024, 's') + "\"}"),
        line(id_kind("k\x7F" "del", "known") + ",\"segments\":[]"),
        line(id_kind("\xE2\x82\xAC-known", "known") + ",\"segments\":[]"),
        line(id_kind(std::string(510, 'k'), "known") + ",\"segments\":[]"),
        " \t{ \"id\" : \"" + kId + "\" ,\t\"kind\":\"anonymous\", \"segments\" : [ \"vip\" , \"news\" ] } \r",
        line(id_kind() + ",\"segments\":[]" + std::string(100000, ' ')),
    };
    for (const auto& text : taken) CHECK(p.agree(text));
}

TEST_CASE("lines the fast path leaves to the full parser: unusual or invalid", "[import][fast]") {
    Parsers p;
    const std::string segs = ",\"segments\":[]";
    auto attrs = [&](const std::string& object) { return line(id_kind() + segs + ",\"attributes\":" + object); };
    std::string many = "\"vip\"";
    for (int i = 0; i < 256; ++i) many += ",\"news\"";
    const std::vector<std::string> left = {
        // unicode escapes and other escapes: valid, decoded by the full parser
        line("\"id\":\"\\u0041" + kId.substr(1) + "\",\"kind\":\"anonymous\"" + segs),
        line(id_kind("cust-42", "kn\\u006fwn") + segs),
        line(id_kind() + ",\"segments\":[\"v\\u0069p\"]"),
        line(id_kind() + ",\"s\\u0065gments\":[]"),
        attrs("{\"stage\":\"caf\\u00e9\"}"),
        attrs("{\"stage\":\"say \\\"hi\\\"\"}"),
        attrs("{\"stage\":\"\\ud83c\\udf89\"}"),
        attrs("{\"stage\":\"\\ud800\"}"),   // lone surrogate: invalid
        attrs("{\"stage\":\"\\x41\"}"),     // no such escape
        // malformed UTF-8: invalid
        attrs("{\"stage\":\"\xC0\x80\"}"), attrs("{\"stage\":\"\xED\xA0\x80\"}"),
        attrs("{\"stage\":\"\xF5\x80\x80\x80\"}"), attrs("{\"stage\":\"\xE2\x82\"}"),
        attrs("{\"stage\":\"\xF0\x8F\xBF\xBF\"}"), attrs("{\"stage\":\"\xFF\"}"),
        // control characters in strings: invalid
        attrs("{\"stage\":\"a\tb\"}"), line(id_kind("a\nb", "known") + segs),
        // numbers as strings and other wrong types
        attrs("{\"score\":\"5\"}"), attrs("{\"stage\":5}"), line("\"id\":42,\"kind\":\"anonymous\"" + segs),
        line(id_kind() + ",\"segments\":[7]"), line(id_kind() + ",\"segments\":\"vip\""),
        line("\"id\":\"" + kId + "\",\"kind\":1" + segs), attrs("null"), attrs("[]"),
        attrs("{\"score\":true}"), attrs("{\"score\":null}"), attrs("{\"score\":{}}"), attrs("{\"score\":[1]}"),
        // numbers JSON does not allow, or a double cannot hold
        attrs("{\"score\":01}"), attrs("{\"score\":1.}"), attrs("{\"score\":.5}"), attrs("{\"score\":+1}"),
        attrs("{\"score\":-}"), attrs("{\"score\":NaN}"), attrs("{\"score\":Infinity}"),
        attrs("{\"score\":1e400}"), attrs("{\"score\":-1e400}"), attrs("{\"score\":1e}"),
        // duplicate keys
        line(id_kind() + segs + ",\"id\":\"" + kId + "\""), line(id_kind() + segs + segs),
        attrs("{\"score\":1,\"score\":2}"),
        // missing, extra and misspelt fields
        line(id_kind()), line("\"kind\":\"anonymous\"" + segs), line("\"id\":\"" + kId + "\"" + segs),
        line(id_kind() + segs + ",\"segment\":[]"), line(id_kind() + segs + ",\"extra\":1"), "{}",
        // names and values the catalogues refuse, and new names
        line(id_kind() + ",\"segments\":[\"VIP\"]"), line(id_kind() + ",\"segments\":[\"vip\",\"vip\"]"),
        line(id_kind() + ",\"segments\":[" + many + "]"), attrs("{\"tier\":1}"), attrs("{\"Tier\":1}"),
        attrs("{\"stage\":\"" + std::string(1025, 's') + "\"}"),
        line(id_kind("v-1") + segs), line(id_kind("", "known") + segs),
        line(id_kind(std::string(511, 'k'), "known") + segs), line(id_kind(kId, "visitor") + segs),
        // not one JSON object
        line(id_kind() + segs) + " x", line(id_kind() + segs) + line(id_kind() + segs),
        "[" + line(id_kind() + segs) + "]", "\"text\"", "{", line(id_kind() + segs + ","),
        "\xEF\xBB\xBF" + line(id_kind() + segs),  // a byte order mark: nlohmann skips it
    };
    for (const auto& text : left) CHECK_FALSE(p.agree(text));
}

TEST_CASE("whatever bytes a line holds, the fast path never takes what the full parser would not",
          "[import][fast]") {
    Parsers p;
    const std::vector<std::string> seeds = {
        line(id_kind() + ",\"segments\":[\"news\",\"vip\"],\"attributes\":{\"score\":12,\"stage\":\"new\"}"),
        line(id_kind("cust-7", "known") + ",\"segments\":[\"tie\"],\"attributes\":{\"score\":-3.25e-2}"),
        line("\"segments\":[],\"attributes\":{\"stage\":\"caf\xC3\xA9\"}," + id_kind()),
    };
    std::string interesting = "\"\\,:{}[] 0-e.aZ\x01\x1f\x7f\x80\xbf\xc3\xa9\xed\xf0\xff";
    interesting.push_back('\0');
    std::mt19937 random(20240611);
    int taken = 0;
    const int rounds = 20000;
    for (int round = 0; round < rounds; ++round) {
        std::string text = seeds[random() % seeds.size()];
        for (int edits = 1 + random() % 3; edits > 0; --edits) {
            std::size_t at = random() % text.size();
            char c = interesting[random() % interesting.size()];
            switch (random() % 3) {
                case 0: text[at] = c; break;
                case 1: text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c); break;
                default: text.erase(at, 1);
            }
        }
        if (p.agree(text)) ++taken;
    }
    // Both sides of the property are exercised.
    CHECK(taken > rounds / 100);
    CHECK(taken < rounds);
}

namespace {

// Every key and value of a named database, in key order.
std::vector<std::pair<std::string, std::string>> dump_db(const std::string& dir, const char* name) {
    segcore::Env::Options options;
    options.flags = MDB_RDONLY;
    segcore::Env env(dir, options);
    segcore::Txn txn(env, MDB_RDONLY);
    std::vector<std::pair<std::string, std::string>> records;
    auto dbi = txn.open_existing_db(name);
    if (!dbi) return records;
    segcore::Cursor cursor(txn, *dbi);
    while (cursor.next()) records.emplace_back(cursor.key(), cursor.value());
    return records;
}

std::string random_id(std::mt19937& random) {
    return fixture::visitor_id("p" + std::to_string(random()) + "-" + std::to_string(random()));
}

// A profiles file of many shapes: fast and slow lines, attribute names
// first seen far into the file, escapes, spaces, blank lines.
std::vector<std::string> mixed_profiles(std::size_t count) {
    std::mt19937 random(7);
    const std::vector<std::string> names = {"vip", "news", "cart", "tie"};
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < count; ++i) {
        std::string segments;
        for (const auto& name : names)
            if (random() % 3 == 0) segments += (segments.empty() ? "\"" : ",\"") + name + "\"";
        std::string attributes;
        switch (i % 7) {
            case 1: attributes = ",\"attributes\":{\"score\":" + std::to_string(static_cast<int>(random() % 2000) - 1000) + "}"; break;
            case 2: attributes = ",\"attributes\":{\"stage\":\"st\\u00e4ge\",\"score\":0.5}"; break;
            case 3: attributes = i > count / 2 ? ",\"attributes\":{\"tier\":\"gold\"}" : ""; break;
            case 4: attributes = ",\"attributes\":{\"stage\":\"r\xC3\xA9" "peat\"}"; break;
            default: break;
        }
        std::string id = i % 11 == 0 ? "cust-" + std::to_string(i) : random_id(random);
        std::string kind = i % 11 == 0 ? "known" : "anonymous";
        std::string text = "{\"id\":\"" + id + "\",\"kind\":\"" + kind + "\",\"segments\":[" + segments + "]" +
                           attributes + "}";
        if (i % 13 == 0) text = " " + text + " ";
        lines.push_back(text);
        if (i % 101 == 0) lines.push_back("");
    }
    return lines;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    return text;
}

struct Expected {
    std::map<std::string, std::string> profiles;  // key -> value
    std::vector<schema::AttributeDef> attributes;
};

// The full parser, line by line in file order, as segsync imported before.
Expected full_parse_file(const std::vector<std::string>& lines) {
    Catalogue catalogue = segment_catalogue();
    AttributeCatalogue attributes;
    Expected expected;
    std::size_t number = 0;
    for (const auto& text : lines) {
        ++number;
        if (text.empty()) continue;
        Location where{"p", number};
        std::string key, value;
        segsync::encode_profile_record(
            segsync::parse_profile(segsync::parse_line(text, where), catalogue, attributes, where), key, value);
        expected.profiles.emplace(key, value);
    }
    expected.attributes = attributes.added();
    return expected;
}

// Loads `profiles` with sync/bulk_load.h into a bare snapshot in `dir`.
std::size_t load(const TempDir& tmp, const std::string& profiles, std::size_t sort_memory) {
    std::string dir = tmp.path() + "/snap";
    std::filesystem::create_directories(dir);
    segsync::NdjsonReader reader(write_file(tmp.path() + "/profiles.ndjson", profiles));
    Catalogue catalogue = segment_catalogue();
    AttributeCatalogue attributes;
    segsync::SnapshotWriter writer(dir, 256u << 20);
    segsync::LoadOptions options;
    options.temp_dir = dir;
    options.sort_memory = sort_memory;
    std::size_t count = segsync::load_profiles(reader, catalogue, attributes, writer, options);
    writer.put_attributes(attributes.added());
    writer.finish();
    return count;
}

}  // namespace

TEST_CASE("profiles loaded in parallel and in key order are byte for byte the full parser's", "[import][fast]") {
    const auto lines = mixed_profiles(30000);  // several blocks per parsing thread
    const Expected expected = full_parse_file(lines);
    for (std::size_t sort_memory : {std::size_t{96} << 20, std::size_t{256} << 10}) {  // in memory; spilled
        INFO("sort memory " << sort_memory);
        TempDir tmp;
        CHECK(load(tmp, joined(lines), sort_memory) == expected.profiles.size());
        auto stored = dump_db(tmp.path() + "/snap", schema::kProfilesDb);
        CHECK(stored == std::vector<std::pair<std::string, std::string>>(expected.profiles.begin(),
                                                                         expected.profiles.end()));
        std::vector<schema::AttributeDef> attributes;
        for (const auto& [key, value] : dump_db(tmp.path() + "/snap", schema::kAttributesDb))
            attributes.push_back(*schema::decode_attribute(*schema::decode_attribute_key(key), value));
        CHECK(attributes == expected.attributes);
    }
}

namespace {

// The error of importing `lines`, or "".
std::string import_error(const TempDir& tmp, const std::vector<std::string>& lines,
                         std::size_t sort_memory = std::size_t{96} << 20) {
    try {
        load(tmp, joined(lines), sort_memory);
    } catch (const ImportError& e) {
        return e.what();
    }
    return "";
}

// The full parser's message for `text` on line `number`.
std::string full_error(const std::string& text, std::size_t number, const std::string& file) {
    Catalogue catalogue = segment_catalogue();
    AttributeCatalogue attributes;
    Location where{file, number};
    try {
        segsync::parse_profile(segsync::parse_line(text, where), catalogue, attributes, where);
    } catch (const ImportError& e) {
        return e.what();
    }
    return "";
}

std::string profile(const std::string& id, const std::string& extra = "") {
    return "{\"id\":\"" + id + "\",\"kind\":\"anonymous\",\"segments\":[\"vip\"]" + extra + "}";
}

std::vector<std::string> valid_profiles(std::size_t count) {
    std::mt19937 random(11);
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < count; ++i) lines.push_back(profile(random_id(random)));
    return lines;
}

}  // namespace

TEST_CASE("a bad line anywhere is reported at its line with the full parser's message", "[import][fast]") {
    const std::vector<std::string> bad = {
        "{\"id\":\"x\",\"kind\":\"anonymous\",\"segments\":[}",
        profile(fixture::visitor_id("bad"), ",\"attributes\":{\"score\":1e400}"),
        profile(fixture::visitor_id("bad"), ",\"segment\":[]"),
        profile(fixture::visitor_id("bad"), ",\"attributes\":{\"stage\":\"\xC0\x80\"}"),
        "{\"id\":\"v-1\",\"kind\":\"anonymous\",\"segments\":[]}",
        "[1]",
    };
    for (std::size_t at : {std::size_t{1}, std::size_t{777}, std::size_t{25000}}) {
        for (const auto& text : bad) {
            auto lines = valid_profiles(30000);
            lines[at - 1] = text;
            TempDir tmp;
            std::string file = tmp.path() + "/profiles.ndjson";
            INFO(text << " on line " << at);
            CHECK(import_error(tmp, lines) == full_error(text, at, file));
        }
    }
}

TEST_CASE("a repeated visitor is reported where it repeats, unless a bad line comes first", "[import][fast]") {
    auto lines = valid_profiles(30000);
    const std::string first = fixture::visitor_id("first-repeat");
    const std::string second = fixture::visitor_id("second-repeat");
    const std::string bad = "{\"id\":\"v-1\",\"kind\":\"anonymous\",\"segments\":[]}";
    // The error of importing `lines` with `changes` (0-based index -> text)
    // and what it must be, given the file's path.
    auto check = [&](std::map<std::size_t, std::string> changes, std::size_t sort_memory,
                     const std::function<std::string(const std::string&)>& expected) {
        auto copy = lines;
        for (const auto& [index, text] : changes) copy[index] = text;
        TempDir tmp;
        CHECK(import_error(tmp, copy, sort_memory) == expected(tmp.path() + "/profiles.ndjson"));
    };
    auto repeat = [&](std::size_t line, const std::string& id, std::size_t first_line) {
        return [=](const std::string& file) {
            return file + ":" + std::to_string(line) + ": duplicate visitor: anonymous id \"" + id +
                   "\" (first on line " + std::to_string(first_line) + ")";
        };
    };
    for (std::size_t sort_memory : {std::size_t{96} << 20, std::size_t{256} << 10}) {
        INFO("sort memory " << sort_memory);
        // Two repeats: the one whose repeat comes first wins, wherever its
        // first line is.
        check({{19, profile(second)}, {27999, profile(second, ",\"attributes\":{\"score\":1}")},
               {99, profile(first)}, {20999, profile(first)}},
              sort_memory, repeat(21000, first, 100));
        // A slow line (an escape) and a fast one name the same visitor.
        check({{4, "{\"id\":\"" + first + "\",\"kind\":\"anon\\u0079mous\",\"segments\":[]}"},
               {15000, profile(first)}},
              sort_memory, repeat(15001, first, 5));
        // A bad line after the repeat: the repeat is reported; before it:
        // the bad line is.
        check({{99, profile(first)}, {20999, profile(first)}, {25999, bad}}, sort_memory,
              repeat(21000, first, 100));
        check({{99, profile(first)}, {20999, profile(first)}, {9999, bad}}, sort_memory,
              [&](const std::string& file) { return full_error(bad, 10000, file); });
    }
}

TEST_CASE("sorted runs merge into LMDB key order across sorters and spills", "[import][fast][sort]") {
    TempDir tmp;
    std::mt19937 random(3);
    // Keys that share long prefixes, differ only after 8 bytes, are shorter
    // than 8 bytes or hold 0x00 and 0xff bytes.
    auto make_key = [&](std::size_t i) {
        switch (i % 5) {
            case 0: return "kcust-" + std::to_string(random() % 100000);
            case 1: return std::string("\xff\x00", 2) + std::to_string(random() % 1000);
            case 2: return std::string(1, static_cast<char>(random() % 256));
            case 3: return "prefix-shared-" + std::to_string(random() % 50);
            default: return random_id(random);
        }
    };
    std::vector<std::unique_ptr<segsync::KeySorter>> sorters;
    for (int i = 0; i < 3; ++i) sorters.push_back(std::make_unique<segsync::KeySorter>(tmp.path(), 8 << 10));
    std::multimap<std::string, std::uint64_t> reference;
    for (std::uint64_t line = 1; line <= 20000; ++line) {
        std::string key = make_key(line);
        reference.emplace(key, line);
        sorters[random() % 3]->add(key, "v" + std::to_string(line), line);
    }
    std::vector<segsync::KeySorter*> all;
    for (auto& sorter : sorters) all.push_back(sorter.get());
    segsync::KeyMerger merger(all);
    segsync::FramedRecord record;
    std::vector<std::pair<std::string, std::uint64_t>> merged;
    while (merger.next(record)) {
        CHECK(record.value == "v" + std::to_string(record.line));
        merged.emplace_back(record.key, record.line);
    }
    // Each key once, with its first line; the repeat reported is the one
    // whose second line is lowest.
    std::vector<std::pair<std::string, std::uint64_t>> expected;
    std::optional<segsync::Duplicate> repeat;
    for (auto it = reference.begin(); it != reference.end(); it = reference.upper_bound(it->first)) {
        auto [first, last] = reference.equal_range(it->first);
        std::vector<std::uint64_t> lines;
        for (auto i = first; i != last; ++i) lines.push_back(i->second);
        std::sort(lines.begin(), lines.end());
        expected.emplace_back(it->first, lines[0]);
        if (lines.size() > 1 && (!repeat || lines[1] < repeat->line)) repeat = segsync::Duplicate{it->first, lines[0], lines[1]};
    }
    CHECK(merged.size() == expected.size());
    CHECK(merged == expected);
    REQUIRE(repeat);
    REQUIRE(merger.duplicate());
    CHECK(merger.duplicate()->key == repeat->key);
    CHECK(merger.duplicate()->first_line == repeat->first_line);
    CHECK(merger.duplicate()->line == repeat->line);
}

TEST_CASE("NDJSON is read in blocks of whole lines, counted as the line reader counts them", "[import][fast][sources]") {
    TempDir tmp;
    const std::string long_line(3u << 20, 'x');  // longer than one read
    const std::string text = "a\n\n \r\n" + long_line + "\nb\r\nlast";
    std::string path = write_file(tmp.path() + "/lines", text);
    for (std::size_t limit : {std::size_t{4}, std::size_t{1} << 20}) {
        segsync::NdjsonReader blocks(path);
        std::string whole;
        std::string_view chunk;
        std::size_t chunks = 0;
        while (blocks.next_lines(chunk, limit)) {
            CHECK((chunk.back() == '\n' || whole.size() + chunk.size() == text.size()));
            // Over the limit only when one line is.
            CHECK((chunk.size() <= limit || chunk.find('\n') + 1 >= chunk.size()));
            whole += chunk;
            ++chunks;
        }
        CHECK(whole == text);
        CHECK(blocks.lines() == 6);
        CHECK(blocks.offset() == text.size());
        if (limit == 4) CHECK(chunks == 5);  // "a\n\n", " \r\n", the long line, "b\r\n", "last"
    }

    segsync::NdjsonReader lines(path);
    std::vector<std::pair<std::size_t, std::size_t>> seen;  // line, size
    std::string_view one;
    while (lines.next_line(one)) seen.emplace_back(lines.lines(), one.size());
    CHECK(seen == std::vector<std::pair<std::size_t, std::size_t>>{{1, 1}, {4, long_line.size()}, {5, 2}, {6, 4}});
    CHECK(lines.offset() == text.size());
}
