#include "sync/status.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "segcore/layout.h"
#include "segcore/metrics.h"
#include "segcore/snapshot.h"
#include "sync/error.h"

namespace segsync {

// Missing fields read as their defaults, so an older status file still reads.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SourceStatus, name, type, location, last_feed,
                                                last_applied_at, last_error, last_error_at,
                                                last_poll_at, caught_up_at, pending, applied, rejected,
                                                failures)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DaemonStatus, pid, started_at, updated_at,
                                                generation, last_success, last_success_at,
                                                last_error, last_error_at, snapshot_bytes, sources)

namespace {

using nlohmann::json;


// Temp file + rename(2).
void replace_file(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << text;
        if (!out) throw system_error("cannot write " + tmp);
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) throw system_error("rename " + tmp);
}

// One family with a sample per source.
template <typename F>
void per_source(segcore::metrics::Exposition& out, const DaemonStatus& status,
                const segcore::metrics::Family& family, F&& value) {
    out.family(family);
    for (const auto& s : status.sources) out.sample(family.name, value(s), "source", s.name);
}

bool alive(long pid) { return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

std::string utc_time(std::int64_t t) {
    if (t <= 0) return "never";
    std::time_t seconds = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string status_path(const std::string& root) { return root + "/.segsync-status.json"; }

std::string metrics_path(const std::string& root) { return root + "/.segsync-metrics.prom"; }

void write_status(const std::string& root, const DaemonStatus& status) {
    replace_file(status_path(root), json(status).dump(2) + '\n');
    replace_file(metrics_path(root), render_metrics(status, status.updated_at));
}

std::string render_metrics(const DaemonStatus& s, std::int64_t now) {
    segcore::metrics::Exposition out;
    out.single({"segsync_status_updated_seconds", "gauge", "When the daemon last wrote its status (unix time)."},
               s.updated_at);
    out.single({"segsync_generation", "gauge", "Generation of the live snapshot."}, s.generation);
    out.single({"segsync_snapshot_bytes", "gauge", "Size of the live snapshot's data.mdb."}, s.snapshot_bytes);
    out.single({"segsync_last_success_seconds", "gauge", "When a feed was last applied (unix time, 0: never)."},
               s.last_success_at);
    out.single({"segsync_last_error_seconds", "gauge",
                "When a feed last failed or was rejected (unix time, 0: never)."}, s.last_error_at);
    per_source(out, s, {"segsync_feeds_applied_total", "counter", "Feeds applied since the daemon started."},
               [](const SourceStatus& x) { return x.applied; });
    per_source(out, s, {"segsync_feeds_rejected_total", "counter", "Feeds rejected as bad input since the daemon started."},
               [](const SourceStatus& x) { return x.rejected; });
    per_source(out, s, {"segsync_feed_failures_total", "counter", "Feed attempts that failed and are retried."},
               [](const SourceStatus& x) { return x.failures; });
    per_source(out, s, {"segsync_source_last_success_seconds", "gauge",
                        "When a feed of the source was last applied (unix time, 0: never)."},
               [](const SourceStatus& x) { return x.last_applied_at; });
    per_source(out, s, {"segsync_source_pending_feeds", "gauge", "Feeds seen but not applied yet."},
               [](const SourceStatus& x) { return x.pending; });
    per_source(out, s, {"segsync_source_caught_up_seconds", "gauge",
                        "Last poll that left nothing to apply (unix time, 0: never)."},
               [](const SourceStatus& x) { return x.caught_up_at; });
    per_source(out, s, {"segsync_source_lag_seconds", "gauge",
                        "Seconds since the source was last caught up, as of the write (-1: never)."},
               [now](const SourceStatus& x) { return x.caught_up_at ? now - x.caught_up_at : std::int64_t{-1}; });
    return out.text();
}

std::optional<DaemonStatus> read_status(const std::string& root) {
    std::ifstream in(status_path(root));
    if (!in) return std::nullopt;
    try {
        return json::parse(in).get<DaemonStatus>();
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

int print_status(const std::string& root, bool as_json, std::ostream& out) {
    std::int64_t now = std::time(nullptr);
    std::optional<segcore::SnapshotMeta> meta;
    std::uint64_t generation = 0;
    std::string db_error;
    try {
        segcore::Snapshot snapshot(segcore::layout::current_link(root));
        meta = snapshot.meta();
        generation = snapshot.generation();
    } catch (const std::exception& e) {
        db_error = e.what();
    }
    auto status = read_status(root);
    bool running = status && alive(status->pid);
    if (as_json) {
        json j = status ? json(*status) : json::object();
        j["running"] = running;
        j["generation"] = generation;
        if (!db_error.empty()) j["db_error"] = db_error;
        if (status)
            for (std::size_t i = 0; i < status->sources.size(); ++i)
                j["sources"][i]["lag_seconds"] =
                    status->sources[i].caught_up_at ? now - status->sources[i].caught_up_at : -1;
        out << j.dump(2) << '\n';
        return meta ? 0 : 1;
    }
    if (meta)
        out << "generation:   " << generation << " (snapshot built " << utc_time(static_cast<std::int64_t>(meta->built_at))
            << " from " << meta->source << ")\n";
    else
        out << "generation:   none (" << db_error << ")\n";
    if (!status) {
        out << "daemon:       no status file (" << status_path(root) << ")\n";
        return meta ? 0 : 1;
    }
    out << "daemon:       " << (running ? "running" : "not running") << ", pid " << status->pid
        << ", started " << utc_time(status->started_at) << ", status written " << utc_time(status->updated_at) << "\n";
    out << "snapshot:     " << status->snapshot_bytes << " bytes\n";
    out << "last success: " << (status->last_success.empty() ? "none" : status->last_success + " at " + utc_time(status->last_success_at)) << "\n";
    out << "last error:   " << (status->last_error.empty() ? "none" : status->last_error + " at " + utc_time(status->last_error_at)) << "\n";
    for (const auto& s : status->sources) {
        out << "source " << s.name << " (" << s.type << " " << s.location << "): last feed "
            << (s.last_feed.empty() ? "none" : s.last_feed) << ", pending " << s.pending << ", applied "
            << s.applied << ", rejected " << s.rejected << ", failed " << s.failures << ", lag "
            << (s.caught_up_at ? std::to_string(now - s.caught_up_at) + "s" : "unknown")
            << ", last poll " << utc_time(s.last_poll_at);
        if (!s.last_error.empty()) out << ", last error " << s.last_error << " at " << utc_time(s.last_error_at);
        out << "\n";
    }
    return meta ? 0 : 1;
}

}  // namespace segsync
