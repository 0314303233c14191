// `segsync sign`: mints the signed known-visitor cookie value an application
// sets after login, so integrations can be tested from the command line.
// Format and MAC: segcore/signed_id.h.
#pragma once

#include <cstdint>
#include <string>

namespace segsync {

struct SignOptions {
    std::string keys_path;  // the module's segedge_keys file
    std::string id;         // the known visitor id
    std::uint64_t expires = 0;  // unix seconds
};

// The cookie value, signed with the key file's first key. Throws
// segcore::KeyFileError for a bad key file, std::invalid_argument for an
// empty or too long id.
std::string run_sign(const SignOptions& options);

}  // namespace segsync
