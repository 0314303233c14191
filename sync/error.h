// The one exception type of the import pipeline. Data errors carry the input
// file and line so an operator can open the feed at the offending record.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

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
};

// An ImportError for a failed system call: "what: strerror(errno)". Read
// errno before anything else can overwrite it.
ImportError system_error(const std::string& what);

// A JSON-escaped, length-capped rendering of untrusted text for messages, so
// a hostile id cannot flood a log line or inject control characters.
std::string quote(std::string_view text);

}  // namespace segsync
