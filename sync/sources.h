// Stage 1: NDJSON input. Reads one line at a time so a profiles export of any
// size streams through in constant memory; every record keeps its line number
// for error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
// Parses one line as NdjsonReader::next does, with its errors at `where`.
nlohmann::json parse_line(std::string_view text, const Location& where);

class NdjsonReader {
public:
    // Throws ImportError "FILE: cannot open: ..." for a missing, unreadable
    // or non-file path.
    explicit NdjsonReader(std::string path);
    ~NdjsonReader();
    NdjsonReader(const NdjsonReader&) = delete;
    NdjsonReader& operator=(const NdjsonReader&) = delete;

    // Reads the next non-blank line into `out`; false at end of file. Throws
    // ImportError "FILE:LINE: ..." for malformed JSON, a non-object line or a
    // field given twice (the JSON parser would silently keep the last one).
    bool next(Record& out);
    // The next non-blank line, unparsed (without its newline), for a caller
    // with a faster parser; valid until the next call. false at end of file.
    bool next_line(std::string_view& line);
    // The next whole lines as read, newlines and blank lines included (at
    // most `limit` bytes and what one read(2) brought, unless a line is
    // longer); valid until the next call. lines() then counts them all.
    // false at end of file.
    bool next_lines(std::string_view& lines, std::size_t limit);
    // Parses a line as next() does, with its errors at where().
    nlohmann::json parse(std::string_view text) const { return parse_line(text, where()); }

    const std::string& path() const noexcept { return path_; }
    Location where() const noexcept { return {path_, line_}; }
    std::size_t lines() const noexcept { return line_; }
    std::uint64_t offset() const noexcept { return offset_; }
    // 0 when unknown (a pipe).
    std::uint64_t size() const noexcept { return size_; }

private:
    // Reads more of the file after the unread part of buffer_; false at EOF.
    bool fill();

    std::string path_;
    int fd_ = -1;
    // read(2) into our own buffer: lines are views into it, no copy per line.
    std::vector<char> buffer_;
    std::size_t begin_ = 0;  // unread part: [begin_, end_)
    std::size_t end_ = 0;
    bool eof_ = false;
    std::size_t line_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t size_ = 0;
};

}  // namespace segsync
