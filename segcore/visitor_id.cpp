#include "segcore/visitor_id.h"

#include <openssl/rand.h>

#include <array>

#include "segcore/base64.h"

namespace segcore {

static_assert(base64::encoded_size(kVisitorIdBytes) == kVisitorIdLength);

namespace {

constexpr std::array<bool, 256> kBase64Url = [] {
    std::array<bool, 256> table{};
    for (char c : std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
        table[static_cast<unsigned char>(c)] = true;
    return table;
}();

}  // namespace

// What base64::decode_url accepts for 16 bytes, without decoding: segsync
// checks every imported id with it.
bool is_visitor_id(std::string_view id) noexcept {
    if (id.size() != kVisitorIdLength) return false;
    bool alphabet = true;  // no early exit: the loop unrolls
    for (char c : id) alphabet &= kBase64Url[static_cast<unsigned char>(c)];
    if (!alphabet) return false;
    // 22 characters carry 132 bits: the last one's 4 low bits must be zero.
    char last = id.back();
    return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

bool issue_visitor_id(char* out) noexcept {
    unsigned char bytes[kVisitorIdBytes];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    base64::encode_url(bytes, sizeof bytes, out);
    return true;
}

}  // namespace segcore
