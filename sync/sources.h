// Stage 1: NDJSON input. Reads one line at a time so a profiles export of any
// size streams through in constant memory; every record keeps its line number
// for error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "sync/error.h"

namespace segsync {

// One non-blank input line, parsed.
struct Record {
    std::size_t line = 0;
    nlohmann::json object;  // always a JSON object
};

// Lines nesting deeper are rejected: more than any record needs (a rule
// nested segcore::rules::kMaxRuleDepth all-levels deep takes 66).
inline constexpr int kMaxJsonDepth = 100;

class NdjsonReader {
public:
    // Throws ImportError "FILE: cannot open: ..." for a missing, unreadable
    // or non-file path.
    explicit NdjsonReader(std::string path);

    // Reads the next non-blank line into `out`; false at end of file. Throws
    // ImportError "FILE:LINE: ..." for malformed JSON, a non-object line or a
    // field given twice (the JSON parser would silently keep the last one).
    bool next(Record& out);

    const std::string& path() const noexcept { return path_; }
    Location where() const noexcept { return {path_, line_}; }
    std::size_t lines() const noexcept { return line_; }
    std::uint64_t offset() const noexcept { return offset_; }
    // 0 when unknown (a pipe).
    std::uint64_t size() const noexcept { return size_; }

private:
    nlohmann::json parse(const std::string& text) const;

    std::string path_;
    std::ifstream in_;
    std::string buffer_;
    std::size_t line_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t size_ = 0;
};

}  // namespace segsync
