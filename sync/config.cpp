#include "sync/config.h"

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sync/error.h"
#include "sync/validate.h"

namespace segsync {
namespace {

using nlohmann::json;

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr unsigned kDefaultDirectoryPollMs = 5000;
constexpr unsigned kDefaultHttpPollMs = 30000;

class ConfigReader {
public:
    explicit ConfigReader(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(const std::string& field, const std::string& message) const {
        throw ImportError(file_ + ": " + (field.empty() ? "" : field + ": ") + message);
    }

    void check_fields(const json& object, const std::string& at,
                      std::initializer_list<std::string_view> allowed) const {
        if (!object.is_object()) fail(at, std::string("must be an object, got ") + object.type_name());
        for (const auto& item : object.items()) {
            if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
            std::string names;
            for (auto name : allowed) names += (names.empty() ? "" : ", ") + std::string(name);
            fail(at, "unknown field " + quote(item.key()) + " (allowed: " + names + ")");
        }
    }

    std::string text(const json& object, const std::string& at, const char* name, bool needed) const {
        auto it = object.find(name);
        if (it == object.end()) {
            if (needed) fail(at, std::string("missing field \"") + name + "\"");
            return {};
        }
        if (!it->is_string() || it->get_ref<const std::string&>().empty())
            fail(join(at, name), "must be a non-empty string");
        return it->get<std::string>();
    }

    std::uint64_t number(const json& object, const std::string& at, const char* name,
                         std::uint64_t fallback, std::uint64_t min, std::uint64_t max) const {
        auto it = object.find(name);
        if (it == object.end()) return fallback;
        if (!it->is_number_unsigned() || it->get<std::uint64_t>() < min || it->get<std::uint64_t>() > max)
            fail(join(at, name), "must be a whole number from " + std::to_string(min) + " to " +
                                     std::to_string(max) + ", got " + it->dump());
        return it->get<std::uint64_t>();
    }

    std::vector<std::string> files(const json& object, const std::string& at, const char* name) const {
        std::vector<std::string> out;
        auto it = object.find(name);
        if (it == object.end()) return out;
        if (!it->is_array()) fail(join(at, name), "must be an array of file names");
        for (const auto& item : *it) {
            if (!item.is_string() || item.get_ref<const std::string&>().empty())
                fail(join(at, name), "must be an array of file names");
            out.push_back(item.get<std::string>());
        }
        return out;
    }

    static std::string join(const std::string& at, const std::string& name) {
        return at.empty() ? name : at + "." + name;
    }

private:
    std::string file_;
};

json parse_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw system_error(path + ": cannot open");
    std::stringstream text;
    text << in.rdbuf();
    std::string repeated;
    // A key given twice would silently keep the last value.
    std::vector<std::set<std::string>> keys(1);
    auto watch = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
            keys.resize(static_cast<std::size_t>(depth) + 2);
            keys[static_cast<std::size_t>(depth) + 1].clear();
        } else if (event == json::parse_event_t::key &&
                   !keys[static_cast<std::size_t>(depth)].insert(parsed.get<std::string>()).second) {
            repeated = parsed.get<std::string>();
        }
        return true;
    };
    try {
        json value = json::parse(text.str(), watch);
        if (!repeated.empty()) throw ImportError(path + ": field " + quote(repeated) + " given twice");
        return value;
    } catch (const json::parse_error& e) {
        throw ImportError(path + ": invalid JSON: " + e.what());
    }
}

SignatureKeys signature_keys(const ConfigReader& r, const json& source, const std::string& at) {
    SignatureKeys keys;
    auto it = source.find("signature");
    if (it == source.end()) return keys;
    std::string here = ConfigReader::join(at, "signature");
    r.check_fields(*it, here, {"hmac_sha256_keys", "ed25519_public_keys"});
    keys.hmac_sha256 = r.files(*it, here, "hmac_sha256_keys");
    keys.ed25519 = r.files(*it, here, "ed25519_public_keys");
    if (keys.empty()) r.fail(here, "names no key file: leave it out to accept unsigned feeds");
    return keys;
}

SourceConfig source_config(const ConfigReader& r, const json& item, const std::string& at) {
    r.check_fields(item, at, {"name", "type", "path", "index", "ca_file", "poll_interval_ms",
                              "connect_timeout_ms", "timeout_ms", "retries", "retry_delay_ms",
                              "signature"});
    SourceConfig source;
    source.name = r.text(item, at, "name", true);
    if (!segcore::schema::is_valid_segment_name(source.name))
        r.fail(ConfigReader::join(at, "name"), "use 1..64 characters of a-z, 0-9, _ and -");
    std::string type = r.text(item, at, "type", true);
    if (type == "directory") {
        source.type = SourceType::directory;
        source.path = r.text(item, at, "path", true);
        for (const char* http_only : {"index", "ca_file", "connect_timeout_ms", "timeout_ms", "retries", "retry_delay_ms"})
            if (item.contains(http_only)) r.fail(ConfigReader::join(at, http_only), "is for http sources");
    } else if (type == "http") {
        source.type = SourceType::http;
        source.index_url = r.text(item, at, "index", true);
        if (source.index_url.rfind("http://", 0) != 0 && source.index_url.rfind("https://", 0) != 0)
            r.fail(ConfigReader::join(at, "index"), "must be an http:// or https:// URL");
        if (item.contains("path")) r.fail(ConfigReader::join(at, "path"), "is for directory sources");
        source.ca_file = r.text(item, at, "ca_file", false);
        source.connect_timeout_ms = static_cast<unsigned>(r.number(item, at, "connect_timeout_ms", 10000, 1, 600000));
        source.timeout_ms = static_cast<unsigned>(r.number(item, at, "timeout_ms", 600000, 1, 86400000));
        source.retries = static_cast<unsigned>(r.number(item, at, "retries", 3, 0, 100));
        source.retry_delay_ms = static_cast<unsigned>(r.number(item, at, "retry_delay_ms", 1000, 0, 600000));
    } else {
        r.fail(ConfigReader::join(at, "type"), "must be \"directory\" or \"http\", got " + quote(type));
    }
    unsigned poll_default = source.type == SourceType::http ? kDefaultHttpPollMs : kDefaultDirectoryPollMs;
    source.poll_interval_ms = static_cast<unsigned>(r.number(item, at, "poll_interval_ms", poll_default, 10, 86400000));
    source.signature = signature_keys(r, item, at);
    return source;
}

RfmThresholds rfm_config(const ConfigReader& r, const json& config) {
    RfmThresholds rfm;
    auto it = config.find("rfm");
    if (it == config.end()) return rfm;
    r.check_fields(*it, "rfm", {"quiet_days", "at_risk_days", "lapsed_days", "high_value_score"});
    rfm.quiet_days = static_cast<unsigned>(r.number(*it, "rfm", "quiet_days", rfm.quiet_days, 0, 36500));
    rfm.at_risk_days = static_cast<unsigned>(r.number(*it, "rfm", "at_risk_days", rfm.at_risk_days, 0, 36500));
    rfm.lapsed_days = static_cast<unsigned>(r.number(*it, "rfm", "lapsed_days", rfm.lapsed_days, 0, 36500));
    rfm.high_value_score = static_cast<unsigned>(r.number(*it, "rfm", "high_value_score", rfm.high_value_score, 1, 5));
    if (rfm.at_risk_days > rfm.lapsed_days || rfm.quiet_days > rfm.lapsed_days)
        r.fail("rfm", "quiet_days and at_risk_days must not exceed lapsed_days");
    return rfm;
}

}  // namespace

DaemonConfig load_config(const std::string& path) {
    ConfigReader r(path);
    json config = parse_file(path);
    r.check_fields(config, "", {"db", "keep", "initial_map_size_mb", "max_map_size_mb", "rfm", "sources"});
    DaemonConfig out;
    out.db = r.text(config, "", "db", true);
    out.keep = static_cast<unsigned>(r.number(config, "", "keep", 2, 1, 1000));
    out.initial_map_size = r.number(config, "", "initial_map_size_mb", 0, 1, 1 << 24) * kMiB;
    out.max_map_size = r.number(config, "", "max_map_size_mb", 0, 1, 1 << 26) * kMiB;
    if (out.max_map_size && out.initial_map_size > out.max_map_size)
        r.fail("initial_map_size_mb", "is larger than max_map_size_mb");
    out.rfm = rfm_config(r, config);
    auto sources = config.find("sources");
    if (sources == config.end() || !sources->is_array() || sources->empty())
        r.fail("sources", "must be a non-empty array of sources");
    std::set<std::string> names;
    for (std::size_t i = 0; i < sources->size(); ++i) {
        std::string at = "sources[" + std::to_string(i) + "]";
        SourceConfig source = source_config(r, (*sources)[i], at);
        if (!names.insert(source.name).second) r.fail(at + ".name", "duplicate source " + quote(source.name));
        out.sources.push_back(std::move(source));
    }
    return out;
}

}  // namespace segsync
