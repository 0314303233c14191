#include "segcore/base64.h"

namespace segcore::base64 {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int value_of(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

}  // namespace

std::size_t encode_url(const void* data, std::size_t size, char* out) noexcept {
    const auto* in = static_cast<const unsigned char*>(data);
    std::size_t n = 0;
    unsigned bits = 0;
    int pending = 0;
    for (std::size_t i = 0; i < size; ++i) {
        bits = (bits << 8) | in[i];
        pending += 8;
        while (pending >= 6) {
            pending -= 6;
            out[n++] = kAlphabet[(bits >> pending) & 63];
        }
    }
    if (pending > 0) out[n++] = kAlphabet[(bits << (6 - pending)) & 63];
    return n;
}

std::optional<std::size_t> decode_url(std::string_view text, void* out,
                                      std::size_t capacity) noexcept {
    if (text.size() % 4 == 1) return std::nullopt;  // 6 bits cannot end a byte
    std::size_t size = text.size() * 6 / 8;
    if (size > capacity) return std::nullopt;
    auto* bytes = static_cast<unsigned char*>(out);
    std::size_t n = 0;
    unsigned bits = 0;
    int pending = 0;
    for (char c : text) {
        int v = value_of(c);
        if (v < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<unsigned>(v);
        pending += 6;
        if (pending >= 8) {
            pending -= 8;
            bytes[n++] = static_cast<unsigned char>((bits >> pending) & 0xff);
        }
    }
    // The leftover bits are padding: only zero is canonical.
    if ((bits & ((1u << pending) - 1)) != 0) return std::nullopt;
    return n;
}

}  // namespace segcore::base64
