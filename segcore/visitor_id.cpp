#include "segcore/visitor_id.h"

#include <openssl/rand.h>

#include "segcore/base64.h"

namespace segcore {

static_assert(base64::encoded_size(kVisitorIdBytes) == kVisitorIdLength);

bool is_visitor_id(std::string_view id) noexcept {
    unsigned char bytes[kVisitorIdBytes];
    return id.size() == kVisitorIdLength && base64::decode_url(id, bytes, sizeof bytes);
}

bool issue_visitor_id(char* out) noexcept {
    unsigned char bytes[kVisitorIdBytes];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
    base64::encode_url(bytes, sizeof bytes, out);
    return true;
}

}  // namespace segcore
