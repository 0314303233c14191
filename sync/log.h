// The daemon's log: one line per event, to stderr (the journal under
// systemd), as
//
//   2024-06-01T12:00:00.123Z info applied source=drop feed=x.delta.ndjson changes=100 generation=42
//
// Values with spaces, quotes or '=' are JSON-quoted, so lines stay
// machine-readable.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace segsync {

using LogFields = std::vector<std::pair<std::string, std::string>>;

class EventLog {
public:
    explicit EventLog(std::ostream& out) : out_(out) {}
    void info(std::string_view event, const LogFields& fields) { write("info", event, fields); }
    void error(std::string_view event, const LogFields& fields) { write("error", event, fields); }

private:
    void write(std::string_view level, std::string_view event, const LogFields& fields);
    std::ostream& out_;
};

}  // namespace segsync
