#include "sync/error.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>

namespace segsync {
namespace {

constexpr std::size_t kQuotedMax = 80;
// A write that failed with less than this left was most likely stopped by it:
// LMDB writes at most 64 pages at a time.
constexpr std::uint64_t kNearlyFull = std::uint64_t{1} << 20;

std::string located(const Location& where, const std::string& message) {
    return std::string(where.file) + ":" + std::to_string(where.line) + ": " + message;
}

}  // namespace

ImportError::ImportError(const Location& where, const std::string& message)
    : std::runtime_error(located(where, message)), about_input_(true) {}

ImportError system_error(const std::string& what) {
    int saved = errno;
    return ImportError(what + ": " + std::strerror(saved));
}

ImportError write_error(const segcore::LmdbError& e, const std::string& dir) {
    std::string message = e.what();
    struct statvfs fs;
    if ((e.code() == ENOSPC || e.code() == EIO) && statvfs(dir.c_str(), &fs) == 0) {
        std::uint64_t available = std::uint64_t{fs.f_bavail} * fs.f_frsize;
        if (available < kNearlyFull)
            message += " (the disk is full: " + std::to_string(available / 1024) + " KiB free on the file system of " +
                       dir + ")";
    }
    return ImportError(message);
}

std::string quote(std::string_view text) {
    bool cut = text.size() > kQuotedMax;
    // Cutting may split a UTF-8 sequence; `replace` turns the stub into U+FFFD.
    std::string shown = nlohmann::json(std::string(text.substr(0, kQuotedMax)))
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return cut ? shown + "..." : shown;
}

}  // namespace segsync
