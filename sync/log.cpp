#include "sync/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace segsync {
namespace {

std::string now_utc() {
    auto now = std::chrono::system_clock::now();
    std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03dZ", static_cast<int>(millis));
    return std::string(text) + fraction;
}

bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (char c : value)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
    return false;
}

// Unlike quote(), keeps a whole error message (up to a sane cap).
std::string json_quoted(std::string_view value) {
    constexpr std::size_t kMax = 4096;
    return nlohmann::json(std::string(value.substr(0, kMax)))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void EventLog::write(std::string_view level, std::string_view event, const LogFields& fields) {
    std::string line = now_utc() + " " + std::string(level) + " " + std::string(event);
    for (const auto& [key, value] : fields) {
        line += " " + key + "=";
        line += needs_quotes(value) ? json_quoted(value) : value;
    }
    out_ << line << std::endl;
}

}  // namespace segsync
