// `segsync verify` and `segsync dump`: read-only looks at the live snapshot
// for operators, safe to run while nginx and the daemon are working.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "sync/validate.h"

namespace segsync {

// Full walk of DB/current (what publishing checks). Prints a summary; 0
// when sound, 1 otherwise.
int verify_db(const std::string& root, std::ostream& out, std::ostream& err);

// Prints one database of DB/current as NDJSON: meta, segments, attributes,
// profiles (in the profiles feed format) or aliases. `only` restricts
// profiles to one visitor. Returns 0, 1 when the visitor is not there.
// Throws ImportError for an unknown `what` or an unreadable database.
int dump_db(const std::string& root, const std::string& what, const std::optional<Visitor>& only,
            std::ostream& out);

}  // namespace segsync
