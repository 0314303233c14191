// The one exception type of the import pipeline. Data errors carry the input
// file and line so an operator can open the feed at the offending record.
#pragma once

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "segcore/lmdb.h"

namespace segsync {

// Where a record came from: the file as named on the command line, 1-based line.
struct Location {
    std::string_view file;
    std::size_t line = 0;
};

class ImportError : public std::runtime_error {
public:
    explicit ImportError(const std::string& message) : std::runtime_error(message) {}
    // what() is "FILE:LINE: message".
    ImportError(const Location& where, const std::string& message);

    // True when the input itself is at fault (a bad line, a bad signature):
    // trying again cannot help, so the daemon rejects the feed and goes on.
    // False for the environment (disk, network, map full): it retries.
    bool about_input() const noexcept { return about_input_; }

protected:
    ImportError(const std::string& message, bool about_input)
        : std::runtime_error(message), about_input_(about_input) {}

private:
    bool about_input_ = false;
};

// An input problem without a line: a bad manifest, signature or checksum.
class FeedError : public ImportError {
public:
    explicit FeedError(const std::string& message) : ImportError(message, true) {}
};

// Thrown when the daemon is asked to stop in the middle of a feed: the
// feed's transaction is aborted (or its staging removed) and it stays pending.
class Cancelled : public std::runtime_error {
public:
    Cancelled() : std::runtime_error("stopped before the feed was complete") {}
};

// Polled between records by long-running stages; true means stop.
using CancelCheck = std::function<bool()>;

// An ImportError for a failed system call: "what: strerror(errno)". Read
// errno before anything else can overwrite it.
ImportError system_error(const std::string& what);

// An ImportError for an LMDB write under `dir` that failed. A full disk
// shows as ENOSPC, or as EIO when a write came up short (that is how LMDB
// reports it), so the message then says that the disk is full.
ImportError write_error(const segcore::LmdbError& e, const std::string& dir);

// A JSON-escaped, length-capped rendering of untrusted text for messages, so
// a hostile id cannot flood a log line or inject control characters.
std::string quote(std::string_view text);

}  // namespace segsync
