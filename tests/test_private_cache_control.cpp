#include <catch2/catch.hpp>

#include <string>

#include "segcore/cacheability.h"

namespace {

std::string make_private(const std::string& original) {
    std::string out(segcore::private_cache_control_capacity(original.size()), '\0');
    out.resize(segcore::private_cache_control(original, out.data()));
    return out;
}

}  // namespace

TEST_CASE("personalised responses become private, keeping what a browser cache obeys", "[cacheability]") {
    CHECK(make_private("") == "private");
    CHECK(make_private("public, max-age=600") == "private, max-age=600");
    CHECK(make_private("max-age=60, s-maxage=3600, PUBLIC, proxy-revalidate") == "private, max-age=60");
    CHECK(make_private("no-store") == "private, no-store");
    CHECK(make_private("no-cache, must-revalidate,  max-age=0 ") == "private, no-cache, must-revalidate, max-age=0");
    CHECK(make_private("private, max-age=5") == "private, max-age=5");
    CHECK(make_private("private=\"Set-Cookie\", immutable") == "private, immutable");
    CHECK(make_private("no-cache=\"Set-Cookie, X-Seg\", public") == "private, no-cache=\"Set-Cookie, X-Seg\"");
    CHECK(make_private(",,, ,") == "private");
}

TEST_CASE("the capacity bound holds for the densest input", "[cacheability]") {
    std::string dense = "a";
    for (int i = 0; i < 200; ++i) dense += ",a";
    std::string out = make_private(dense);
    CHECK(out.size() <= segcore::private_cache_control_capacity(dense.size()));
    CHECK(out.size() == 7 + 201 * 3);
}
