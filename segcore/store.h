// Follows ROOT/current and switches to a newly published snapshot without a
// reload. The check is a readlink(2) and a stat(2), at most once per
// interval; a new snapshot that fails to open is not retried until something
// new is published, and the previous one stays in use.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "segcore/snapshot.h"

namespace segcore {

class Store {
public:
    Store(std::string root, std::uint64_t check_interval_ms);

    // Call at a request boundary. Returns a message describing a failure to
    // switch (for the caller to log), or an empty string.
    std::string refresh(std::uint64_t now_ms);

    // The snapshot in use, or nullptr when none could be opened yet.
    Snapshot* current() noexcept { return snapshot_.get(); }
    std::uint64_t switched_at_ms() const noexcept { return switched_at_ms_; }

private:
    // The snapshot directory current points to. Its path (hashed: no
    // allocation per check) counts too: a directory removed after it was
    // refused can hand its inode number to a newer snapshot, which must not
    // be taken for the refused one.
    struct Identity {
        dev_t dev = 0;
        ino_t ino = 0;
        std::uint64_t path = 0;
        bool same_directory(const Identity& o) const { return dev == o.dev && ino == o.ino; }
        bool operator==(const Identity& o) const { return same_directory(o) && path == o.path; }
    };

    // Writes the directory current points to into `out` (PATH_MAX bytes).
    bool current_target(char* out) const;

    std::string root_;
    std::string link_;
    std::uint64_t check_interval_ms_;
    std::uint64_t next_check_ms_ = 0;
    std::uint64_t switched_at_ms_ = 0;
    Identity loaded_{};
    Identity failed_{};
    std::unique_ptr<Snapshot> snapshot_;
};

}  // namespace segcore
