#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "segcore/base64.h"
#include "segcore/visitor_id.h"

namespace base64 = segcore::base64;

namespace {

std::string encode(const std::string& bytes) {
    std::string text(base64::encoded_size(bytes.size()), '\0');
    CHECK(base64::encode_url(bytes.data(), bytes.size(), text.data()) == text.size());
    return text;
}

std::optional<std::string> decode(const std::string& text, std::size_t capacity = 64) {
    std::string bytes(capacity, '\0');
    auto size = base64::decode_url(text, bytes.data(), capacity);
    if (!size) return std::nullopt;
    bytes.resize(*size);
    return bytes;
}

}  // namespace

TEST_CASE("base64url encodes the RFC 4648 vectors without padding", "[base64]") {
    CHECK(encode("") == "");
    CHECK(encode("f") == "Zg");
    CHECK(encode("fo") == "Zm8");
    CHECK(encode("foo") == "Zm9v");
    CHECK(encode("foob") == "Zm9vYg");
    CHECK(encode("fooba") == "Zm9vYmE");
    CHECK(encode("foobar") == "Zm9vYmFy");
    CHECK(encode("\xfb\xff") == "-_8");  // the url alphabet, not + and /
}

TEST_CASE("base64url round-trips any bytes of any length", "[base64]") {
    std::mt19937 random(7);
    for (std::size_t size = 0; size <= 48; ++size) {
        std::string bytes(size, '\0');
        for (auto& b : bytes) b = static_cast<char>(random());
        INFO("size " << size);
        CHECK(decode(encode(bytes)) == bytes);
    }
}

TEST_CASE("base64url decoding is strict, so each byte string has one spelling", "[base64]") {
    CHECK(decode("Zg") == std::string("f"));
    CHECK_FALSE(decode("Zh"));    // same byte, non-zero unused bits
    CHECK_FALSE(decode("Zm9"));   // ditto for two bytes
    CHECK_FALSE(decode("Zg=="));  // padding
    CHECK_FALSE(decode("Z"));     // no encoding has 4n+1 characters
    CHECK_FALSE(decode("+/8"));   // standard alphabet
    CHECK_FALSE(decode("Zm 9v"));
    CHECK_FALSE(decode(std::string("Zm\0v", 4)));
    CHECK_FALSE(decode("Zm9vYmFy", 5));  // more bytes than the capacity
    CHECK(decode("Zm9vYmFy", 6) == std::string("foobar"));
}

TEST_CASE("issued visitor ids are canonical, 128 random bits, and distinct", "[visitor_id]") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        char id[segcore::kVisitorIdLength];
        REQUIRE(segcore::issue_visitor_id(id));
        std::string text(id, sizeof id);
        CHECK(segcore::is_visitor_id(text));
        CHECK(decode(text)->size() == segcore::kVisitorIdBytes);
        seen.insert(text);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("is_visitor_id accepts exactly one spelling of each 128-bit id", "[visitor_id]") {
    const std::string id = "AAECAwQFBgcICQoLDA0ODw";  // bytes 0..15
    REQUIRE(segcore::is_visitor_id(id));

    // The last character carries 2 bits of the id and 4 of padding: of the
    // 64 possible characters, only the 4 with zero padding are canonical.
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string accepted;
    for (char last : alphabet)
        if (segcore::is_visitor_id(id.substr(0, 21) + last)) accepted += last;
    CHECK(accepted == "AQgw");

    // The same verdict as decoding, whatever byte stands at whatever place.
    unsigned char bytes[segcore::kVisitorIdBytes];
    std::size_t disagreements = 0;
    for (std::size_t i = 0; i < id.size(); ++i)
        for (int c = 0; c < 256; ++c) {
            std::string probe = id;
            probe[i] = static_cast<char>(c);
            bool decodes = base64::decode_url(probe, bytes, sizeof bytes).has_value();
            if (segcore::is_visitor_id(probe) != decodes) ++disagreements;
        }
    CHECK(disagreements == 0);

    CHECK_FALSE(segcore::is_visitor_id(""));
    CHECK_FALSE(segcore::is_visitor_id(id.substr(0, 21)));
    CHECK_FALSE(segcore::is_visitor_id(id + "A"));
    CHECK_FALSE(segcore::is_visitor_id(id + "AA"));
    CHECK_FALSE(segcore::is_visitor_id("AAECAwQFBgcICQoLDA0OD+"));
    CHECK_FALSE(segcore::is_visitor_id("AAECAwQFBgcICQoLDA0O.w"));
    CHECK_FALSE(segcore::is_visitor_id("AAECAwQFBgcICQoLDA0ODw=="));
    CHECK_FALSE(segcore::is_visitor_id("demo-vip-visitor"));  // the old free-form rule
    CHECK_FALSE(segcore::is_visitor_id(std::string(128, 'a')));
    CHECK_FALSE(segcore::is_visitor_id(std::string("AAECAwQFBgcICQoLDA0O\0w", 22)));
}
