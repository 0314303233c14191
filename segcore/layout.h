// Where things live under a segedge database root (the `segedge_db` path):
//
//   ROOT/current           symlink to snapshots/<name>, flipped by rename(2)
//   ROOT/snapshots/<name>  one complete LMDB environment per published snapshot
//   ROOT/snapshots/.staging-*  being built; never pointed to
//   ROOT/.segsync.lock     held (flock) by the one writer
#pragma once

#include <string>

namespace segcore::layout {

inline std::string current_link(const std::string& root) { return root + "/current"; }
inline std::string snapshots_dir(const std::string& root) { return root + "/snapshots"; }
inline std::string writer_lock(const std::string& root) { return root + "/.segsync.lock"; }
// The new link is made here, then renamed over current.
inline std::string next_current_link(const std::string& root) { return root + "/.current.tmp"; }
// What current points to: relative, so the root can be moved or bind-mounted.
inline std::string current_target(const std::string& snapshot_name) {
    return "snapshots/" + snapshot_name;
}
inline constexpr const char* kStagingPrefix = ".staging-";
inline constexpr const char* kSnapshotPrefix = "snap-";

}  // namespace segcore::layout
