// `segsync run --config FILE`: the daemon's JSON configuration, validated
// strictly (unknown fields are errors, like in the feeds). See README
// "Configuration file" for the field table.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sync/rfm.h"
#include "sync/signature.h"

namespace segsync {

enum class SourceType { directory, http };

struct SourceConfig {
    std::string name;  // [a-z0-9_-]{1,64}: recorded in meta as feed:<name>
    SourceType type = SourceType::directory;
    std::string path;       // directory: the drop directory
    std::string index_url;  // http: the index listing the feed names
    std::string ca_file;    // http: extra CA bundle (PEM); empty: the system's
    unsigned poll_interval_ms = 0;
    unsigned connect_timeout_ms = 10000;
    unsigned timeout_ms = 600000;  // one whole transfer
    unsigned retries = 3;          // after the first try
    unsigned retry_delay_ms = 1000;  // doubled after each failure
    SignatureKeys signature;       // any key given: signatures required
};

struct DaemonConfig {
    std::string db;
    unsigned keep = 2;
    std::size_t initial_map_size = 0;  // bytes; 0: 1 GiB (more for large inputs)
    std::size_t max_map_size = 0;      // bytes; 0: no limit but the disk
    RfmThresholds rfm;
    std::vector<SourceConfig> sources;
};

// Throws ImportError "FILE: message" naming the offending field.
DaemonConfig load_config(const std::string& path);

}  // namespace segsync
