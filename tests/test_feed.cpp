// What the daemon checks before applying anything: its configuration, feed
// names, snapshot manifests, and detached signatures.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sync/config.h"
#include "sync/signature.h"
#include "sync/source.h"
#include "sync_fixture.h"

namespace {

using fixture::write_file;

std::string config_error(const std::string& path) {
    try {
        segsync::load_config(path);
    } catch (const segsync::ImportError& e) {
        return e.what();
    }
    return "(loaded)";
}

// An Ed25519 key pair as PEM files, made with OpenSSL.
std::pair<std::string, std::string> ed25519_keys(const std::string& dir) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    REQUIRE(key);
    std::string private_path = dir + "/ed25519.pem", public_path = dir + "/ed25519.pub";
    FILE* f = std::fopen(private_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    f = std::fopen(public_path.c_str(), "w");
    PEM_write_PUBKEY(f, key);
    std::fclose(f);
    EVP_PKEY_free(key);
    return {private_path, public_path};
}

std::string verify_error(const segsync::SignatureVerifier& verifier, const std::string& name,
                         const std::string& path, const std::string& signature) {
    try {
        verifier.verify(name, path, signature);
    } catch (const segsync::FeedError& e) {
        return e.what();
    }
    return "(valid)";
}

}  // namespace

TEST_CASE("a daemon config is read strictly, naming the offending field", "[config]") {
    fixture::TempDir tmp;
    std::string path = tmp.path() + "/segsync.json";
    write_file(path, R"({
      "db": "/var/lib/segedge", "keep": 3, "initial_map_size_mb": 64, "max_map_size_mb": 4096,
      "rfm": {"quiet_days": 30, "at_risk_days": 60, "lapsed_days": 200, "high_value_score": 5},
      "sources": [
        {"name": "drop", "type": "directory", "path": "/var/spool/segedge",
         "signature": {"hmac_sha256_keys": ["/etc/segedge/feed.key"]}},
        {"name": "cdn", "type": "http", "index": "https://cdn.example/segedge/index.txt",
         "poll_interval_ms": 10000, "retries": 5, "timeout_ms": 1000, "connect_timeout_ms": 500,
         "retry_delay_ms": 10, "ca_file": "/etc/ssl/private-ca.pem"}
      ]})");
    auto config = segsync::load_config(path);
    CHECK(config.db == "/var/lib/segedge");
    CHECK(config.keep == 3);
    CHECK(config.initial_map_size == 64u << 20);
    CHECK(config.max_map_size == std::size_t{4096} << 20);
    CHECK(config.rfm.quiet_days == 30);
    CHECK(config.rfm.high_value_score == 5);
    REQUIRE(config.sources.size() == 2);
    CHECK(config.sources[0].type == segsync::SourceType::directory);
    CHECK(config.sources[0].poll_interval_ms == 5000);
    CHECK(config.sources[0].signature.hmac_sha256 == std::vector<std::string>{"/etc/segedge/feed.key"});
    CHECK(config.sources[1].type == segsync::SourceType::http);
    CHECK(config.sources[1].index_url == "https://cdn.example/segedge/index.txt");
    CHECK(config.sources[1].retries == 5);
    CHECK(config.sources[1].signature.empty());

    auto [text, expected] = GENERATE(table<std::string, std::string>({
        {R"({"sources":[{"name":"a","type":"directory","path":"/x"}]})", "missing field \"db\""},
        {R"({"db":"/d","sources":[]})", "sources: must be a non-empty array"},
        {R"({"db":"/d","dbx":1,"sources":[{"name":"a","type":"directory","path":"/x"}]})", "unknown field \"dbx\""},
        {R"({"db":"/d","sources":[{"name":"a","type":"ftp","path":"/x"}]})", "sources[0].type: must be \"directory\" or \"http\""},
        {R"({"db":"/d","sources":[{"name":"A b","type":"directory","path":"/x"}]})", "sources[0].name: use 1..64"},
        {R"({"db":"/d","sources":[{"name":"a","type":"directory","path":"/x"},{"name":"a","type":"directory","path":"/y"}]})", "sources[1].name: duplicate source \"a\""},
        {R"({"db":"/d","sources":[{"name":"a","type":"http","index":"ftp://x/i"}]})", "sources[0].index: must be an http:// or https:// URL"},
        {R"({"db":"/d","sources":[{"name":"a","type":"directory","path":"/x","retries":2}]})", "sources[0].retries: is for http sources"},
        {R"({"db":"/d","sources":[{"name":"a","type":"directory","path":"/x","signature":{}}]})", "sources[0].signature: names no key file"},
        {R"({"db":"/d","keep":0,"sources":[{"name":"a","type":"directory","path":"/x"}]})", "keep: must be a whole number from 1"},
        {R"({"db":"/d","rfm":{"at_risk_days":400},"sources":[{"name":"a","type":"directory","path":"/x"}]})", "rfm: quiet_days and at_risk_days must not exceed lapsed_days"},
        {R"({"db":"/d","db":"/e","sources":[{"name":"a","type":"directory","path":"/x"}]})", "field \"db\" given twice"},
        {R"({"db":"/d",)", "invalid JSON"},
    }));
    write_file(path, text);
    CHECK_THAT(config_error(path), Catch::StartsWith(path + ": ") && Catch::Contains(expected));
}

TEST_CASE("feed names carry their kind; paths in manifests stay below their base", "[feed]") {
    CHECK(segsync::feed_kind("20240601T120000Z.snapshot.json") == segsync::FeedKind::snapshot);
    CHECK(segsync::feed_kind("0001.delta.ndjson") == segsync::FeedKind::delta);
    CHECK(segsync::feed_kind("a/b.orders.ndjson") == segsync::FeedKind::orders);
    CHECK_FALSE(segsync::feed_kind(".delta.ndjson"));
    CHECK_FALSE(segsync::feed_kind("x.delta.ndjson.sig"));
    CHECK_FALSE(segsync::feed_kind("profiles.ndjson"));
    CHECK(segsync::is_safe_relative("a/b.ndjson"));
    for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a?b", "a/", "a\nb"})
        CHECK_FALSE(segsync::is_safe_relative(bad));
}

TEST_CASE("HMAC-SHA256 signatures bind the feed's name to its content", "[signature]") {
    fixture::TempDir tmp;
    std::string key = write_file(tmp.path() + "/feed.key", std::string(64, 'a') + "\n");
    std::string other = write_file(tmp.path() + "/other.key", std::string(64, 'b'));
    std::string feed = write_file(tmp.path() + "/1.delta.ndjson", "{\"op\":\"delete\"}\n");
    std::string sig = write_file(feed + ".sig", segsync::sign_feed(key, "1.delta.ndjson", feed) + "\n");

    segsync::SignatureVerifier verifier({{key}, {}});
    CHECK(verify_error(verifier, "1.delta.ndjson", feed, sig) == "(valid)");
    segsync::SignatureVerifier rotated({{other, key}, {}});  // any configured key will do
    CHECK(verify_error(rotated, "1.delta.ndjson", feed, sig) == "(valid)");

    segsync::SignatureVerifier wrong_key({{other}, {}});
    CHECK_THAT(verify_error(wrong_key, "1.delta.ndjson", feed, sig), Catch::Contains("bad signature"));
    CHECK_THAT(verify_error(verifier, "2.delta.ndjson", feed, sig), Catch::Contains("bad signature"));
    write_file(feed, "{\"op\":\"delete\"} \n");
    CHECK_THAT(verify_error(verifier, "1.delta.ndjson", feed, sig), Catch::Contains("bad signature"));
    write_file(sig, "not a signature");
    CHECK_THAT(verify_error(verifier, "1.delta.ndjson", feed, sig), Catch::Contains("not a signature"));

    write_file(key, "abcd");
    CHECK_THROWS_WITH(segsync::SignatureVerifier({{key}, {}}), Catch::Contains("at least 32 bytes"));
}

TEST_CASE("Ed25519 signatures made with the private key verify with the public one", "[signature]") {
    fixture::TempDir tmp;
    auto [private_key, public_key] = ed25519_keys(tmp.path());
    std::string feed = write_file(tmp.path() + "/x.orders.ndjson", "{}\n");
    std::string hex = segsync::sign_feed(private_key, "x.orders.ndjson", feed);
    CHECK(hex.size() == 128);
    // openssl writes raw bytes; both forms are accepted.
    std::string raw;
    for (std::size_t i = 0; i < hex.size(); i += 2) raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    segsync::SignatureVerifier verifier({{}, {public_key}});
    for (const auto& form : {hex, raw}) {
        std::string sig = write_file(feed + ".sig", form);
        CHECK(verify_error(verifier, "x.orders.ndjson", feed, sig) == "(valid)");
        CHECK_THAT(verify_error(verifier, "y.orders.ndjson", feed, sig), Catch::Contains("bad signature"));
    }
    CHECK_THROWS_WITH(segsync::SignatureVerifier({{}, {private_key}}), Catch::Contains("not an Ed25519 public key"));
}

TEST_CASE("fetching a snapshot checks its manifest, checksums and signature", "[feed]") {
    fixture::TempDir tmp;
    std::string drop = tmp.path() + "/drop";
    std::string segments = write_file(drop + "/s1/segments.ndjson", "{\"name\":\"vip\"}\n");
    write_file(drop + "/s1/profiles.ndjson", "");
    std::string key = write_file(tmp.path() + "/feed.key", std::string(64, '7'));
    segsync::SourceConfig config;
    config.name = "drop";
    config.path = drop;
    auto source = segsync::make_directory_source(config);
    segsync::SignatureVerifier verifier({{key}, {}});
    std::string segments_sha = segsync::sha256_file(segments);
    std::string empty_sha = segsync::sha256_file(drop + "/s1/profiles.ndjson");

    auto fetch = [&](const std::string& manifest, bool sign) -> std::string {
        std::string path = write_file(drop + "/1.snapshot.json", manifest);
        if (sign) write_file(path + ".sig", segsync::sign_feed(key, "1.snapshot.json", path));
        segsync::FetchedFeed feed;
        try {
            segsync::fetch_feed(*source, "1.snapshot.json", sign ? &verifier : nullptr, feed);
        } catch (const segsync::FeedError& e) {
            return e.what();
        }
        CHECK(feed.files.at("segments") == segments);
        CHECK(feed.involved == std::vector<std::string>{"1.snapshot.json", "1.snapshot.json.sig",
                                                        "s1/profiles.ndjson", "s1/segments.ndjson"});
        return "(fetched)";
    };
    std::string pinned = R"({"segments":{"file":"s1/segments.ndjson","sha256":")" + segments_sha +
                         R"("},"profiles":{"file":"s1/profiles.ndjson","sha256":")" + empty_sha + "\"}}";
    CHECK(fetch(pinned, true) == "(fetched)");
    CHECK_THAT(fetch(R"({"segments":{"file":"s1/segments.ndjson"},"profiles":{"file":"s1/profiles.ndjson"}})", true),
               Catch::Contains("has no sha256, so its signature would not cover it"));
    CHECK_THAT(fetch(R"({"segments":{"file":"s1/segments.ndjson","sha256":")" + empty_sha +
                     R"("},"profiles":{"file":"s1/profiles.ndjson","sha256":")" + empty_sha + "\"}}", true),
               Catch::Contains("s1/segments.ndjson does not match its sha256"));
    CHECK_THAT(fetch(R"({"segments":{"file":"s1/segments.ndjson"}})", false), Catch::Contains("missing \"profiles\""));
    CHECK_THAT(fetch(R"({"segments":{"file":"s1/segments.ndjson","sha256":1e999}})", false),
               Catch::Contains("1.snapshot.json: invalid JSON: a number is out of range"));
    CHECK_THAT(fetch(std::string(R"({"segments":{"file":"s1/segments.ndjson"}})") + '\0' + "junk", false),
               Catch::Contains("1.snapshot.json: invalid JSON: a NUL byte"));
    CHECK_THAT(fetch(R"({"segments":{"file":"../segments.ndjson"},"profiles":{"file":"p"}})", false),
               Catch::Contains("not a relative path below the manifest"));
    CHECK_THAT(fetch(R"({"segments":{"file":"s1/segments.ndjson"},"profiles":{"file":"s1/profiles.ndjson"},"aliases":{"file":"a"}})", false),
               Catch::Contains("unknown key \"aliases\""));
    CHECK_THAT(fetch(R"({"segments":{"file":"s1/segments.ndjson"},"profiles":{"file":"s1/nope.ndjson"}})", false),
               Catch::Contains("missing " + drop + "/s1/nope.ndjson"));
    std::remove((drop + "/1.snapshot.json.sig").c_str());
    segsync::FetchedFeed feed;
    CHECK_THROWS_WITH(segsync::fetch_feed(*source, "1.snapshot.json", &verifier, feed),
                      Catch::Contains("missing " + drop + "/1.snapshot.json.sig"));
}

TEST_CASE("a snapshot manifest may name blocks and experiments files, which become --blocks and --experiments",
          "[feed][blocks][experiments]") {
    fixture::TempDir tmp;
    std::string drop = tmp.path() + "/drop";
    write_file(drop + "/s1/segments.ndjson", "{\"name\":\"vip\"}\n");
    write_file(drop + "/s1/profiles.ndjson", "");
    std::string blocks = write_file(drop + "/s1/blocks.ndjson", "{\"block\":\"hero\",\"segment\":\"vip\",\"html\":\"x\"}\n");
    std::string experiments = write_file(drop + "/s1/experiments.ndjson", "");
    write_file(drop + "/1.snapshot.json", R"({"segments":{"file":"s1/segments.ndjson"},"profiles":{"file":"s1/profiles.ndjson"},)"
                                          R"("blocks":{"file":"s1/blocks.ndjson"},"experiments":{"file":"s1/experiments.ndjson"}})");
    segsync::SourceConfig config;
    config.name = "drop";
    config.path = drop;
    auto source = segsync::make_directory_source(config);
    segsync::FetchedFeed feed;
    segsync::fetch_feed(*source, "1.snapshot.json", nullptr, feed);
    segsync::ImportOptions options;
    segsync::set_snapshot_files(feed, options);
    CHECK(options.blocks_path == blocks);
    CHECK(options.experiments_path == experiments);
}

TEST_CASE("the example config in conf/ loads", "[config]") {
    auto binary = fixture::segsync_binary();
    if (binary.empty()) return;
    auto config = segsync::load_config(std::filesystem::path(binary).parent_path().parent_path() / "conf/segsync.json");
    CHECK(config.sources.size() == 2);
}
