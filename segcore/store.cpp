#include "segcore/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "segcore/layout.h"

namespace segcore {
namespace {

// FNV-1a.
std::uint64_t path_hash(const char* path) {
    std::uint64_t hash = 14695981039346656037ull;
    for (; *path; ++path) hash = (hash ^ static_cast<unsigned char>(*path)) * 1099511628211ull;
    return hash;
}

}  // namespace

Store::Store(std::string root, std::uint64_t check_interval_ms)
    : root_(std::move(root)), link_(layout::current_link(root_)), check_interval_ms_(check_interval_ms) {}

// segsync's link is relative to the root; anything else is taken as it is.
bool Store::current_target(char* out) const {
    char text[PATH_MAX];
    ssize_t length = readlink(link_.c_str(), text, sizeof text - 1);
    if (length < 0 && errno == EINVAL) return std::snprintf(out, PATH_MAX, "%s", link_.c_str()) < PATH_MAX;
    if (length <= 0) return false;
    text[length] = '\0';
    int written = text[0] == '/' ? std::snprintf(out, PATH_MAX, "%s", text)
                                 : std::snprintf(out, PATH_MAX, "%s/%s", root_.c_str(), text);
    if (written > 0 && written < PATH_MAX) return true;
    errno = ENAMETOOLONG;
    return false;
}

std::string Store::refresh(std::uint64_t now_ms) {
    if (now_ms < next_check_ms_) return {};
    next_check_ms_ = now_ms + check_interval_ms_;

    // The directory stat'ed is the one opened: had the link moved on between
    // the two, the identity recorded would not be the directory in use.
    char target_path[PATH_MAX];
    struct stat st;
    if (!current_target(target_path) || stat(target_path, &st) != 0) {
        if (snapshot_) return {};  // keep serving what we have
        return "cannot open " + link_ + ": " + std::strerror(errno);
    }
    Identity target{st.st_dev, st.st_ino, path_hash(target_path)};
    // The directory in use, however the link names it: opening it again and
    // closing one of the two would drop this process's LMDB reader lock on
    // it, and another process's stale-reader check would then take our slot.
    if (snapshot_ && target.same_directory(loaded_)) return {};
    if (target == failed_) return {};

    try {
        auto next = std::make_unique<Snapshot>(target_path);
        snapshot_ = std::move(next);
        loaded_ = target;
        switched_at_ms_ = now_ms;
        return {};
    } catch (const std::exception& e) {
        failed_ = target;
        return std::string("cannot open snapshot ") + target_path + ": " + e.what() +
               (snapshot_ ? " (keeping the previous snapshot)" : "");
    }
}

}  // namespace segcore
