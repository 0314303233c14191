#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "segcore/cacheability.h"
#include "segcore/consent.h"
#include "segcore/set_cookie.h"

using segcore::Consent;

namespace {

segcore::CookieFlagsResult flags(std::vector<std::string_view> tokens) {
    return segcore::parse_cookie_flags(tokens);
}

bool cacheable(std::vector<std::string_view> cache_control, bool expires = false) {
    segcore::SharedCacheability c;
    for (auto value : cache_control) c.add_cache_control(value);
    if (expires) c.set_has_expires();
    return c.cacheable();
}

}  // namespace

TEST_CASE("the default visitor cookie is HttpOnly, SameSite=Lax, Path=/, one year", "[set_cookie]") {
    CHECK(segcore::set_cookie_attributes({}) == "; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax");
    segcore::CookieAttributes a;
    a.domain = ".example.com";
    a.path = "/shop";
    a.max_age = segcore::kMaxCookieAgeSeconds;
    a.flags = segcore::kCookieSecure | segcore::kCookieHttpOnly | segcore::kCookieSameSiteStrict;
    CHECK(segcore::set_cookie_attributes(a) ==
          "; Max-Age=34560000; Domain=.example.com; Path=/shop; Secure; HttpOnly; SameSite=Strict");
    a.flags = 0;
    CHECK(segcore::set_cookie_attributes(a) == "; Max-Age=34560000; Domain=.example.com; Path=/shop");
}

TEST_CASE("cookie flags: known tokens in any case, each once, one SameSite", "[set_cookie]") {
    CHECK(flags({"off"}).flags == 0);
    CHECK(flags({"off"}).error.empty());
    auto all = flags({"secure", "HTTPONLY", "samesite=none"});
    CHECK(all.error.empty());
    CHECK(all.flags == (segcore::kCookieSecure | segcore::kCookieHttpOnly | segcore::kCookieSameSiteNone));
    CHECK(flags({"Secure", "SameSite=Strict"}).flags ==
          (segcore::kCookieSecure | segcore::kCookieSameSiteStrict));

    CHECK(flags({"Secure", "Partitioned"}).error ==
          "invalid cookie flag \"Partitioned\": use Secure, HttpOnly, SameSite=Lax, SameSite=Strict, "
          "SameSite=None or off alone");
    CHECK_THAT(flags({"off", "Secure"}).error, Catch::Contains("\"off\""));
    CHECK_THAT(flags({"SameSite"}).error, Catch::Contains("invalid cookie flag \"SameSite\""));
    CHECK(flags({"Secure", "secure"}).error == "cookie flag \"secure\" given twice");
    CHECK(flags({"SameSite=Lax", "SameSite=Strict"}).error ==
          "cookie flag \"SameSite=Strict\": only one SameSite value");
    CHECK(flags({"SameSite=None"}).error == "cookie flag \"SameSite=None\" needs \"Secure\"");
}

TEST_CASE("cookie domain and path syntax", "[set_cookie]") {
    CHECK(segcore::is_cookie_domain("example.com"));
    CHECK(segcore::is_cookie_domain(".shop.example-1.com"));
    CHECK_FALSE(segcore::is_cookie_domain(""));
    CHECK_FALSE(segcore::is_cookie_domain("."));
    CHECK_FALSE(segcore::is_cookie_domain("example.com."));
    CHECK_FALSE(segcore::is_cookie_domain("exa mple.com"));
    CHECK_FALSE(segcore::is_cookie_domain("example.com;Secure"));
    CHECK(segcore::is_cookie_path("/"));
    CHECK(segcore::is_cookie_path("/shop/a-b_c"));
    CHECK_FALSE(segcore::is_cookie_path(""));
    CHECK_FALSE(segcore::is_cookie_path("shop"));
    CHECK_FALSE(segcore::is_cookie_path("/a;b"));
    CHECK_FALSE(segcore::is_cookie_path("/a b"));
}

TEST_CASE("__Secure- and __Host- cookie names get what browsers require", "[set_cookie]") {
    segcore::CookieAttributes a;
    CHECK(segcore::check_cookie_prefix("segedge_id", a).empty());
    CHECK(segcore::check_cookie_prefix("__Secure-id", a) == "cookie name \"__Secure-id\" needs the Secure flag");
    CHECK(segcore::check_cookie_prefix("__Host-id", a) == "cookie name \"__Host-id\" needs the Secure flag");
    a.flags |= segcore::kCookieSecure;
    CHECK(segcore::check_cookie_prefix("__Secure-id", a).empty());
    CHECK(segcore::check_cookie_prefix("__Host-id", a).empty());
    a.path = "/shop";
    CHECK(segcore::check_cookie_prefix("__Host-id", a) == "cookie name \"__Host-id\" needs path /");
    a.path = "/";
    a.domain = "example.com";
    CHECK(segcore::check_cookie_prefix("__Host-id", a) == "cookie name \"__Host-id\" must not have a domain");
    CHECK(segcore::check_cookie_prefix("__Secure-id", a).empty());
}

TEST_CASE("a response is shared-cacheable when its headers say so", "[cacheability]") {
    CHECK_FALSE(cacheable({}));
    CHECK(cacheable({"public"}));
    CHECK(cacheable({"Public, max-age=0"}));
    CHECK(cacheable({"s-maxage=60"}));
    CHECK(cacheable({"S-MaxAge=0"}));
    CHECK(cacheable({"max-age=3600"}));
    CHECK(cacheable({"max-age=\"60\""}));
    CHECK(cacheable({"no-cache", "max-age=60"}));  // several headers add up
    CHECK_FALSE(cacheable({"max-age=0"}));
    CHECK_FALSE(cacheable({"max-age=abc"}));
    CHECK_FALSE(cacheable({"no-cache"}));
    CHECK_FALSE(cacheable({"must-revalidate"}));
    // private and no-store win over everything
    CHECK_FALSE(cacheable({"public, max-age=60, private"}));
    CHECK_FALSE(cacheable({"max-age=60", "no-store"}));
    CHECK_FALSE(cacheable({"private=\"Set-Cookie\", max-age=60"}));
    CHECK_FALSE(cacheable({" No-Store "}, true));
    // Expires counts only without Cache-Control (which takes precedence)
    CHECK(cacheable({}, true));
    CHECK_FALSE(cacheable({"no-cache"}, true));
}

TEST_CASE("consent: explicit grant values only; Sec-GPC: 1 denies unless ignored", "[consent]") {
    using segcore::decide_consent;
    std::optional<std::string_view> none;
    CHECK(decide_consent(none, none, true) == Consent::granted);  // not configured
    for (std::string_view yes : {"1", "yes", "YES", "true", "True", "granted", "GRANTED"})
        CHECK(decide_consent(yes, none, true) == Consent::granted);
    for (std::string_view no : {"", "0", "no", "false", "denied", "2", " 1", "yes please", "necessary"})
        CHECK(decide_consent(no, none, true) == Consent::denied);

    CHECK(decide_consent(none, std::string_view("1"), true) == Consent::denied);
    CHECK(decide_consent(std::string_view("granted"), std::string_view("1"), true) == Consent::denied);
    CHECK(decide_consent(std::string_view("granted"), std::string_view("1"), false) == Consent::granted);
    CHECK(decide_consent(none, std::string_view("0"), true) == Consent::granted);
    CHECK(decide_consent(std::string_view("0"), std::string_view("1"), false) == Consent::denied);
    CHECK(segcore::to_string(Consent::granted) == "granted");
    CHECK(segcore::to_string(Consent::denied) == "denied");
}
