#include "segcore/visitor_id.h"

#include <openssl/rand.h>

#include "segcore/base64.h"

namespace segcore {

static_assert(base64::encoded_size(kVisitorIdBytes) == kVisitorIdLength);

bool is_visitor_id(std::string_view id) noexcept {
    unsigned char bytes[kVisitorIdBytes];
    return id.size() == kVisitorIdLength && base64::decode_url(id, bytes, sizeof bytes);
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
