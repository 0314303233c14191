#include "sync/publish.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <utility>

#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "segcore/snapshot.h"
#include "sync/error.h"

namespace segsync {
namespace {

namespace fs = std::filesystem;
namespace layout = segcore::layout;

constexpr std::size_t kSuffixSize = 6;  // mkdtemp's XXXXXX

bool has_prefix(const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; }

std::vector<std::string> entries_with_prefix(const std::string& dir, const char* prefix) {
    std::vector<std::string> names;
    try {
        for (const auto& entry : fs::directory_iterator(dir)) {
            std::string name = entry.path().filename().string();
            if (has_prefix(name, prefix)) names.push_back(std::move(name));
        }
    } catch (const fs::filesystem_error& e) {
        throw ImportError(std::string("cannot list ") + dir + ": " + e.code().message());
    }
    return names;
}

// "snap-0000000042-Ab3dEf" -> 42; 0 for a name segsync did not make.
std::uint64_t generation_of(const std::string& name) {
    std::string digits = name.substr(std::char_traits<char>::length(layout::kSnapshotPrefix));
    if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0]))) return 0;
    char* end = nullptr;
    unsigned long long value = std::strtoull(digits.c_str(), &end, 10);
    return *end == '-' ? value : 0;
}

std::string snapshot_name(std::uint64_t generation, const std::string& suffix) {
    char number[32];
    std::snprintf(number, sizeof number, "%010llu", static_cast<unsigned long long>(generation));
    return layout::kSnapshotPrefix + std::string(number) + "-" + suffix;
}

// The snapshot ROOT/current points to, or "" when there is none.
std::string current_name(const std::string& root) {
    char target[4096];
    std::string link = layout::current_link(root);
    ssize_t size = readlink(link.c_str(), target, sizeof target);
    if (size <= 0 || static_cast<std::size_t>(size) >= sizeof target) return {};
    std::string text(target, static_cast<std::size_t>(size));
    return text.substr(text.rfind('/') + 1);  // npos + 1 == 0: a bare name
}

// Makes renames and new entries in `dir` durable: a published `current`
// must never survive a crash that its snapshot did not.
void fsync_dir(const std::string& dir) {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw system_error("open " + dir);
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    if (rc != 0) throw system_error("fsync " + dir);
}

void remove_tree(const std::string& path) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) throw ImportError("cannot remove " + path + ": " + ec.message());
}

// Replaces ROOT/current in one rename(2), with a relative target so the
// root can be moved or bind-mounted elsewhere.
void point_current_at(const std::string& root, const std::string& name) {
    std::string tmp = layout::next_current_link(root);
    std::string link = layout::current_link(root);
    unlink(tmp.c_str());  // left by a crash between symlink and rename
    std::string target = layout::current_target(name);
    if (symlink(target.c_str(), tmp.c_str()) != 0) throw system_error("symlink " + tmp);
    if (rename(tmp.c_str(), link.c_str()) != 0) {
        ImportError error = system_error("rename " + tmp + " to " + link);
        unlink(tmp.c_str());
        throw error;
    }
}

// Reader slots held by live processes. The list is a header line and one
// "pid thread txnid" line per slot, or one "(no active readers)" line: only
// slot lines start with a number.
int count_reader_line(const char* line, void* context) {
    while (*line == ' ') ++line;
    if (std::isdigit(static_cast<unsigned char>(*line))) ++*static_cast<int*>(context);
    return 0;
}

int live_readers(const std::string& dir) {
    segcore::Env::Options options;
    options.flags = MDB_RDONLY;
    segcore::Env env(dir, options);
    // Slots of crashed workers would otherwise pin the snapshot forever.
    env.clear_stale_readers();
    int readers = 0;
    mdb_reader_list(env.get(), count_reader_line, &readers);
    return readers;
}

void retire(const std::string& snapshots, const std::string& name, PruneReport& report) {
    std::string path = snapshots + "/" + name;
    std::optional<int> readers;
    try {
        readers = live_readers(path);
    } catch (const segcore::LmdbError&) {
        // Cannot be opened, so nobody can be reading it; it is not current.
    }
    if (readers && *readers > 0) {
        report.busy.push_back(name);
        return;
    }
    try {
        remove_tree(path);
        report.removed.push_back(name);
    } catch (const ImportError& e) {
        report.warnings.push_back(e.what());
    }
}

}  // namespace

void prepare_root(const std::string& root) {
    std::error_code ec;
    fs::create_directories(layout::snapshots_dir(root), ec);
    if (ec) throw ImportError("cannot create " + layout::snapshots_dir(root) + ": " + ec.message());
}

WriterLock::WriterLock(const std::string& root) {
    std::string path = layout::writer_lock(root);
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (fd_ < 0) throw system_error("open " + path);
    if (flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    ImportError error = errno == EWOULDBLOCK
                            ? ImportError("another segsync is writing to " + root + " (" + path +
                                          " is locked)")
                            : system_error("flock " + path);
    close(fd_);
    throw error;
}

WriterLock::~WriterLock() { close(fd_); }

std::uint64_t next_generation(const std::string& root) {
    std::uint64_t newest = 0;
    try {
        newest = segcore::Snapshot(layout::current_link(root)).meta().generation;
    } catch (const std::runtime_error&) {
        // No current snapshot, or a broken one: the names below still count.
    }
    for (const auto& name : entries_with_prefix(layout::snapshots_dir(root), layout::kSnapshotPrefix))
        newest = std::max(newest, generation_of(name));
    return newest + 1;
}

StagingDir::StagingDir(const std::string& root) : root_(root) {
    std::string snapshots = layout::snapshots_dir(root);
    // Safe only because the caller holds the writer lock: nobody else can be
    // building in these.
    for (const auto& name : entries_with_prefix(snapshots, layout::kStagingPrefix))
        remove_tree(snapshots + "/" + name);
    std::string pattern = snapshots + "/" + layout::kStagingPrefix + "XXXXXX";
    if (!mkdtemp(pattern.data())) throw system_error("mkdtemp " + pattern);
    path_ = pattern;
    struct stat st;
    // Keep the setgid bit mkdir inherited from ROOT: it is what gives the
    // LMDB files ROOT's group (nginx's), and a plain chmod 0750 would clear it
    // before they are created.
    if (stat(path_.c_str(), &st) != 0 || chmod(path_.c_str(), 0750 | (st.st_mode & S_ISGID)) != 0) {
        ImportError error = system_error("chmod " + path_);
        rmdir(path_.c_str());
        throw error;
    }
}

StagingDir::~StagingDir() {
    if (published_) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string StagingDir::publish(std::uint64_t generation) {
    std::string snapshots = layout::snapshots_dir(root_);
    std::string name = snapshot_name(generation, path_.substr(path_.size() - kSuffixSize));
    std::string final_path = snapshots + "/" + name;
    fsync_dir(path_);
    if (rename(path_.c_str(), final_path.c_str()) != 0)
        throw system_error("rename " + path_ + " to " + final_path);
    path_ = final_path;  // from here on the destructor removes this instead
    fsync_dir(snapshots);
    point_current_at(root_, name);
    published_ = true;
    try {
        fsync_dir(root_);
    } catch (const ImportError& e) {
        throw ImportError(layout::current_link(root_) + " now points to " + name +
                          ", but it may not survive a crash: " + e.what());
    }
    return name;
}

PruneReport prune_snapshots(const std::string& root, unsigned keep) {
    PruneReport report;
    std::string snapshots = layout::snapshots_dir(root);
    std::string current = current_name(root);
    std::vector<std::pair<std::uint64_t, std::string>> older;
    try {
        for (auto& name : entries_with_prefix(snapshots, layout::kSnapshotPrefix))
            if (name != current) older.emplace_back(generation_of(name), std::move(name));
    } catch (const ImportError& e) {
        report.warnings.push_back(e.what());
        return report;
    }
    std::sort(older.rbegin(), older.rend());  // newest first
    std::size_t previous_kept = keep > 1 ? keep - 1 : 0;
    for (std::size_t i = previous_kept; i < older.size(); ++i)
        retire(snapshots, older[i].second, report);
    return report;
}

}  // namespace segsync
