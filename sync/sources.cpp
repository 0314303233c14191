#include "sync/sources.h"

#include <sys/stat.h>

#include <cerrno>
#include <string_view>
#include <vector>

namespace segsync {
namespace {

bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

// nlohmann's messages start with "[json.exception...] parse error at line 1,
// column N: "; the line is always 1 here, so keep only the explanation.
std::string parse_detail(const nlohmann::json::parse_error& e) {
    std::string_view text = e.what();
    std::size_t colon = text.find(": ");
    return std::string(colon == std::string_view::npos ? text : text.substr(colon + 2));
}

}  // namespace

NdjsonReader::NdjsonReader(std::string path) : path_(std::move(path)) {
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) throw system_error(path_ + ": cannot open");
    // An ifstream "opens" a directory and then reads nothing: that would pass
    // as an empty feed.
    if (S_ISDIR(st.st_mode)) throw ImportError(path_ + ": cannot open: is a directory");
    size_ = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
    errno = 0;
    in_.open(path_, std::ios::binary);
    if (!in_) throw system_error(path_ + ": cannot open");
}

bool NdjsonReader::next(Record& out) {
    while (std::getline(in_, buffer_)) {
        ++line_;
        offset_ += buffer_.size() + (in_.eof() ? 0 : 1);
        if (is_blank(buffer_)) continue;
        out.line = line_;
        out.object = parse(buffer_);
        return true;
    }
    if (in_.bad()) throw ImportError(path_ + ": read error after line " + std::to_string(line_));
    return false;
}

nlohmann::json NdjsonReader::parse(const std::string& text) const {
    std::vector<std::string> keys;
    std::string repeated;
    // Only depth 1 matters: every field of our records is top-level.
    auto watch_keys = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& key) {
        // dump() and the rule compiler recurse over what is parsed: a
        // hostile line must not get to overflow the stack.
        if (depth > kMaxJsonDepth)
            throw ImportError(where(), "invalid JSON: nested deeper than " +
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
        throw ImportError(where(), "invalid JSON: a NUL byte at column " + std::to_string(nul + 1));
    nlohmann::json value;
    try {
        value = nlohmann::json::parse(text, watch_keys);
    } catch (const nlohmann::json::parse_error& e) {
        throw ImportError(where(), "invalid JSON: " + parse_detail(e));
    } catch (const nlohmann::json::out_of_range&) {  // 1e999: no double holds it
        throw ImportError(where(), "invalid JSON: a number is out of range");
    }
    if (!value.is_object())
        throw ImportError(where(), std::string("expected a JSON object, got ") + value.type_name());
    if (!repeated.empty()) throw ImportError(where(), "field " + quote(repeated) + " given twice");
    return value;
}

}  // namespace segsync
