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

bool issue_visitor_id(char* out, std::uint64_t now_ms) noexcept {
    unsigned char bytes[kVisitorIdBytes];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    for (int i = 0; i < 6; ++i) bytes[i] = static_cast<unsigned char>(now_ms >> (40 - 8 * i));
    bytes[6] = static_cast<unsigned char>(0x70 | (bytes[6] & 0x0f));
    bytes[8] = static_cast<unsigned char>(0x80 | (bytes[8] & 0x3f));
    base64::encode_url(bytes, sizeof bytes, out);
    return true;
}

std::optional<std::uint64_t> visitor_id_issued_ms(std::string_view id, std::uint64_t now_ms) noexcept {
    unsigned char bytes[kVisitorIdBytes];
    if (id.size() != kVisitorIdLength || !base64::decode_url(id, bytes, sizeof bytes)) return std::nullopt;
    if ((bytes[6] & 0xf0) != 0x70 || (bytes[8] & 0xc0) != 0x80) return std::nullopt;
    std::uint64_t ms = 0;
    for (int i = 0; i < 6; ++i) ms = ms << 8 | bytes[i];
    if (ms < kFirstIssueMs || ms > now_ms + kIssueSkewMs) return std::nullopt;
    return ms;
}

}  // namespace segcore
