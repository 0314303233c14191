// "\rFILE: N lines (P%)" on a terminal while a long input streams in, so an
// operator can tell a slow import from a stuck one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace segsync {

class Progress {
public:
    // `out` may be null: then nothing is printed. `total` is the input size
    // in bytes, 0 when unknown.
    Progress(std::ostream* out, std::string label, std::uint64_t total);
    // Ends an unfinished line, so an error message after it starts afresh.
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Cheap when called per line: prints at most about twice a second.
    void update(std::size_t lines, std::uint64_t offset);
    // The final count and a newline.
    void finish(std::size_t lines, std::uint64_t offset);

private:
    void print(std::size_t lines, std::uint64_t offset);

    std::ostream* out_;
    std::string label_;
    std::uint64_t total_;
    std::chrono::steady_clock::time_point next_;
    bool line_open_ = false;
};

}  // namespace segsync
