#include "sync/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <memory>

#include "segcore/layout.h"
#include "sync/config.h"
#include "sync/delta.h"
#include "sync/import.h"
#include "sync/live.h"
#include "sync/log.h"
#include "sync/publish.h"
#include "sync/rfm.h"
#include "sync/source.h"
#include "sync/status.h"

namespace segsync {
namespace {

using Clock = std::chrono::steady_clock;

// Set by signal handlers, read between (and inside) feeds. The pipe wakes
// the main loop out of poll(2).
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_reload = 0;
int g_wake[2] = {-1, -1};

void on_signal(int signal) {
    int saved = errno;
    if (signal == SIGHUP) g_reload = 1;
    else g_stop = 1;
    if (write(g_wake[1], "x", 1) < 0) {
        // full pipe: a wake-up is already pending
    }
    errno = saved;
}

void install_signals() {
    if (g_wake[0] < 0 && pipe2(g_wake, O_NONBLOCK | O_CLOEXEC) != 0) throw system_error("pipe2");
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaction(signal, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

bool stopping() { return g_stop != 0; }

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string root_of(std::string db) {
    while (db.size() > 1 && db.back() == '/') db.pop_back();
    return db;
}

std::uint64_t file_size(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

struct SourceRuntime {
    SourceConfig config;
    std::unique_ptr<Source> source;
    std::unique_ptr<SignatureVerifier> verifier;  // null: signatures not required
    Clock::time_point next_poll{};
    SourceStatus status;
};

class Daemon {
public:
    Daemon(const RunOptions& options, DaemonConfig config)
        : options_(options), config_(std::move(config)), root_(root_of(config_.db)) {}

    int run();

private:
    std::vector<SourceRuntime> build_sources(const DaemonConfig& config) const;
    void poll(SourceRuntime& s);
    bool process(SourceRuntime& s, const std::string& name);
    LogFields apply(SourceRuntime& s, const FetchedFeed& feed);
    void reject(SourceRuntime& s, const std::string& name, const std::vector<std::string>& involved,
                const std::string& why);
    void fail(SourceRuntime& s, const std::string& name, const std::string& why);
    void settle_old(SourceRuntime& s, const std::string& name, const std::string& position);
    void reload();
    void wait();
    void save_status();
    MapPolicy policy() const { return MapPolicy{config_.max_map_size}; }

    RunOptions options_;
    DaemonConfig config_;
    std::string root_;
    std::unique_ptr<WriterLock> lock_;
    std::vector<SourceRuntime> sources_;
    FeedPositions positions_;
    DaemonStatus status_;
    std::string status_error_;  // the last status_failed logged; empty once a save works
    EventLog log_{std::cerr};
    bool failures_ = false;
};

std::vector<SourceRuntime> Daemon::build_sources(const DaemonConfig& config) const {
    std::vector<SourceRuntime> sources;
    for (const auto& c : config.sources) {
        SourceRuntime s;
        s.config = c;
        s.source = c.type == SourceType::directory
                       ? make_directory_source(c)
                       : make_http_source(c, root_ + "/.spool/" + c.name, stopping);
        if (!c.signature.empty()) s.verifier = std::make_unique<SignatureVerifier>(c.signature);
        s.status.name = c.name;
        s.status.type = c.type == SourceType::directory ? "directory" : "http";
        s.status.location = s.source->location();
        sources.push_back(std::move(s));
    }
    return sources;
}

int Daemon::run() {
    prepare_root(root_);
    lock_ = std::make_unique<WriterLock>(root_);
    install_signals();
    sources_ = build_sources(config_);
    try {
        LiveDb live(root_, policy());
        positions_ = live.feed_positions();
        status_.generation = live.generation();
    } catch (const FeedError&) {
        // Nothing published yet: every feed is new.
    }
    status_.pid = static_cast<long>(getpid());
    status_.started_at = now();
    log_.info("started", {{"db", root_}, {"sources", std::to_string(sources_.size())},
                          {"generation", std::to_string(status_.generation)}});
    while (!stopping()) {
        if (g_reload) reload();
        for (auto& s : sources_) {
            if (stopping()) break;
            if (options_.once || Clock::now() >= s.next_poll) poll(s);
        }
        save_status();
        if (options_.once) break;
        wait();
    }
    log_.info("stopped", {{"generation", std::to_string(status_.generation)}});
    return options_.once && failures_ ? 1 : 0;
}

void Daemon::poll(SourceRuntime& s) {
    s.next_poll = Clock::now() + std::chrono::milliseconds(s.config.poll_interval_ms);
    s.status.last_poll_at = now();
    std::vector<std::string> names;
    try {
        for (auto& name : s.source->list())
            if (feed_kind(name)) names.push_back(std::move(name));
    } catch (const Cancelled&) {
        return;
    } catch (const std::exception& e) {
        fail(s, "", e.what());
        return;
    }
    std::sort(names.begin(), names.end());
    auto known = positions_.find(s.config.name);
    std::string position = known == positions_.end() ? "" : known->second;
    auto fresh = std::upper_bound(names.begin(), names.end(), position);
    for (auto it = names.begin(); it != fresh; ++it) settle_old(s, *it, position);
    s.status.pending = static_cast<std::size_t>(names.end() - fresh);
    for (auto it = fresh; it != names.end(); ++it) {
        if (stopping() || !process(s, *it)) return;
        --s.status.pending;
    }
    s.status.caught_up_at = now();
}

// A name at or before the source's position: applied before a crash could
// move it aside, or dropped out of order. Only a drop directory keeps such
// files around; an HTTP index simply still lists them.
void Daemon::settle_old(SourceRuntime& s, const std::string& name, const std::string& position) {
    if (s.config.type != SourceType::directory) return;
    try {
        if (name == position) {
            s.source->settle(name, {}, "");
            log_.info("skipped", {{"source", s.config.name}, {"feed", name}, {"reason", "already applied"}});
        } else {
            reject(s, name, {}, "out of order: sorts before " + position + ", the last feed taken from this source");
        }
    } catch (const std::exception& e) {
        fail(s, name, e.what());
    }
}

bool Daemon::process(SourceRuntime& s, const std::string& name) {
    FetchedFeed feed;
    auto started = Clock::now();
    try {
        fetch_feed(*s.source, name, s.verifier.get(), feed);
        LogFields fields = apply(s, feed);
        positions_[s.config.name] = name;
        s.status.last_feed = name;
        s.status.last_applied_at = now();
        ++s.status.applied;
        status_.last_success = s.config.name + " " + name;
        status_.last_success_at = now();
        s.source->settle(name, feed.involved, "");
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
        fields.insert(fields.begin(), {{"source", s.config.name}, {"feed", name},
                                       {"kind", std::string(to_string(feed.kind))}});
        fields.emplace_back("ms", std::to_string(ms));
        log_.info("applied", fields);
        save_status();
        return true;
    } catch (const Cancelled&) {
        log_.info("aborted", {{"source", s.config.name}, {"feed", name}, {"reason", "stopping; the feed stays pending"}});
        return false;
    } catch (const ImportError& e) {
        if (!e.about_input()) {
            fail(s, name, e.what());
            return false;
        }
        try {
            reject(s, name, feed.involved, e.what());
        } catch (const std::exception& again) {
            fail(s, name, again.what());
            return false;
        }
        return true;
    } catch (const std::exception& e) {
        fail(s, name, e.what());
        return false;
    }
}

LogFields Daemon::apply(SourceRuntime& s, const FetchedFeed& feed) {
    if (feed.kind == FeedKind::snapshot) {
        ImportOptions o;
        o.db = root_;
        set_snapshot_files(feed, o);
        o.rfm = config_.rfm;
        o.source = s.config.name + ":" + feed.name;
        o.keep = config_.keep;
        o.min_map_size = config_.initial_map_size;
        o.feeds = positions_;
        o.feeds[s.config.name] = feed.name;
        o.cancelled = stopping;
        ImportResult r = run_import(o, *lock_);
        status_.generation = r.generation;
        for (const auto& warning : r.prune.warnings) log_.error("prune_failed", {{"warning", warning}});
        return {{"generation", std::to_string(r.generation)}, {"segments", std::to_string(r.segments)},
                {"profiles", std::to_string(r.profiles)}, {"attributes", std::to_string(r.attributes)},
                {"snapshot", r.snapshot_path}, {"pruned", std::to_string(r.prune.removed.size())}};
    }
    LiveDb live(root_, policy());
    std::size_t before = live.map_size();
    LogFields fields;
    std::uint64_t generation = 0;
    if (feed.kind == FeedKind::delta) {
        DeltaStats d;
        generation = live.apply(s.config.name, feed.name, file_size(feed.path), [&](ProfileEditor& editor) {
            NdjsonReader reader(feed.path);
            d = apply_delta(reader, editor, stopping);
        });
        fields = {{"changes", std::to_string(d.changes)}, {"enter", std::to_string(d.enters)},
                  {"exit", std::to_string(d.exits)}, {"upsert", std::to_string(d.upserts)},
                  {"delete", std::to_string(d.deletes)}, {"alias", std::to_string(d.aliases)}};
    } else {
        StagingDir scratch(root_);  // never published: removed when done
        RfmStats r;
        generation = live.apply(s.config.name, feed.name, file_size(feed.path), [&](ProfileEditor& editor) {
            r = apply_rfm(feed.path, config_.rfm, now(), editor, scratch.path(), stopping);
        });
        fields = {{"orders", std::to_string(r.orders)}, {"customers", std::to_string(r.customers)},
                  {"created", std::to_string(r.created)}, {"cleared", std::to_string(r.cleared)}};
    }
    status_.generation = generation;
    fields.emplace_back("generation", std::to_string(generation));
    if (live.map_size() != before) fields.emplace_back("map_mb", std::to_string(live.map_size() >> 20));
    return fields;
}

// The feed is bad: recorded as the source's position (so it is not tried
// again), moved aside, reported; the daemon goes on with the next one.
void Daemon::reject(SourceRuntime& s, const std::string& name, const std::vector<std::string>& involved,
                    const std::string& why) {
    failures_ = true;
    try {
        LiveDb(root_, policy()).skip(s.config.name, name);
    } catch (const FeedError&) {
        // No snapshot yet to record it in; the move aside (or, over HTTP,
        // this process's memory) keeps it from being tried again.
    }
    positions_[s.config.name] = name;
    s.status.last_feed = name;
    s.status.last_error = name + ": " + why;
    s.status.last_error_at = now();
    ++s.status.rejected;
    status_.last_error = s.config.name + " " + name + ": " + why;
    status_.last_error_at = now();
    s.source->settle(name, involved, why);
    log_.error("rejected", {{"source", s.config.name}, {"feed", name}, {"error", why}});
    save_status();
}

// Not the feed's fault (network, disk, map full): it stays pending and is
// tried again at the next poll; nothing after it is applied before it.
void Daemon::fail(SourceRuntime& s, const std::string& name, const std::string& why) {
    failures_ = true;
    s.status.last_error = (name.empty() ? "" : name + ": ") + why;
    s.status.last_error_at = now();
    ++s.status.failures;
    status_.last_error = s.config.name + (name.empty() ? "" : " " + name) + ": " + why;
    status_.last_error_at = now();
    LogFields fields{{"source", s.config.name}};
    if (!name.empty()) fields.emplace_back("feed", name);
    fields.emplace_back("error", why);
    fields.emplace_back("retry_ms", std::to_string(s.config.poll_interval_ms));
    log_.error("failed", fields);
}

void Daemon::reload() {
    g_reload = 0;
    try {
        DaemonConfig next = load_config(options_.config_path);
        if (root_of(next.db) != root_)
            throw ImportError("\"db\" cannot change while running (restart segsync for that)");
        std::vector<SourceRuntime> sources = build_sources(next);
        for (auto& fresh : sources)
            for (const auto& old : sources_)
                if (old.config.name == fresh.config.name) fresh.status = old.status, fresh.status.location = fresh.source->location();
        config_ = std::move(next);
        sources_ = std::move(sources);
        log_.info("reloaded", {{"config", options_.config_path}, {"sources", std::to_string(sources_.size())}});
    } catch (const std::exception& e) {
        log_.error("reload_failed", {{"config", options_.config_path}, {"error", e.what()},
                                     {"keeping", "the previous configuration"}});
    }
}

void Daemon::wait() {
    std::vector<pollfd> fds{{g_wake[0], POLLIN, 0}};
    for (const auto& s : sources_)
        if (s.source->wake_fd() >= 0) fds.push_back({s.source->wake_fd(), POLLIN, 0});
    auto next = Clock::time_point::max();
    for (const auto& s : sources_) next = std::min(next, s.next_poll);
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
    int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<long long>(timeout, 0, 60000)));
    if (rc <= 0) return;
    char buffer[64];
    while (read(g_wake[0], buffer, sizeof buffer) > 0) {
    }
    for (auto& s : sources_) {
        int fd = s.source->wake_fd();
        auto ready = std::find_if(fds.begin(), fds.end(), [&](const pollfd& p) { return p.fd == fd; });
        if (fd >= 0 && ready != fds.end() && (ready->revents & POLLIN)) {
            s.source->drain();
            s.next_poll = Clock::now();
        }
    }
}

void Daemon::save_status() {
    status_.updated_at = now();
    std::error_code error;
    auto bytes = std::filesystem::file_size(segcore::layout::current_link(root_) + "/data.mdb", error);
    status_.snapshot_bytes = error ? 0 : bytes;
    status_.sources.clear();
    for (const auto& s : sources_) status_.sources.push_back(s.status);
    try {
        write_status(root_, status_);
        status_error_.clear();
    } catch (const std::exception& e) {
        // Once per distinct failure: a full disk would log it at every poll.
        if (status_error_ != e.what()) log_.error("status_failed", {{"error", e.what()}});
        status_error_ = e.what();
    }
}

}  // namespace

int run_daemon(const RunOptions& options) {
    EventLog log(std::cerr);
    try {
        Daemon daemon(options, load_config(options.config_path));
        return daemon.run();
    } catch (const std::exception& e) {
        log.error("exiting", {{"error", e.what()}});
        return 1;
    }
}

}  // namespace segsync
