// Feed names, snapshot manifests and fetch_feed: what every source shares.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sync/source.h"

namespace segsync {
namespace {

using nlohmann::json;

struct Suffix {
    std::string_view text;
    FeedKind kind;
};

constexpr Suffix kSuffixes[] = {
    {".snapshot.json", FeedKind::snapshot},
    {".delta.ndjson", FeedKind::delta},
    {".orders.ndjson", FeedKind::orders},
};

// The files a snapshot manifest may name, each the file of one `segsync
// import` option. New kinds of snapshot data (aliases, blocks, experiments)
// slot in here by name, one line each.
struct ManifestKey {
    std::string_view key;
    bool required;
    std::string ImportOptions::*path;
};

const ManifestKey kManifestKeys[] = {
    {"segments", true, &ImportOptions::segments_path},
    {"profiles", true, &ImportOptions::profiles_path},
    {"orders", false, &ImportOptions::orders_path},
    {"blocks", false, &ImportOptions::blocks_path},
    {"experiments", false, &ImportOptions::experiments_path},
};

struct ManifestEntry {
    std::string file;
    std::string sha256;  // empty when not given
};

bool is_sha256_hex(const std::string& text) {
    if (text.size() != 64) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::map<std::string, ManifestEntry> parse_manifest(const std::string& name, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    // nlohmann takes a NUL byte for the end of the text (see NdjsonReader).
    if (text.str().find('\0') != std::string::npos)
        throw FeedError(name + ": invalid JSON: a NUL byte");
    json manifest;
    try {
        manifest = json::parse(text.str());
    } catch (const json::parse_error& e) {
        throw FeedError(name + ": invalid JSON: " + e.what());
    } catch (const json::out_of_range&) {  // 1e999: no double holds it
        throw FeedError(name + ": invalid JSON: a number is out of range");
    }
    if (!manifest.is_object()) throw FeedError(name + ": a manifest is a JSON object");
    std::map<std::string, ManifestEntry> entries;
    for (const auto& item : manifest.items()) {
        auto known = std::find_if(std::begin(kManifestKeys), std::end(kManifestKeys),
                                  [&](const auto& k) { return k.key == item.key(); });
        if (known == std::end(kManifestKeys))
            throw FeedError(name + ": unknown key " + quote(item.key()) +
                            " (this segsync reads segments, profiles, orders, blocks and experiments)");
        const json& entry = item.value();
        if (!entry.is_object() || !entry.contains("file") || !entry["file"].is_string() ||
            entry.size() > 2 || (entry.size() == 2 && !entry.contains("sha256")))
            throw FeedError(name + ": " + quote(item.key()) +
                            " must be {\"file\": \"...\", \"sha256\": \"...\"} (sha256 optional)");
        ManifestEntry out{entry["file"].get<std::string>(), {}};
        if (!is_safe_relative(out.file))
            throw FeedError(name + ": " + quote(item.key()) + " names " + quote(out.file) +
                            ", which is not a relative path below the manifest");
        if (entry.contains("sha256")) {
            if (!entry["sha256"].is_string() || !is_sha256_hex(entry["sha256"].get<std::string>()))
                throw FeedError(name + ": " + quote(item.key()) + ".sha256 must be 64 lowercase hex digits");
            out.sha256 = entry["sha256"].get<std::string>();
        }
        entries.emplace(item.key(), std::move(out));
    }
    for (const auto& known : kManifestKeys)
        if (known.required && !entries.count(std::string(known.key)))
            throw FeedError(name + ": missing " + quote(known.key));
    return entries;
}

// "dir/x.snapshot.json" names "a/b.ndjson" as "dir/a/b.ndjson".
std::string beside(const std::string& name, const std::string& file) {
    std::size_t slash = name.rfind('/');
    return slash == std::string::npos ? file : name.substr(0, slash + 1) + file;
}

}  // namespace

std::optional<FeedKind> feed_kind(std::string_view name) {
    for (const auto& suffix : kSuffixes)
        if (name.size() > suffix.text.size() &&
            name.substr(name.size() - suffix.text.size()) == suffix.text)
            return suffix.kind;
    return std::nullopt;
}

std::string_view to_string(FeedKind kind) {
    switch (kind) {
    case FeedKind::snapshot: return "snapshot";
    case FeedKind::delta: return "delta";
    case FeedKind::orders: return "orders";
    }
    return "?";
}

bool is_safe_relative(std::string_view path) {
    if (path.empty() || path.front() == '/' || path.back() == '/') return false;
    for (char c : path)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\' || c == '?' || c == '#')
            return false;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        std::string_view segment = path.substr(start, end - start);
        if (segment.empty() || segment == "." || segment == "..") return false;
        start = end + 1;
    }
    return true;
}

void fetch_feed(Source& source, const std::string& name, const SignatureVerifier* verifier,
                FetchedFeed& feed) {
    feed.name = name;
    feed.kind = *feed_kind(name);
    feed.path = source.local_copy(name);
    feed.involved.push_back(name);
    if (verifier) {
        std::string signature = source.local_copy(name + ".sig");
        feed.involved.push_back(name + ".sig");
        verifier->verify(name, feed.path, signature);
    }
    if (feed.kind != FeedKind::snapshot) return;
    for (const auto& [key, entry] : parse_manifest(name, feed.path)) {
        if (verifier && entry.sha256.empty())
            throw FeedError(name + ": " + quote(key) +
                            " has no sha256, so its signature would not cover it");
        std::string relative = beside(name, entry.file);
        std::string local = source.local_copy(relative);
        feed.involved.push_back(relative);
        if (!entry.sha256.empty() && sha256_file(local) != entry.sha256)
            throw FeedError(name + ": " + relative + " does not match its sha256");
        feed.files.emplace(key, local);
    }
}

void set_snapshot_files(const FetchedFeed& feed, ImportOptions& options) {
    for (const auto& known : kManifestKeys) {
        auto file = feed.files.find(std::string(known.key));
        if (file != feed.files.end()) options.*known.path = file->second;
    }
}

}  // namespace segsync
