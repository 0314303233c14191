#include "segcore/store.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <cerrno>
#include <cstring>

#include "segcore/layout.h"

namespace segcore {

Store::Store(std::string root, std::uint64_t check_interval_ms)
    : link_(layout::current_link(root)), check_interval_ms_(check_interval_ms) {}

std::string Store::refresh(std::uint64_t now_ms) {
    if (now_ms < next_check_ms_) return {};
    next_check_ms_ = now_ms + check_interval_ms_;

    struct stat st;
    if (stat(link_.c_str(), &st) != 0) {
        if (snapshot_) return {};  // keep serving what we have
        return "cannot open " + link_ + ": " + std::strerror(errno);
    }
    Identity target{st.st_dev, st.st_ino};
    if (snapshot_ && target == loaded_) return {};
    if (target == failed_) return {};

    // Resolve the link once so the snapshot we open is the one we stat'ed
    // (or a newer one, which the next check then notices again).
    char resolved[PATH_MAX];
    if (!realpath(link_.c_str(), resolved)) return "cannot resolve " + link_ + ": " + std::strerror(errno);
    try {
        auto next = std::make_unique<Snapshot>(resolved);
        snapshot_ = std::move(next);
        loaded_ = target;
        switched_at_ms_ = now_ms;
        return {};
    } catch (const std::exception& e) {
        failed_ = target;
        return std::string("cannot open snapshot ") + resolved + ": " + e.what() +
               (snapshot_ ? " (keeping the previous snapshot)" : "");
    }
}

}  // namespace segcore
