#include <catch2/catch.hpp>

#include <string>

#include "segcore/cookie.h"

using segcore::find_cookie;

TEST_CASE("find_cookie picks the named cookie out of a header", "[cookie]") {
    CHECK(find_cookie("a=1; segedge_id=abc; b=2", "segedge_id") == std::string_view("abc"));
    CHECK(find_cookie("segedge_id=abc", "segedge_id") == std::string_view("abc"));
    CHECK_FALSE(find_cookie("a=1; b=2", "segedge_id"));
}

TEST_CASE("find_cookie tolerates whitespace the way browsers and proxies send it", "[cookie]") {
    CHECK(find_cookie("a=1;segedge_id=abc;b=2", "segedge_id") == std::string_view("abc"));
    CHECK(find_cookie("a=1;   segedge_id = abc  ; b=2", "segedge_id") == std::string_view("abc"));
    CHECK(find_cookie("\tsegedge_id=abc\t", "segedge_id") == std::string_view("abc"));
}

TEST_CASE("find_cookie removes one pair of surrounding quotes", "[cookie]") {
    CHECK(find_cookie("segedge_id=\"abc\"", "segedge_id") == std::string_view("abc"));
    CHECK(find_cookie("segedge_id=\"\"", "segedge_id") == std::string_view(""));
    CHECK(find_cookie("segedge_id=\"abc", "segedge_id") == std::string_view("\"abc"));
    CHECK(find_cookie("segedge_id=\"", "segedge_id") == std::string_view("\""));
}

TEST_CASE("find_cookie reports a present but empty value as empty", "[cookie]") {
    auto value = find_cookie("segedge_id=; b=2", "segedge_id");
    REQUIRE(value);
    CHECK(value->empty());
}

TEST_CASE("find_cookie returns the first of duplicate names", "[cookie]") {
    CHECK(find_cookie("segedge_id=first; segedge_id=second", "segedge_id") ==
          std::string_view("first"));
}

TEST_CASE("find_cookie matches names case-sensitively", "[cookie]") {
    CHECK_FALSE(find_cookie("SEGEDGE_ID=abc", "segedge_id"));
    CHECK(find_cookie("Segedge_Id=x; segedge_id=y", "segedge_id") == std::string_view("y"));
}

TEST_CASE("find_cookie keeps '=' inside values and skips pairs without '='", "[cookie]") {
    CHECK(find_cookie("t=a=b==; segedge_id=x=y", "segedge_id") == std::string_view("x=y"));
    CHECK(find_cookie("segedge_id; segedge_id=v", "segedge_id") == std::string_view("v"));
    CHECK_FALSE(find_cookie(";;;;", "segedge_id"));
}

TEST_CASE("find_cookie does not match a name that only ends like the wanted one", "[cookie]") {
    CHECK_FALSE(find_cookie("xsegedge_id=abc", "segedge_id"));
    CHECK_FALSE(find_cookie("segedge_id_old=abc", "segedge_id"));
}

TEST_CASE("find_cookie handles empty and 64 KB headers", "[cookie]") {
    CHECK_FALSE(find_cookie("", "segedge_id"));

    std::string big;
    while (big.size() < 64 * 1024) big += "filler" + std::to_string(big.size()) + "=xxxxxxxxxx; ";
    CHECK_FALSE(find_cookie(big, "segedge_id"));
    CHECK(find_cookie(big + "segedge_id=late", "segedge_id") == std::string_view("late"));

    std::string huge_value = "segedge_id=" + std::string(64 * 1024, 'v');
    auto value = find_cookie(huge_value, "segedge_id");
    REQUIRE(value);
    CHECK(value->size() == 64 * 1024);
}

TEST_CASE("is_cookie_name follows the RFC 6265 token rule", "[cookie]") {
    CHECK(segcore::is_cookie_name("segedge_id"));
    CHECK(segcore::is_cookie_name("__Host-sid"));
    CHECK_FALSE(segcore::is_cookie_name(""));
    CHECK_FALSE(segcore::is_cookie_name("bad;name"));
    CHECK_FALSE(segcore::is_cookie_name("a b"));
    CHECK_FALSE(segcore::is_cookie_name("a=b"));
    CHECK_FALSE(segcore::is_cookie_name("caf\xc3\xa9"));
}
