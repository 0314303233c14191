// The daemon's state for operators: written to DB/.segsync-status.json
// (atomically, after every event) and shown by `segsync status`.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace segsync {

struct SourceStatus {
    std::string name;
    std::string type;      // directory | http
    std::string location;  // path or index URL
    std::string last_feed;           // last applied or rejected
    std::int64_t last_applied_at = 0;
    std::string last_error;
    std::int64_t last_error_at = 0;
    std::int64_t last_poll_at = 0;
    std::int64_t caught_up_at = 0;   // last poll that left nothing to apply
    std::size_t pending = 0;         // feeds seen but not applied yet
    std::uint64_t applied = 0;       // feeds applied by this daemon process
    std::uint64_t rejected = 0;      // feeds rejected as bad input
    std::uint64_t failures = 0;      // attempts that failed and will be retried
};

struct DaemonStatus {
    long pid = 0;
    std::int64_t started_at = 0;
    std::int64_t updated_at = 0;
    std::uint64_t generation = 0;
    std::string last_success;  // "source feed"
    std::int64_t last_success_at = 0;
    std::string last_error;    // "source feed: message"
    std::int64_t last_error_at = 0;
    std::uint64_t snapshot_bytes = 0;  // the live snapshot's data.mdb
    std::vector<SourceStatus> sources;
};

// "2024-05-01T12:00:00Z", or "never" for 0.
std::string utc_time(std::int64_t unix_seconds);

std::string status_path(const std::string& root);
// DB/.segsync-metrics.prom, for node_exporter's textfile collector.
std::string metrics_path(const std::string& root);
// Both files, each by temp file + rename(2): a reader never sees half a file.
void write_status(const std::string& root, const DaemonStatus& status);
// The status as Prometheus text exposition format, lag as of `now`.
std::string render_metrics(const DaemonStatus& status, std::int64_t now);
std::optional<DaemonStatus> read_status(const std::string& root);

// `segsync status`: the current generation (read from the database) and
// what the daemon last wrote, with lag per source. Returns the exit status:
// 0, or 1 when there is no database.
int print_status(const std::string& root, bool as_json, std::ostream& out);

}  // namespace segsync
