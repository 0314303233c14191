// base64url without padding (RFC 4648 section 5): the encoding of visitor
// ids, signed-cookie fields and MACs. Decoding is strict so that every byte
// string has exactly one accepted spelling: a cookie cannot be altered into
// another string that decodes to the same bytes. No allocation.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace segcore::base64 {

constexpr std::size_t encoded_size(std::size_t bytes) { return (bytes * 8 + 5) / 6; }

// Writes encoded_size(size) characters to `out`; returns that count.
std::size_t encode_url(const void* data, std::size_t size, char* out) noexcept;

// Decodes into `out`; returns the byte count, or nullopt when `text` has a
// character outside [A-Za-z0-9_-], a length no encoding produces, non-zero
// unused low bits in its last character, or more than `capacity` bytes.
std::optional<std::size_t> decode_url(std::string_view text, void* out,
                                      std::size_t capacity) noexcept;

}  // namespace segcore::base64
