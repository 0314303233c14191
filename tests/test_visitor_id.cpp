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

TEST_CASE("base64url rejects a character outside the alphabet at any position", "[base64]") {
    for (std::size_t size = 1; size <= 12; ++size) {
        std::string text = encode(std::string(size, '\x5a'));
        for (std::size_t i = 0; i < text.size(); ++i) {
            for (char bad : {'=', '+', '/', '.', ' ', '\0', '\x80'}) {
                std::string broken = text;
                broken[i] = bad;
                INFO("size " << size << " position " << i);
                CHECK_FALSE(decode(broken));
            }
        }
    }
}

TEST_CASE("issued visitor ids are canonical, distinct, and carry their issue time", "[visitor_id]") {
    const std::uint64_t now = 1790000000123;  // 2026-09-21
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        char id[segcore::kVisitorIdLength];
        REQUIRE(segcore::issue_visitor_id(id, now));
        std::string text(id, sizeof id);
        CHECK(segcore::is_visitor_id(text));
        auto bytes = decode(text);
        REQUIRE(bytes->size() == segcore::kVisitorIdBytes);
        CHECK((static_cast<unsigned char>((*bytes)[6]) >> 4) == 7);     // UUIDv7
        CHECK((static_cast<unsigned char>((*bytes)[8]) >> 6) == 0b10);  // RFC 9562 variant
        CHECK(segcore::visitor_id_issued_ms(text, now) == now);
        CHECK(segcore::visitor_id_issued_ms(text, now + 400ull * 86400000) == now);
        seen.insert(text);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("only ids with a UUIDv7 layout and a plausible time have an issue time", "[visitor_id]") {
    const std::uint64_t now = 1790000000000;
    auto id_at = [](std::uint64_t ms, unsigned char version = 0x70, unsigned char variant = 0x80) {
        std::string bytes(16, '\x5a');
        for (int i = 0; i < 6; ++i) bytes[i] = static_cast<char>(ms >> (40 - 8 * i));
        bytes[6] = static_cast<char>(version | 0x0a);
        bytes[8] = static_cast<char>(variant | 0x15);
        return encode(bytes);
    };
    CHECK(segcore::visitor_id_issued_ms(id_at(now - 1000), now) == now - 1000);
    CHECK(segcore::visitor_id_issued_ms(id_at(segcore::kFirstIssueMs), now) == segcore::kFirstIssueMs);
    CHECK_FALSE(segcore::visitor_id_issued_ms(id_at(segcore::kFirstIssueMs - 1), now));  // before ids had times
    CHECK(segcore::visitor_id_issued_ms(id_at(now + segcore::kIssueSkewMs), now));        // a faster clock
    CHECK_FALSE(segcore::visitor_id_issued_ms(id_at(now + segcore::kIssueSkewMs + 1), now));
    CHECK_FALSE(segcore::visitor_id_issued_ms(id_at(now, 0x40), now));        // UUIDv4: random
    CHECK_FALSE(segcore::visitor_id_issued_ms(id_at(now, 0x70, 0xc0), now));  // other variant
    CHECK_FALSE(segcore::visitor_id_issued_ms("ZGVtby12aXAtdmlzaXRvcg", now));  // "demo-vip-visitor"
    CHECK_FALSE(segcore::visitor_id_issued_ms("not an id", now));
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
