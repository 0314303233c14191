// Whether a shared cache (a CDN, a corporate proxy) may store a response,
// judged from its headers, and how to forbid it. A response it may store
// must never carry a visitor's Set-Cookie (the cache would hand that id to
// everyone) nor a body personalised for one visitor.
//
// Cacheable: Cache-Control has "public", "s-maxage", or "max-age" above 0;
// or there is an Expires header and no Cache-Control at all. Not cacheable,
// whatever else is present: Cache-Control "private" or "no-store".
#pragma once

#include <cstddef>
#include <string_view>

namespace segcore {

class SharedCacheability {
public:
    // Feed every Cache-Control header of the response.
    void add_cache_control(std::string_view value) noexcept;
    void set_has_expires() noexcept { has_expires_ = true; }

    bool cacheable() const noexcept;

private:
    bool has_cache_control_ = false;
    bool has_expires_ = false;
    bool storable_ = false;   // public, s-maxage, max-age > 0
    bool forbidden_ = false;  // private, no-store
};

inline constexpr std::string_view kPrivate = "private";

// The Cache-Control value for a response personalised for one visitor:
// "private" followed by the directives of `original` (one or more
// Cache-Control values joined with commas) that still mean something to the
// visitor's own browser cache, e.g. max-age, no-cache, no-store,
// must-revalidate. Drops public, s-maxage, proxy-revalidate and any earlier
// private. `out` needs room for private_cache_control_capacity(
// original.size()) bytes. Returns the length written.
std::size_t private_cache_control(std::string_view original, char* out) noexcept;

// Every kept directive gains at most ", " over its one separating comma.
constexpr std::size_t private_cache_control_capacity(std::size_t original_size) {
    return kPrivate.size() + 2 * (original_size + 1);
}

}  // namespace segcore
