#include <catch2/catch.hpp>

#include <cstdlib>

#include <fstream>
#include <map>
#include <random>
#include <string>

#include "segcore/keys.h"
#include "segcore/signed_id.h"

using segcore::KeyRing;
using segcore::SignedIdCheck;

namespace {

// Secrets of 32 bytes: "0123456789abcdef0123456789abcdef" and friends.
const std::string kCurrent = "current base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
const std::string kPrevious =
    "previous hex:" + std::string(64, '7') + "\n";
const std::string kRetired = "retired hex:" + std::string(64, 'a') + "\n";
constexpr std::uint64_t kNow = 1700000000;

KeyRing ring(const std::string& text) { return KeyRing::parse(text, "keys.txt"); }

segcore::VerifiedId verify(const KeyRing& keys, const std::string& value, std::string* id = nullptr,
                           std::uint64_t now = kNow,
                           std::string_view purpose = segcore::kKnownVisitorPurpose) {
    char out[segcore::schema::kMaxVisitorIdSize];
    auto verified = segcore::verify_signed_id(keys, value, now, out, purpose);
    if (id) *id = std::string(out, verified.size);
    return verified;
}

std::string hex(const unsigned char* bytes, std::size_t size) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (std::size_t i = 0; i < size; ++i) {
        text += digits[bytes[i] >> 4];
        text += digits[bytes[i] & 15];
    }
    return text;
}

std::string key_file_error(const std::string& text) {
    try {
        ring(text);
    } catch (const segcore::KeyFileError& e) {
        return e.what();
    }
    FAIL("key file accepted: " << text);
    return {};
}

}  // namespace

TEST_CASE("Key computes HMAC-SHA256 (RFC 4231 test case 1), also when reused", "[keys]") {
    segcore::Key key("rfc", std::string(20, '\x0b'));
    unsigned char mac[segcore::kMacSize];
    const std::string expected = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    key.mac({"Hi There"}, mac);
    CHECK(hex(mac, sizeof mac) == expected);
    key.mac({"something else"}, mac);
    CHECK(hex(mac, sizeof mac) != expected);
    key.mac({"Hi ", "", "There"}, mac);  // parts are concatenated
    CHECK(hex(mac, sizeof mac) == expected);
}

TEST_CASE("a signed id verifies and gives back the id, whatever its bytes", "[signed_id]") {
    KeyRing keys = ring(kCurrent);
    for (std::string id : {std::string("cust-10001"), std::string("a.b.c"), std::string("\xc3\xa9t\xc3\xa9"),
                           std::string("x"), std::string(510, 'k'), std::string("nul\0byte", 8)}) {
        std::string value = segcore::sign_id(keys.signing_key(), id, kNow + 60);
        INFO(value);
        CHECK(value.rfind("v1.current.", 0) == 0);
        std::string out;
        auto verified = verify(keys, value, &out);
        CHECK(verified.check == SignedIdCheck::valid);
        CHECK(out == id);
    }
    CHECK_THROWS_AS(segcore::sign_id(keys.signing_key(), "", kNow), std::invalid_argument);
    CHECK_THROWS_AS(segcore::sign_id(keys.signing_key(), std::string(511, 'k'), kNow),
                    std::invalid_argument);
}

TEST_CASE("the signed id format matches the README's Python recipe", "[signed_id]") {
    // Computed with the Python snippet in README.md ("Signed known-visitor
    // cookie") for this key, id and expiry.
    KeyRing keys = ring(kCurrent);
    CHECK(segcore::sign_id(keys.signing_key(), "cust-10001", 1700003600) ==
          "v1.current.Y3VzdC0xMDAwMQ.1700003600.kg0wEET2TMd7nLbqKXoF0jQrYUQSUJeDnoPZNd6Mqbc");
}

TEST_CASE("expiry is checked: valid before, rejected from the expiry second on", "[signed_id]") {
    KeyRing keys = ring(kCurrent);
    std::string value = segcore::sign_id(keys.signing_key(), "cust-1", kNow);
    CHECK(verify(keys, value, nullptr, kNow - 1).check == SignedIdCheck::valid);
    CHECK(verify(keys, value, nullptr, kNow).check == SignedIdCheck::expired);
    CHECK(verify(keys, value, nullptr, kNow + 86400).check == SignedIdCheck::expired);
}

// Found by fuzzing (tests/fuzz/corpus/signed_id/expires-max): sign_id wrote
// 20-digit expiries that the verifier then rejected as malformed.
TEST_CASE("every expiry sign_id can write verifies, up to the largest", "[signed_id]") {
    KeyRing keys = ring(kCurrent);
    for (std::uint64_t expires : {UINT64_MAX, std::uint64_t{10000000000000000000u}}) {
        INFO(expires);
        std::string id;
        std::string value = segcore::sign_id(keys.signing_key(), "cust-1", expires);
        CHECK(verify(keys, value, &id).check == SignedIdCheck::valid);
        CHECK(id == "cust-1");
    }
}

TEST_CASE("keys rotate: the first signs, all verify, a removed key verifies nothing",
          "[signed_id][keys]") {
    KeyRing before = ring(kPrevious);
    std::string old_cookie = segcore::sign_id(before.signing_key(), "cust-1", kNow + 60);

    KeyRing during = ring("# rotated in\n" + kCurrent + kPrevious);
    CHECK(during.signing_key().id() == "current");
    CHECK(verify(during, old_cookie).check == SignedIdCheck::valid);
    std::string new_cookie = segcore::sign_id(during.signing_key(), "cust-1", kNow + 60);
    CHECK(new_cookie.rfind("v1.current.", 0) == 0);
    CHECK(verify(during, new_cookie).check == SignedIdCheck::valid);

    KeyRing after = ring(kCurrent);
    CHECK(verify(after, old_cookie).check == SignedIdCheck::unknown_key);
    CHECK(verify(after, new_cookie).check == SignedIdCheck::valid);
}

TEST_CASE("a key id naming a different secret does not verify", "[signed_id][keys]") {
    KeyRing mine = ring(kCurrent);
    KeyRing theirs = ring("current hex:" + std::string(64, '1') + "\n");
    std::string forged = segcore::sign_id(theirs.signing_key(), "cust-1", kNow + 60);
    CHECK(verify(mine, forged).check == SignedIdCheck::bad_signature);
}

TEST_CASE("100,000 mutated, truncated, expired, wrong-purpose and retired-key cookies: none accepted",
          "[signed_id]") {
    KeyRing keys = ring(kCurrent + kPrevious);
    KeyRing retired = ring(kRetired);
    const std::string id = "cust-10001";
    const std::string good = segcore::sign_id(keys.signing_key(), id, kNow + 3600);
    REQUIRE(verify(keys, good).check == SignedIdCheck::valid);

    const std::string alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \"%\x80\xff";
    std::mt19937_64 random(20240501);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };

    std::size_t accepted = 0, tried = 0;
    std::map<std::string, std::size_t> per_kind;
    for (int i = 0; i < 100000; ++i) {
        std::string value = good;
        std::string kind;
        switch (i % 8) {
            case 0:  // replace one character
                kind = "replaced";
                value[pick(value.size())] = alphabet[pick(alphabet.size())];
                break;
            case 1:  // flip bits of one character
                kind = "bit flip";
                value[pick(value.size())] ^= static_cast<char>(1 + pick(255));
                break;
            case 2:  // truncate
                kind = "truncated";
                value.resize(pick(value.size()));
                break;
            case 3:  // insert one character
                kind = "inserted";
                value.insert(pick(value.size() + 1), 1, alphabet[pick(alphabet.size())]);
                break;
            case 4:  // delete one character
                kind = "deleted";
                value.erase(pick(value.size()), 1);
                break;
            case 5:  // correctly signed, but expired
                kind = "expired";
                value = segcore::sign_id(keys.signing_key(), id, kNow - pick(10 * 365 * 86400));
                break;
            case 6:  // correctly signed for another purpose
                kind = "wrong purpose";
                value = segcore::sign_id(keys.signing_key(), id, kNow + 1 + pick(86400),
                                         pick(2) ? "segedge-preview" : "segedge-known-visitor ");
                break;
            case 7:  // correctly signed with a key that was removed
                kind = "retired key";
                value = segcore::sign_id(retired.signing_key(), id, kNow + 1 + pick(86400));
                break;
        }
        if (value == good) continue;  // a mutation that changed nothing
        ++tried;
        ++per_kind[kind];
        std::string out;
        if (verify(keys, value, &out).check == SignedIdCheck::valid) {
            ++accepted;
            UNSCOPED_INFO(kind << " accepted: " << value << " -> " << out);
        }
    }
    CHECK(accepted == 0);
    CHECK(tried > 99000);
    CHECK(per_kind.size() == 8);
    // The unmodified cookie is still good: the keys were not the problem.
    CHECK(verify(keys, good).check == SignedIdCheck::valid);
}

TEST_CASE("malformed cookie values are rejected before any key is used", "[signed_id]") {
    KeyRing keys = ring(kCurrent);
    std::string good = segcore::sign_id(keys.signing_key(), "cust-1", kNow + 60);
    std::string mac = good.substr(good.rfind('.') + 1);
    for (std::string bad : {std::string(""), std::string("v1"), std::string("...."),
                            "v2" + good.substr(2), "V1" + good.substr(2),
                            "v1.current.Y3VzdC0x." + std::to_string(kNow + 60) + "." + mac + ".x",
                            "v1.current..1700000060." + mac,
                            "v1.current.Y3VzdC0x.01700000060." + mac,
                            "v1.current.Y3VzdC0x.-1." + mac,
                            "v1.current.Y3VzdC0x.99999999999999999999." + mac,
                            "v1.current.Y3VzdC0x.18446744073709551616." + mac,  // UINT64_MAX + 1
                            "v1.cur rent.Y3VzdC0x.1700000060." + mac,
                            "v1.current.Y3VzdC0x.1700000060." + mac + "A",
                            "v1.current.Y3VzdC0x.1700000060." + mac.substr(1),
                            good + std::string(1024, 'A')}) {
        INFO(bad);
        CHECK(verify(keys, bad).check == SignedIdCheck::malformed);
    }
    CHECK(segcore::to_string(SignedIdCheck::bad_signature) == "bad signature");
}

TEST_CASE("MACs are compared with CRYPTO_memcmp through constant_time_equal", "[signed_id]") {
    unsigned char a[segcore::kMacSize], b[segcore::kMacSize];
    for (std::size_t i = 0; i < sizeof a; ++i) a[i] = b[i] = static_cast<unsigned char>(i * 7);
    CHECK(segcore::constant_time_equal(a, b, sizeof a));
    for (std::size_t i : {std::size_t{0}, std::size_t{15}, sizeof a - 1}) {
        b[i] ^= 1;
        CHECK_FALSE(segcore::constant_time_equal(a, b, sizeof a));
        b[i] ^= 1;
    }
    CHECK(segcore::constant_time_equal(a, b, 0));
}

TEST_CASE("key files: comments, blank lines, CRLF, hex and both base64 alphabets", "[keys]") {
    std::string url_alphabet = "k3 base64:" + std::string(42, '_') + "8\n";  // 32 bytes of 0xff
    KeyRing keys = ring("# keys for segedge\n\n  " + kCurrent + "\t# indented comment\r\n" +
                        "k2\thex:" + std::string(64, 'F') + "\r\n" + url_alphabet +
                        "k4 base64:" + std::string(42, '/') + "8=\n");
    CHECK(keys.size() == 4);
    CHECK(keys.signing_key().id() == "current");
    REQUIRE(keys.find("k2"));
    REQUIRE(keys.find("k3"));
    REQUIRE(keys.find("k4"));
    CHECK_FALSE(keys.find("k5"));
    // The same 32 bytes of 0xff, however spelled, sign alike.
    std::string expected;
    for (std::string secret : {"hex:" + std::string(64, 'F'), "hex:" + std::string(64, 'f'),
                               "base64:" + std::string(42, '_') + "8",
                               "base64:" + std::string(42, '/') + "8=",
                               "base64:" + std::string(42, '/') + "8"}) {
        INFO(secret);
        std::string value = segcore::sign_id(ring("k " + secret + "\n").signing_key(), "x", kNow);
        if (expected.empty()) expected = value;
        CHECK(value == expected);
    }
}

TEST_CASE("bad key files are rejected naming the file and line, never the secret", "[keys]") {
    CHECK(key_file_error("") == "keys.txt: no keys");
    CHECK(key_file_error("# only a comment\n\n") == "keys.txt: no keys");
    CHECK(key_file_error(kCurrent + "short base64:c2hvcnQ=\n") ==
          "keys.txt:2: secret of key \"short\" is 5 bytes, at least 32 are needed");
    CHECK(key_file_error("k1 hex:" + std::string(62, 'a') + "\n") ==
          "keys.txt:1: secret of key \"k1\" is 31 bytes, at least 32 are needed");
    CHECK(key_file_error("k1 hex:" + std::string(514, 'a') + "\n") ==
          "keys.txt:1: secret of key \"k1\" is over 256 bytes");
    CHECK(key_file_error("k1 hex:" + std::string(5000, 'a') + "\n") ==
          "keys.txt:1: secret of key \"k1\" is over 256 bytes");
    CHECK(key_file_error("k1 hex:" + std::string(63, 'a') + "g\n") ==
          "keys.txt:1: secret of key \"k1\" is not valid hex");
    CHECK(key_file_error("k1 base64:" + std::string(40, 'A') + "!!!\n") ==
          "keys.txt:1: secret of key \"k1\" is not valid base64");
    CHECK(key_file_error("k1 " + std::string(64, 'a') + "\n") ==
          "keys.txt:1: secret of key \"k1\" must start with \"base64:\" or \"hex:\"");
    CHECK(key_file_error("\n" + kCurrent + kPrevious + kCurrent) ==
          "keys.txt:4: duplicate key id \"current\" (first on line 2)");
    CHECK(key_file_error("k.1 hex:" + std::string(64, 'a') + "\n") ==
          "keys.txt:1: invalid key id \"k.1\": use 1..16 characters of A-Z, a-z, 0-9, _ and -");
    CHECK_THAT(key_file_error(std::string(17, 'k') + " hex:" + std::string(64, 'a') + "\n"),
               Catch::Contains("invalid key id"));
    CHECK(key_file_error("k1\n") ==
          "keys.txt:1: expected \"KEY-ID base64:SECRET\" or \"KEY-ID hex:SECRET\", got 1 fields");
    std::string three = key_file_error("k1 hex:" + std::string(64, 'a') + " extra\n");
    CHECK(three == "keys.txt:1: expected \"KEY-ID base64:SECRET\" or \"KEY-ID hex:SECRET\", got 3 fields");
    CHECK(three.find(std::string(64, 'a')) == std::string::npos);
}

TEST_CASE("KeyRing::load reads a file and names it when it cannot", "[keys]") {
    char dir_template[] = "/tmp/segedge-keys-XXXXXX";
    std::string dir = mkdtemp(dir_template);
    std::string path = dir + "/keys";
    std::ofstream(path) << kCurrent << kPrevious;
    KeyRing keys = KeyRing::load(path);
    CHECK(keys.size() == 2);
    CHECK_THROWS_WITH(KeyRing::load(dir + "/missing"),
                      dir + "/missing: cannot open: No such file or directory");
    CHECK_THROWS_WITH(KeyRing::load(dir), dir + ": cannot open: not a regular file");
    std::ofstream(path, std::ios::trunc) << "k1 hex:00\n";
    CHECK_THROWS_WITH(KeyRing::load(path), Catch::StartsWith(path + ":1: secret of key \"k1\""));
}
