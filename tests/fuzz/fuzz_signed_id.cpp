// The signed known-visitor cookie: verify_signed_id on arbitrary values,
// sign/verify round trips with one byte altered, the strict base64url
// decoder, and the key file parser. The first byte picks the mode.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "segcore/base64.h"
#include "segcore/keys.h"
#include "segcore/signed_id.h"
#include "segcore/visitor_id.h"
#include "tests/fuzz/fuzz.h"

namespace {

namespace schema = segcore::schema;
using segcore::SignedIdCheck;

constexpr std::uint64_t kNow = 1700000000;

const segcore::KeyRing& keys() {
    static const segcore::KeyRing ring = segcore::KeyRing::parse(
        "k2025 base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
        "old hex:7777777777777777777777777777777777777777777777777777777777777777\n",
        "fuzz-keys");
    return ring;
}

// A value that verifies is exactly what sign_id makes of its id and
// expiry: one accepted spelling per signed id.
void verify_arbitrary(std::string_view value) {
    char id[schema::kMaxVisitorIdSize];
    auto verified = segcore::verify_signed_id(keys(), value, kNow, id);
    if (verified.check != SignedIdCheck::valid) return;
    FUZZ_CHECK(verified.size >= 1 && verified.size <= sizeof id);
    std::string_view key_id = value.substr(3, value.find('.', 3) - 3);
    std::size_t expires_at = value.rfind('.', value.rfind('.') - 1) + 1;
    std::uint64_t expires = std::stoull(std::string(value.substr(expires_at)));
    const segcore::Key* key = keys().find(key_id);
    FUZZ_CHECK(key);
    FUZZ_CHECK(segcore::sign_id(*key, std::string_view(id, verified.size), expires) == value);
}

// Input: 8 bytes of expiry, 2 bytes choosing a position and a byte to put
// there, then the id.
void round_trip(std::string_view input) {
    if (input.size() < 11) return;
    std::uint64_t expires;
    std::memcpy(&expires, input.data(), sizeof expires);
    std::size_t position = static_cast<unsigned char>(input[8]);
    char replacement = input[9];
    std::string_view id = input.substr(10);
    if (id.size() > schema::kMaxVisitorIdSize) return;

    std::string value = segcore::sign_id(keys().signing_key(), id, expires);
    char out[schema::kMaxVisitorIdSize];
    auto verified = segcore::verify_signed_id(keys(), value, kNow, out);
    if (kNow < expires) {
        FUZZ_CHECK(verified.check == SignedIdCheck::valid);
        FUZZ_CHECK(std::string_view(out, verified.size) == id);
    } else {
        FUZZ_CHECK(verified.check == SignedIdCheck::expired);
    }

    position %= value.size();
    if (value[position] == replacement) return;
    value[position] = replacement;
    FUZZ_CHECK(segcore::verify_signed_id(keys(), value, kNow, out).check != SignedIdCheck::valid);
    verify_arbitrary(value);
}

// What decodes re-encodes to the same text; visitor ids decode to 16 bytes.
void base64(std::string_view text) {
    unsigned char bytes[1024];
    auto size = segcore::base64::decode_url(text, bytes, sizeof bytes);
    if (segcore::is_visitor_id(text)) FUZZ_CHECK(size == segcore::kVisitorIdBytes);
    if (!size) return;
    FUZZ_CHECK(*size <= sizeof bytes);
    std::string again(segcore::base64::encoded_size(*size), '\0');
    FUZZ_CHECK(segcore::base64::encode_url(bytes, *size, again.data()) == again.size());
    FUZZ_CHECK(again == text);
}

// A key file either loads, and its first key's cookies verify, or is
// rejected with KeyFileError.
void key_file(std::string_view text) {
    try {
        auto ring = segcore::KeyRing::parse(text, "fuzz-keys");
        FUZZ_CHECK(ring.size() >= 1);
        std::string value = segcore::sign_id(ring.signing_key(), "cust-1", kNow + 1);
        char out[schema::kMaxVisitorIdSize];
        FUZZ_CHECK(segcore::verify_signed_id(ring, value, kNow, out).check == SignedIdCheck::valid);
    } catch (const segcore::KeyFileError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
    case 0: verify_arbitrary(input); break;
    case 1: round_trip(input); break;
    case 2: base64(input); break;
    case 3: key_file(input); break;
    }
    return 0;
}
