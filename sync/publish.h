// Stage 4: make a verified snapshot the current one, atomically, and retire
// old ones. Only one segsync writes to a root at a time (flock); readers
// (nginx workers) never take a lock and follow ROOT/current by themselves.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace segsync {

// Creates ROOT and ROOT/snapshots as needed (mkdir -p).
void prepare_root(const std::string& root);

// Exclusive, non-blocking flock on ROOT/.segsync.lock, held for the object's
// life. A crashed writer's lock goes away with its process.
class WriterLock {
public:
    // Throws ImportError "another segsync is writing to ROOT (...)" if held.
    explicit WriterLock(const std::string& root);
    ~WriterLock();
    WriterLock(const WriterLock&) = delete;
    WriterLock& operator=(const WriterLock&) = delete;

private:
    int fd_ = -1;
};

// One past the newest generation under ROOT: the one `current` reports, or
// any snap-* name (so a broken or missing `current` never makes the counter
// go backwards). 1 for an empty root.
std::uint64_t next_generation(const std::string& root);

// A private directory under ROOT/snapshots to build a snapshot in. Removed
// on destruction unless published, so a failed import leaves nothing behind.
// Call only while holding the WriterLock.
class StagingDir {
public:
    // Also removes staging directories left by crashed runs.
    explicit StagingDir(const std::string& root);
    ~StagingDir();
    StagingDir(const StagingDir&) = delete;
    StagingDir& operator=(const StagingDir&) = delete;

    const std::string& path() const noexcept { return path_; }

    // Renames the directory to snapshots/snap-<generation>-<suffix> and
    // points ROOT/current at it (rename(2) of a symlink: readers see the old
    // or the new target, never neither). Returns the snapshot's name.
    std::string publish(std::uint64_t generation);

private:
    std::string root_;
    std::string path_;
    bool published_ = false;
};

struct PruneReport {
    std::vector<std::string> removed;   // snapshot names deleted
    std::vector<std::string> busy;      // kept because readers are attached
    std::vector<std::string> warnings;  // failures; never fail the import
};

// Keeps the `keep` newest snapshots, counting the current one, and deletes
// older ones that no process has open. One still in use is left for a later
// run. Call only while holding the WriterLock.
PruneReport prune_snapshots(const std::string& root, unsigned keep);

}  // namespace segsync
