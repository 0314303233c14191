// Whether a shared cache (a CDN, a corporate proxy) may store a response,
// judged from its headers. A response it may store must never carry a
// visitor's Set-Cookie: the cache would hand that id to everyone.
//
// Cacheable: Cache-Control has "public", "s-maxage", or "max-age" above 0;
// or there is an Expires header and no Cache-Control at all. Not cacheable,
// whatever else is present: Cache-Control "private" or "no-store".
#pragma once

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

}  // namespace segcore
