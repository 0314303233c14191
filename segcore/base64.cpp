#include "segcore/base64.h"

namespace segcore::base64 {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Character -> 6-bit value, -1 outside the alphabet: a table, as ids are
// decoded on every request.
struct DecodeTable {
    signed char value[256];
    constexpr DecodeTable() : value() {
        for (int c = 0; c < 256; ++c) value[c] = -1;
        for (int v = 0; v < 64; ++v) value[static_cast<unsigned char>(kAlphabet[v])] = static_cast<signed char>(v);
    }
};

constexpr DecodeTable kDecode;

int value_of(char c) { return kDecode.value[static_cast<unsigned char>(c)]; }

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
    const char* in = text.data();
    std::size_t groups = text.size() / 4, tail = text.size() % 4;
    // Four characters make three bytes; a -1 anywhere makes the OR negative.
    for (std::size_t g = 0; g < groups; ++g, in += 4, bytes += 3) {
        int a = value_of(in[0]), b = value_of(in[1]), c = value_of(in[2]), d = value_of(in[3]);
        if ((a | b | c | d) < 0) return std::nullopt;
        unsigned bits = static_cast<unsigned>(a << 18 | b << 12 | c << 6 | d);
        bytes[0] = static_cast<unsigned char>(bits >> 16);
        bytes[1] = static_cast<unsigned char>(bits >> 8);
        bytes[2] = static_cast<unsigned char>(bits);
    }
    if (tail == 0) return size;
    // Two characters make one byte, three make two; the leftover low bits
    // are padding, and only zero is canonical.
    int a = value_of(in[0]), b = value_of(in[1]), c = tail == 3 ? value_of(in[2]) : 0;
    if ((a | b | c) < 0) return std::nullopt;
    unsigned bits = static_cast<unsigned>(a << 12 | b << 6 | c);
    if (tail == 2) {
        if (b & 0xf) return std::nullopt;
        bytes[0] = static_cast<unsigned char>(bits >> 10);
    } else {
        if (c & 0x3) return std::nullopt;
        bytes[0] = static_cast<unsigned char>(bits >> 10);
        bytes[1] = static_cast<unsigned char>(bits >> 2);
    }
    return size;
}

}  // namespace segcore::base64
