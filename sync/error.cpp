#include "sync/error.h"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

namespace segsync {
namespace {

constexpr std::size_t kQuotedMax = 80;

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

std::string quote(std::string_view text) {
    bool cut = text.size() > kQuotedMax;
    // Cutting may split a UTF-8 sequence; `replace` turns the stub into U+FFFD.
    std::string shown = nlohmann::json(std::string(text.substr(0, kQuotedMax)))
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return cut ? shown + "..." : shown;
}

}  // namespace segsync
