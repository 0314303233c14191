// Cache-Control for a response personalised for one visitor: no shared cache
// may store it, but the visitor's own browser may, as the origin allowed.
#pragma once

#include <cstddef>
#include <string_view>

namespace segcore {

inline constexpr std::string_view kPrivate = "private";

// Writes "private" followed by the directives of `original` (one or more
// Cache-Control values joined with commas) that still mean something to a
// private cache, e.g. max-age, no-cache, no-store, must-revalidate. Drops
// public, s-maxage, proxy-revalidate and any earlier private. `out` needs
// room for private_cache_control_capacity(original.size()) bytes. Returns
// the length written.
std::size_t private_cache_control(std::string_view original, char* out) noexcept;

// Every kept directive gains at most ", " over its one separating comma.
constexpr std::size_t private_cache_control_capacity(std::size_t original_size) {
    return kPrivate.size() + 2 * (original_size + 1);
}

}  // namespace segcore
