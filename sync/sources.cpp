#include "sync/sources.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

namespace segsync {
namespace {

constexpr std::size_t kReadSize = 1 << 20;

bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

// nlohmann's messages start with "[json.exception...] parse error at line 1,
// column N: "; the line is always 1 here, so keep only the explanation. A
// number too large for a double ("1e400") is its out_of_range error, with
// no column: keep what follows the bracket.
std::string parse_detail(const nlohmann::json::exception& e) {
    std::string_view text = e.what();
    std::size_t colon = text.find(": ");
    if (colon != std::string_view::npos) return std::string(text.substr(colon + 2));
    std::size_t bracket = text.find("] ");
    return std::string(bracket == std::string_view::npos ? text : text.substr(bracket + 2));
}

}  // namespace

NdjsonReader::NdjsonReader(std::string path) : path_(std::move(path)) {
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) throw system_error(path_ + ": cannot open");
    // read(2) of a directory fails only later, with EISDIR: say it now.
    if (S_ISDIR(st.st_mode)) throw ImportError(path_ + ": cannot open: is a directory");
    size_ = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw system_error(path_ + ": cannot open");
}

NdjsonReader::~NdjsonReader() { close(fd_); }

bool NdjsonReader::fill() {
    if (eof_) return false;
    // Keep the unread part, at the front; grow only for a line longer than
    // the buffer.
    std::size_t unread = end_ - begin_;
    if (unread > 0) std::memmove(buffer_.data(), buffer_.data() + begin_, unread);
    begin_ = 0;
    end_ = unread;
    if (buffer_.size() < unread + kReadSize) buffer_.resize(std::max(2 * unread, unread + kReadSize));
    ssize_t got;
    do {
        got = read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    } while (got < 0 && errno == EINTR);
    if (got < 0) throw ImportError(path_ + ": read error after line " + std::to_string(line_));
    if (got == 0) eof_ = true;
    end_ += static_cast<std::size_t>(got);
    return got > 0;
}

bool NdjsonReader::next_line(std::string_view& line) {
    for (;;) {
        const char* start = buffer_.data() + begin_;
        const char* newline = nullptr;
        if (begin_ < end_) newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
        if (!newline && fill()) continue;
        if (!newline && begin_ == end_) return false;
        start = buffer_.data() + begin_;  // fill() may have moved it
        // The last line may lack its newline.
        std::size_t length = newline ? static_cast<std::size_t>(newline - start) : end_ - begin_;
        line = std::string_view(start, length);
        begin_ += length + (newline ? 1 : 0);
        offset_ += length + (newline ? 1 : 0);
        ++line_;
        if (!is_blank(line)) return true;
    }
}

bool NdjsonReader::next_lines(std::string_view& lines, std::size_t limit) {
    for (;;) {
        const char* start = buffer_.data() + begin_;
        std::size_t unread = end_ - begin_;
        std::size_t scan = std::min(unread, limit);
        auto* last = static_cast<const char*>(scan ? memrchr(start, '\n', scan) : nullptr);
        if (!last && unread > limit)  // a line longer than the limit: it alone
            last = static_cast<const char*>(std::memchr(start + limit, '\n', unread - limit));
        if (last || (eof_ && unread > 0)) {
            std::size_t length = last ? static_cast<std::size_t>(last + 1 - start) : unread;
            lines = std::string_view(start, length);
            begin_ += length;
            offset_ += length;
            const char* end = start + length;
            for (const char* p = start; (p = static_cast<const char*>(
                                             std::memchr(p, '\n', static_cast<std::size_t>(end - p))));
                 ++p)
                ++line_;
            if (!last) ++line_;  // the last line, without its newline
            return true;
        }
        if (!fill() && begin_ == end_) return false;
    }
}

bool NdjsonReader::next(Record& out) {
    std::string_view line;
    if (!next_line(line)) return false;
    out.line = line_;
    out.object = parse(line);
    return true;
}

nlohmann::json parse_line(std::string_view text, const Location& where) {
    std::vector<std::string> keys;
    std::string repeated;
    // Only depth 1 matters: every field of our records is top-level.
    auto watch_keys = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& key) {
        // dump() and the rule compiler recurse over what is parsed: a
        // hostile line must not get to overflow the stack.
        if (depth > kMaxJsonDepth)
            throw ImportError(where, "invalid JSON: nested deeper than " +
                                           std::to_string(kMaxJsonDepth) + " levels");
        if (event != nlohmann::json::parse_event_t::key || depth != 1) return true;
        for (const auto& seen : keys)
            if (seen == key.get_ref<const std::string&>()) repeated = seen;
        keys.push_back(key.get<std::string>());
        return true;
    };
    // nlohmann stops at a NUL byte as if the text ended there: what follows
    // would be dropped without a word. JSON has no place for a raw NUL.
    if (auto nul = text.find('\0'); nul != std::string::npos)
        throw ImportError(where, "invalid JSON: a NUL byte at column " + std::to_string(nul + 1));
    nlohmann::json value;
    try {
        value = nlohmann::json::parse(text, watch_keys);
    } catch (const nlohmann::json::exception& e) {  // parse_error, out_of_range (1e999)
        throw ImportError(where, "invalid JSON: " + parse_detail(e));
    }
    if (!value.is_object())
        throw ImportError(where, std::string("expected a JSON object, got ") + value.type_name());
    if (!repeated.empty()) throw ImportError(where, "field " + quote(repeated) + " given twice");
    return value;
}

}  // namespace segsync
