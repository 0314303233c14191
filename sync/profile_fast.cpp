#include "sync/profile_fast.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "segcore/visitor_id.h"

namespace segsync {
namespace {

namespace schema = segcore::schema;

constexpr std::uint64_t kOnes = 0x0101010101010101;
constexpr std::uint64_t kHighs = 0x8080808080808080;

// High bit set in each byte of `w` below `n` (n <= 0x80), and maybe in
// bytes above such a byte: the lowest one set is exact.
constexpr std::uint64_t bytes_below(std::uint64_t w, unsigned n) { return (w - kOnes * n) & ~w & kHighs; }

// Bytes that end a plain string run: '"', '\\', control characters and
// non-ASCII (the latter two only need a closer look).
constexpr std::uint64_t string_stops(std::uint64_t w) {
    return bytes_below(w ^ (kOnes * '"'), 1) | bytes_below(w ^ (kOnes * '\\'), 1) |
           bytes_below(w, 0x20) | (w & kHighs);
}

std::uint64_t load8(const char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;  // little-endian: byte 0 is the low byte
}

// Names are short: usually one multiply.
std::uint64_t hash_name(std::string_view name, std::uint64_t head) {
    constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15;
    std::uint64_t h = (name.size() ^ head) * kMultiplier;
    for (std::size_t i = 8; i < name.size(); i += 8) h = (h ^ NameIndex::head_of(name.substr(i))) * kMultiplier;
    return h >> 32;  // a product's high bits depend on all the input's bits
}

// `text` starts with `literal`.
bool starts_with(std::string_view text, std::string_view literal) {
    return text.size() >= literal.size() && std::memcmp(text.data(), literal.data(), literal.size()) == 0;
}

static_assert(schema::kMaxAttributes <= 0xffff, "attribute ids fit in 16 bits");

}  // namespace

void encode_profile_record(const Profile& profile, std::string& key, std::string& value) {
    key.resize(schema::kMaxKeySize);
    key.resize(schema::encode_visitor_key(profile.visitor.kind, profile.visitor.id, key.data()));
    if (key.empty()) throw ImportError("internal error: unvalidated visitor id");
    schema::encode_profile(profile.segment_ids.data(), profile.segment_ids.size(),
                           profile.attributes.data(), profile.attributes.size(), value);
}

// Without a call to memcpy: names are short.
std::uint64_t NameIndex::head_of(std::string_view name) {
    if (name.size() >= 8) return load8(name.data());
    std::uint64_t head = 0;
    for (std::size_t i = 0; i < name.size(); ++i)
        head |= static_cast<std::uint64_t>(static_cast<unsigned char>(name[i])) << (8 * i);
    return head;
}

std::size_t NameIndex::slot_of(std::string_view name, std::uint64_t head) const {
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash_name(name, head) & mask;; i = (i + 1) & mask) {
        const Slot& slot = slots_[i];
        if (!slot.used) return i;
        if (slot.head == head && slot.name.size() == name.size() &&
            (name.size() <= 8 || std::memcmp(slot.name.data() + 8, name.data() + 8, name.size() - 8) == 0))
            return i;
    }
}

void NameIndex::insert(std::string_view name, std::uint32_t value) {
    if (2 * (size_ + 1) > slots_.size()) {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(std::max<std::size_t>(16, 2 * old.size()), Slot{});
        size_ = 0;
        for (auto& slot : old)
            if (slot.used) insert(slot.name, slot.value);
    }
    std::uint64_t head = head_of(name);
    Slot& slot = slots_[slot_of(name, head)];
    if (!slot.used) ++size_;
    slot = Slot{std::string(name), head, value, true};
}

const std::uint32_t* NameIndex::find(std::string_view name, std::uint64_t head) const {
    if (slots_.empty()) return nullptr;
    const Slot& slot = slots_[slot_of(name, head)];
    return slot.used ? &slot.value : nullptr;
}

// JSON tokens as nlohmann reads them, for the subset the fast path takes;
// every method returns false for anything else, and the line goes to the
// full parser.
class FastProfileParser::Scanner {
public:
    explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    bool consume(char c) {
        if (p_ != end_ && *p_ == c) {  // compact NDJSON: no space to skip
            ++p_;
            return true;
        }
        skip_space();
        if (p_ == end_ || *p_ != c) return false;
        ++p_;
        return true;
    }

    bool at_end() {
        skip_space();
        return p_ == end_;
    }

    bool next_is(char c) {
        skip_space();
        return p_ != end_ && *p_ == c;
    }

    // The first character of the quoted name that comes next, or 0.
    char name_initial() {
        skip_space();
        return end_ - p_ >= 2 && *p_ == '"' ? p_[1] : '\0';
    }

    // The first 8 bytes of `text`, a string this scanner returned,
    // zero-padded: one load when the line goes on long enough.
    std::uint64_t head(std::string_view text) const {
        if (text.size() >= 8 || end_ - text.data() < 8) return NameIndex::head_of(text);
        return load8(text.data()) & ((std::uint64_t{1} << (8 * text.size())) - 1);
    }

    // `literal` (a quoted name, or a quoted string value) and what follows
    // it; false, consuming nothing, for anything else.
    bool literal(std::string_view quoted) {
        skip_space();
        if (!starts_with(rest(), quoted)) return false;
        p_ += quoted.size();
        return true;
    }

    // A string without escapes: its bytes are its value. Control characters
    // and malformed UTF-8 are JSON errors: the full parser reports them.
    bool string(std::string_view& out) {
        if (!consume('"')) return false;
        const char* start = p_;
        for (;;) {
            skip_plain();
            if (p_ == end_) return false;
            auto c = static_cast<unsigned char>(*p_);
            if (c == '"') break;
            if (c == '\\' || c < 0x20) return false;
            std::size_t length = utf8_sequence();
            if (length == 0) return false;
            p_ += length;
        }
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return true;
    }

    // A JSON number, as nlohmann converts it to the double an attribute
    // stores: integers exactly (then rounded to double), others by strtod.
    // Both round correctly, as does from_chars.
    bool number(double& out) {
        skip_space();
        const char* start = p_;
        if (p_ != end_ && *p_ == '-') ++p_;
        if (p_ != end_ && *p_ == '0') {
            ++p_;
        } else if (!digits()) {
            return false;
        }
        // Most numbers are small integers: exact in a double, no conversion
        // needed.
        std::size_t length = static_cast<std::size_t>(p_ - start);
        if (length <= 15 && (p_ == end_ || (*p_ != '.' && *p_ != 'e' && *p_ != 'E'))) {
            bool negative = *start == '-';
            std::int64_t value = 0;
            for (const char* d = start + negative; d != p_; ++d) value = value * 10 + (*d - '0');
            out = static_cast<double>(negative ? -value : value) + 0.0;  // "-0" is +0.0, as below
            return true;
        }
        bool integer = true;
        if (p_ != end_ && *p_ == '.') {
            ++p_;
            if (!digits()) return false;
            integer = false;
        }
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (!digits()) return false;
            integer = false;
        }
        auto [end, error] = std::from_chars(start, p_, out);
        if (error != std::errc() || end != p_ || !std::isfinite(out)) return false;
        // nlohmann reads "-0" as the integer 0, so stores +0.0.
        if (integer) out += 0.0;
        return true;
    }

private:
    std::string_view rest() const { return std::string_view(p_, static_cast<std::size_t>(end_ - p_)); }

    // Past plain ASCII string bytes, eight at a time where the line allows.
    void skip_plain() {
        while (end_ - p_ >= 8) {
            std::uint64_t stops = string_stops(load8(p_));
            if (stops) {
                p_ += __builtin_ctzll(stops) / 8;
                return;
            }
            p_ += 8;
        }
        while (p_ != end_) {
            auto c = static_cast<unsigned char>(*p_);
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return;
            ++p_;
        }
    }

    void skip_space() {
        while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' &&
               (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n'))
            ++p_;
    }

    bool digits() {
        const char* start = p_;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        return p_ != start;
    }

    // The length of the well-formed UTF-8 sequence at p_ (RFC 3629: no
    // overlong forms, no surrogates, nothing above U+10FFFF, the ranges
    // nlohmann accepts), or 0.
    std::size_t utf8_sequence() const {
        auto byte = [this](std::size_t i) {
            return p_ + i < end_ ? static_cast<unsigned char>(p_[i]) : 0u;
        };
        auto in = [](unsigned c, unsigned low, unsigned high) { return c >= low && c <= high; };
        unsigned c0 = byte(0), c1 = byte(1), c2 = byte(2), c3 = byte(3);
        if (in(c0, 0xC2, 0xDF)) return in(c1, 0x80, 0xBF) ? 2 : 0;
        if (in(c0, 0xE0, 0xEF)) {
            bool second = c0 == 0xE0   ? in(c1, 0xA0, 0xBF)
                          : c0 == 0xED ? in(c1, 0x80, 0x9F)
                                       : in(c1, 0x80, 0xBF);
            return second && in(c2, 0x80, 0xBF) ? 3 : 0;
        }
        if (in(c0, 0xF0, 0xF4)) {
            bool second = c0 == 0xF0   ? in(c1, 0x90, 0xBF)
                          : c0 == 0xF4 ? in(c1, 0x80, 0x8F)
                                       : in(c1, 0x80, 0xBF);
            return second && in(c2, 0x80, 0xBF) && in(c3, 0x80, 0xBF) ? 4 : 0;
        }
        return 0;
    }

    const char* p_;
    const char* end_;
};

FastProfileParser::FastProfileParser(const Catalogue& catalogue, const AttributeCatalogue& attributes,
                                     std::mutex& attributes_lock)
    : attributes_(attributes), attributes_lock_(attributes_lock), rank_(catalogue.segments().size() + 1) {
    std::vector<std::uint32_t> ordered;
    for (const auto& def : catalogue.segments()) {
        segment_ids_.insert(def.name, def.id);
        ordered.push_back(def.id);
    }
    catalogue.order(ordered);
    for (std::size_t i = 0; i < ordered.size(); ++i) rank_[ordered[i]] = static_cast<std::uint32_t>(i);
}

bool FastProfileParser::parse(std::string_view line, std::string& key, std::string& value) {
    Scanner in(line);
    std::string_view id;
    bool has_id = false, has_kind = false, has_segments = false, has_attributes = false;
    value_count_ = 0;
    if (!in.consume('{')) return false;
    std::optional<schema::VisitorKind> kind;
    do {
        // Field names compared whole: anything else (another field, an
        // escape) is for the full parser, as is a field given twice.
        switch (in.name_initial()) {
            case 'i':
                if (has_id || !in.literal("\"id\"") || !in.consume(':') || !in.string(id)) return false;
                has_id = true;
                break;
            case 'k':
                if (has_kind || !in.literal("\"kind\"") || !in.consume(':')) return false;
                if (in.literal("\"anonymous\""))
                    kind = schema::VisitorKind::anonymous;
                else if (in.literal("\"known\""))
                    kind = schema::VisitorKind::known;
                else
                    return false;
                has_kind = true;
                break;
            case 's':
                if (has_segments || !in.literal("\"segments\"") || !in.consume(':') || !parse_segments(in))
                    return false;
                has_segments = true;
                break;
            case 'a':
                if (has_attributes || !in.literal("\"attributes\"") || !in.consume(':') ||
                    !parse_attributes(in))
                    return false;
                has_attributes = true;
                break;
            default:
                return false;
        }
    } while (in.consume(','));
    if (!in.consume('}') || !in.at_end() || !has_id || !has_kind || !has_segments) return false;

    // check_visitor_id's rules, without its messages.
    if (id.empty() || id.size() > schema::kMaxVisitorIdSize) return false;
    if (*kind == schema::VisitorKind::anonymous && !segcore::is_visitor_id(id)) return false;
    // Insertion sort: a profile lists a few segments.
    for (std::size_t i = 1; i < segments_.size(); ++i) {
        std::uint32_t id = segments_[i];
        std::size_t j = i;
        for (; j > 0 && rank_[segments_[j - 1]] > rank_[id]; --j) segments_[j] = segments_[j - 1];
        segments_[j] = id;
    }
    if (std::adjacent_find(segments_.begin(), segments_.end()) != segments_.end()) return false;
    auto values = values_.begin();
    auto values_end = values + static_cast<std::ptrdiff_t>(value_count_);
    std::sort(values, values_end, [](const auto& a, const auto& b) { return a.id < b.id; });
    auto same_id = [](const auto& a, const auto& b) { return a.id == b.id; };
    if (std::adjacent_find(values, values_end, same_id) != values_end) return false;

    key.resize(1 + id.size());
    schema::encode_visitor_key(*kind, id, key.data());
    schema::encode_profile(segments_.data(), segments_.size(), values_.data(), value_count_, value);
    return true;
}

bool FastProfileParser::parse_segments(Scanner& in) {
    segments_.clear();
    if (!in.consume('[')) return false;
    if (in.consume(']')) return true;
    do {
        std::string_view name;
        if (!in.string(name) || segments_.size() == schema::kMaxSegmentsPerProfile) return false;
        const std::uint32_t* id = segment_ids_.find(name, in.head(name));
        if (!id) return false;
        segments_.push_back(*id);
    } while (in.consume(','));
    return in.consume(']');
}

bool FastProfileParser::parse_attributes(Scanner& in) {
    if (!in.consume('{')) return false;
    if (in.consume('}')) return true;
    do {
        if (value_count_ == schema::kMaxAttributesPerProfile) return false;
        if (value_count_ == values_.size()) values_.emplace_back();
        if (!parse_attribute(in, values_[value_count_])) return false;
        ++value_count_;
    } while (in.consume(','));
    return in.consume('}');
}

bool FastProfileParser::parse_attribute(Scanner& in, schema::AttributeValue& out) {
    std::string_view name;
    if (!in.string(name) || !in.consume(':')) return false;
    if (in.next_is('"')) {
        std::string_view text;
        if (!in.string(text) || text.size() > schema::kMaxAttributeTextSize) return false;
        out.type = schema::AttributeType::text;
        out.text.assign(text);
    } else {
        if (!in.number(out.number)) return false;
        out.type = schema::AttributeType::number;
        out.text.clear();
    }
    out.id = attribute_id(name, in.head(name), out.type);
    return out.id != 0;
}

// Only names already catalogued with this type: a new name gets its id from
// the full parser, which interns a line's names in its own order. Lines are
// handed to the full parser in input order, so a name catalogued when this
// line is parsed came from an earlier line.
std::uint16_t FastProfileParser::attribute_id(std::string_view name, std::uint64_t head,
                                              schema::AttributeType type) {
    const std::uint32_t* known = attribute_ids_.find(name, head);
    if (!known) {
        std::lock_guard<std::mutex> lock(attributes_lock_);
        auto id = attributes_.find(name);
        if (!id) return 0;
        attribute_ids_.insert(name, *id | static_cast<std::uint32_t>(attributes_.by_id(*id)->type) << 16);
        known = attribute_ids_.find(name, head);
    }
    if (static_cast<schema::AttributeType>(*known >> 16) != type) return 0;
    return static_cast<std::uint16_t>(*known & 0xffff);
}

}  // namespace segsync
