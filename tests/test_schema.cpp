#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "segcore/schema.h"

namespace schema = segcore::schema;

TEST_CASE("segment definitions round-trip through the binary encoding", "[schema]") {
    schema::SegmentDef def;
    def.id = 7;
    def.name = "high-value_2";
    def.description = "Spent over 1000 \xe2\x82\xac in the last year";
    def.owner = "crm-team";
    def.priority = -3;

    auto decoded = schema::decode_segment(7, schema::encode_segment(def));
    REQUIRE(decoded);
    CHECK(*decoded == def);
}

TEST_CASE("a truncated or padded segment value is rejected", "[schema]") {
    schema::SegmentDef def;
    def.name = "vip";
    std::string bytes = schema::encode_segment(def);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
        CHECK_FALSE(schema::decode_segment(1, bytes.substr(0, cut)));
    CHECK_FALSE(schema::decode_segment(1, bytes + "x"));
}

TEST_CASE("segment keys sort by id", "[schema]") {
    CHECK(schema::encode_segment_key(1) < schema::encode_segment_key(256));
    CHECK(schema::decode_segment_key(schema::encode_segment_key(0xdeadbeef)) == 0xdeadbeefu);
    CHECK_FALSE(schema::decode_segment_key("abc"));
}

TEST_CASE("profile records round-trip and reject bad lengths", "[schema]") {
    std::vector<std::uint32_t> ids{5, 1, 0xffffffff};
    std::string bytes = schema::encode_profile(ids);
    REQUIRE(schema::profile_segment_count(bytes) == 3u);

    std::uint32_t out[4];
    REQUIRE(schema::decode_profile(bytes, out, 4) == 3);
    CHECK(std::vector<std::uint32_t>(out, out + 3) == ids);
    CHECK(schema::decode_profile(bytes, out, 2) == 2);

    CHECK(schema::profile_segment_count(schema::encode_profile({})) == 0u);
    CHECK_FALSE(schema::profile_segment_count(bytes.substr(0, bytes.size() - 1)));
    CHECK_FALSE(schema::profile_segment_count(bytes + "x"));
    CHECK_FALSE(schema::profile_segment_count(""));
}

TEST_CASE("visitor keys keep anonymous and known ids apart", "[schema]") {
    char anon[schema::kMaxKeySize], known[schema::kMaxKeySize];
    auto a = schema::encode_visitor_key(schema::VisitorKind::anonymous, "42", anon);
    auto k = schema::encode_visitor_key(schema::VisitorKind::known, "42", known);
    REQUIRE(a == 3);
    REQUIRE(k == 3);
    CHECK(std::string(anon, a) != std::string(known, k));
    CHECK(schema::decode_visitor_key_kind(std::string(anon, a)) == schema::VisitorKind::anonymous);
    CHECK(schema::decode_visitor_key_kind(std::string(known, k)) == schema::VisitorKind::known);
    CHECK_FALSE(schema::decode_visitor_key_kind("x42"));
    CHECK_FALSE(schema::decode_visitor_key_kind("a"));
}

TEST_CASE("visitor keys respect LMDB's 511-byte key limit", "[schema]") {
    char key[schema::kMaxKeySize];
    CHECK(schema::encode_visitor_key(schema::VisitorKind::known, std::string(510, 'x'), key) == 511);
    CHECK(schema::encode_visitor_key(schema::VisitorKind::known, std::string(511, 'x'), key) == 0);
    CHECK(schema::encode_visitor_key(schema::VisitorKind::known, "", key) == 0);
}

TEST_CASE("segment names are limited to a header-safe alphabet", "[schema]") {
    CHECK(schema::is_valid_segment_name("vip"));
    CHECK(schema::is_valid_segment_name("cart_abandoner-2"));
    CHECK(schema::is_valid_segment_name(std::string(64, 'a')));
    CHECK_FALSE(schema::is_valid_segment_name(std::string(65, 'a')));
    CHECK_FALSE(schema::is_valid_segment_name(""));
    CHECK_FALSE(schema::is_valid_segment_name("VIP"));
    CHECK_FALSE(schema::is_valid_segment_name("a,b"));
    CHECK_FALSE(schema::is_valid_segment_name("a b"));
}

TEST_CASE("meta integers round-trip and reject wrong sizes", "[schema]") {
    CHECK(schema::decode_u64(schema::encode_u64(0x0102030405060708ull)) == 0x0102030405060708ull);
    CHECK(schema::decode_u32(schema::encode_u32(1)) == 1u);
    CHECK_FALSE(schema::decode_u64(schema::encode_u32(1)));
    CHECK_FALSE(schema::decode_u32(""));
}

TEST_CASE("block keys group a block's contents and hold experiment variants", "[schema][blocks]") {
    char key[schema::kMaxBlockKeySize];
    std::size_t n = schema::encode_block_key("hero", 0x01020304, "", key);
    CHECK(std::string(key, n) == std::string("hero\0\x01\x02\x03\x04", 9));
    auto decoded = schema::decode_block_key(std::string_view(key, n));
    REQUIRE(decoded);
    CHECK(decoded->block == "hero");
    CHECK(decoded->segment == 0x01020304u);
    CHECK(decoded->variant.empty());

    n = schema::encode_block_key("hero", 7, "checkout:B", key);
    decoded = schema::decode_block_key(std::string_view(key, n));
    REQUIRE(decoded);
    CHECK(decoded->variant == "checkout:B");
    CHECK(schema::encode_block_key("hero", 7, "variant-b", key) == 0);  // not experiment:variant
    CHECK(schema::encode_block_key("hero", 7, "Checkout:B", key) == 0);

    // "hero" sorts before "hero-2" whatever the segment ids.
    char other[schema::kMaxBlockKeySize];
    std::size_t m = schema::encode_block_key("hero-2", 0, "", other);
    n = schema::encode_block_key("hero", 0xffffffff, "", key);
    CHECK(std::string(key, n) < std::string(other, m));

    std::string longest(schema::kMaxBlockNameSize, 'b');
    std::string variant = std::string(31, 'e') + ":" + std::string(31, 'V');  // the longest
    CHECK(schema::encode_block_key(longest, 1, variant, key) == schema::kMaxBlockKeySize - 1);
    CHECK(schema::encode_block_key(longest + "b", 1, "", key) == 0);
    CHECK(schema::encode_block_key("Hero", 1, "", key) == 0);
    CHECK(schema::encode_block_key("hero", 1, "Bad", key) == 0);
    CHECK_FALSE(schema::decode_block_key(std::string("hero\0\1\2\3", 8)));
    CHECK_FALSE(schema::decode_block_key("hero"));
    CHECK_FALSE(schema::decode_block_key(std::string("\0\0\0\0\1", 5)));
    CHECK_FALSE(schema::decode_block_key(std::string("hero\0\0\0\0\1x y", 12)));
}
