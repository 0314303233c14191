#include "segcore/schema.h"

#include "segcore/experiments.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace segcore::schema {
namespace {

void put_le(std::string& out, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t get_le(const char* p, int bytes) {
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i)
        value |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return value;
}

void put_text(std::string& out, std::string_view text) {
    put_le(out, text.size(), 2);
    out.append(text);
}

// Reads a u16-length-prefixed string, advancing `bytes`; no allocation.
std::optional<std::string_view> take_text_view(std::string_view& bytes) {
    if (bytes.size() < 2) return std::nullopt;
    auto len = static_cast<std::size_t>(get_le(bytes.data(), 2));
    bytes.remove_prefix(2);
    if (bytes.size() < len) return std::nullopt;
    std::string_view text = bytes.substr(0, len);
    bytes.remove_prefix(len);
    return text;
}

std::optional<std::string> take_text(std::string_view& bytes) {
    auto text = take_text_view(bytes);
    if (!text) return std::nullopt;
    return std::string(*text);
}

}  // namespace

std::optional<VisitorKind> parse_visitor_kind(std::string_view text) {
    if (text == "anonymous") return VisitorKind::anonymous;
    if (text == "known") return VisitorKind::known;
    return std::nullopt;
}

std::string_view to_string(VisitorKind kind) {
    return kind == VisitorKind::known ? "known" : "anonymous";
}

std::size_t encode_visitor_key(VisitorKind kind, std::string_view id, char* out) {
    if (id.empty() || id.size() > kMaxVisitorIdSize) return 0;
    out[0] = static_cast<char>(kind);
    std::memcpy(out + 1, id.data(), id.size());
    return id.size() + 1;
}

std::optional<VisitorKind> decode_visitor_key_kind(std::string_view key) {
    if (key.size() < 2) return std::nullopt;
    if (key[0] == static_cast<char>(VisitorKind::anonymous)) return VisitorKind::anonymous;
    if (key[0] == static_cast<char>(VisitorKind::known)) return VisitorKind::known;
    return std::nullopt;
}

bool is_valid_segment_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxSegmentNameSize) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool is_valid_block_name(std::string_view name) { return is_valid_segment_name(name); }

namespace {

// "experiment:variant", as in $segedge_experiments.
bool is_valid_variant(std::string_view variant) {
    if (variant.empty()) return true;
    std::size_t colon = variant.find(':');
    return variant.size() <= kMaxVariantNameSize && colon != std::string_view::npos &&
           experiments::is_valid_name(variant.substr(0, colon)) &&
           experiments::is_valid_variant_name(variant.substr(colon + 1));
}

}  // namespace

std::size_t encode_block_key(std::string_view block, std::uint32_t segment, std::string_view variant,
                             char* out) {
    if (!is_valid_block_name(block) || !is_valid_variant(variant)) return 0;
    char* p = out;
    std::memcpy(p, block.data(), block.size());
    p += block.size();
    *p++ = '\0';
    for (int i = 0; i < 4; ++i) *p++ = static_cast<char>((segment >> (8 * (3 - i))) & 0xff);
    if (!variant.empty()) std::memcpy(p, variant.data(), variant.size());  // data() may be null
    return static_cast<std::size_t>(p - out) + variant.size();
}

std::optional<BlockKey> decode_block_key(std::string_view key) {
    std::size_t separator = key.find('\0');
    if (separator == std::string_view::npos || key.size() < separator + 5) return std::nullopt;
    BlockKey decoded;
    decoded.block = key.substr(0, separator);
    decoded.segment = *decode_segment_key(key.substr(separator + 1, 4));
    decoded.variant = key.substr(separator + 5);
    if (!is_valid_block_name(decoded.block) || !is_valid_variant(decoded.variant)) return std::nullopt;
    return decoded;
}

bool operator==(const SegmentDef& a, const SegmentDef& b) {
    return a.id == b.id && a.name == b.name && a.description == b.description &&
           a.owner == b.owner && a.priority == b.priority && a.rule == b.rule;
}

std::string encode_segment_key(std::uint32_t id) {
    std::string key(4, '\0');
    for (int i = 0; i < 4; ++i) key[i] = static_cast<char>((id >> (8 * (3 - i))) & 0xff);
    return key;
}

std::optional<std::uint32_t> decode_segment_key(std::string_view key) {
    if (key.size() != 4) return std::nullopt;
    std::uint32_t id = 0;
    for (char c : key) id = (id << 8) | static_cast<unsigned char>(c);
    return id;
}

// Layout: i32 priority, then name, description, owner as u16-length text.
std::string encode_segment(const SegmentDef& def) {
    std::string out;
    put_le(out, static_cast<std::uint32_t>(def.priority), 4);
    put_text(out, def.name);
    put_text(out, def.description);
    put_text(out, def.owner);
    if (!def.rule.empty()) put_text(out, def.rule);
    return out;
}

std::optional<SegmentDef> decode_segment(std::uint32_t id, std::string_view bytes) {
    if (bytes.size() < 4) return std::nullopt;
    SegmentDef def;
    def.id = id;
    def.priority = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_le(bytes.data(), 4)));
    bytes.remove_prefix(4);
    auto name = take_text(bytes);
    auto description = take_text(bytes);
    auto owner = take_text(bytes);
    std::optional<std::string> rule;
    if (!bytes.empty()) rule = take_text(bytes);
    if (!name || !description || !owner || (rule && rule->empty()) || !bytes.empty())
        return std::nullopt;
    if (!is_valid_segment_name(*name)) return std::nullopt;
    def.name = std::move(*name);
    def.description = std::move(*description);
    def.owner = std::move(*owner);
    if (rule) def.rule = std::move(*rule);
    return def;
}

bool is_valid_attribute_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxAttributeNameSize) return false;
    if (name[0] >= '0' && name[0] <= '9') return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) return false;
    }
    return true;
}

std::string_view to_string(AttributeType type) {
    return type == AttributeType::text ? "text" : "number";
}

bool operator==(const AttributeDef& a, const AttributeDef& b) {
    return a.id == b.id && a.type == b.type && a.name == b.name;
}

bool operator==(const AttributeValue& a, const AttributeValue& b) {
    if (a.id != b.id || a.type != b.type) return false;
    return a.type == AttributeType::text ? a.text == b.text : a.number == b.number;
}

std::string encode_attribute_key(std::uint16_t id) {
    return std::string{static_cast<char>(id >> 8), static_cast<char>(id & 0xff)};
}

std::optional<std::uint16_t> decode_attribute_key(std::string_view key) {
    if (key.size() != 2) return std::nullopt;
    auto id = static_cast<std::uint16_t>((static_cast<unsigned char>(key[0]) << 8) |
                                         static_cast<unsigned char>(key[1]));
    if (id == 0) return std::nullopt;
    return id;
}

std::string encode_attribute(const AttributeDef& def) {
    return static_cast<char>(def.type) + def.name;
}

std::optional<AttributeDef> decode_attribute(std::uint16_t id, std::string_view bytes) {
    if (bytes.empty()) return std::nullopt;
    auto type = static_cast<AttributeType>(bytes[0]);
    if (type != AttributeType::number && type != AttributeType::text) return std::nullopt;
    std::string_view name = bytes.substr(1);
    if (!is_valid_attribute_name(name)) return std::nullopt;
    return AttributeDef{id, type, std::string(name)};
}

std::string encode_profile(const std::vector<std::uint32_t>& segment_ids,
                           const std::vector<AttributeValue>& attributes) {
    std::string out;
    encode_profile(segment_ids.data(), segment_ids.size(), attributes.data(), attributes.size(), out);
    return out;
}

namespace {

char* store_le(char* p, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) *p++ = static_cast<char>((value >> (8 * i)) & 0xff);
    return p;
}

}  // namespace

// Sized first and written in place: segsync encodes millions of these.
void encode_profile(const std::uint32_t* segment_ids, std::size_t segment_count,
                    const AttributeValue* attributes, std::size_t attribute_count, std::string& out) {
    const AttributeValue* attributes_end = attributes + attribute_count;
    std::size_t size = 2 + 4 * segment_count + (attribute_count ? 2 : 0);
    for (const auto* a = attributes; a != attributes_end; ++a)
        size += 3 + (a->type == AttributeType::text ? 2 + a->text.size() : 8);
    out.resize(size);
    char* p = store_le(out.data(), segment_count, 2);
    for (std::size_t i = 0; i < segment_count; ++i) p = store_le(p, segment_ids[i], 4);
    if (attribute_count == 0) return;
    p = store_le(p, attribute_count, 2);
    for (const auto* a = attributes; a != attributes_end; ++a) {
        p = store_le(p, a->id, 2);
        *p++ = static_cast<char>(a->type);
        if (a->type == AttributeType::text) {
            p = store_le(p, a->text.size(), 2);
            std::memcpy(p, a->text.data(), a->text.size());
            p += a->text.size();
        } else {
            std::uint64_t bits;
            std::memcpy(&bits, &a->number, sizeof bits);
            p = store_le(p, bits, 8);
        }
    }
}

std::optional<std::size_t> profile_segment_count(std::string_view bytes) {
    if (bytes.size() < 2) return std::nullopt;
    auto count = static_cast<std::size_t>(get_le(bytes.data(), 2));
    std::size_t ids_end = 2 + 4 * count;
    if (count > kMaxSegmentsPerProfile || bytes.size() < ids_end) return std::nullopt;
    // Anything after the ids is an attribute section, at least its count.
    if (bytes.size() != ids_end && bytes.size() < ids_end + 2) return std::nullopt;
    return count;
}

namespace {

// One attribute of a profile's attribute section, advancing `bytes`.
bool take_attribute_view(std::string_view& bytes, std::uint16_t& id, AttributeView& value) {
    if (bytes.size() < 3) return false;
    id = static_cast<std::uint16_t>(get_le(bytes.data(), 2));
    value.type = static_cast<AttributeType>(bytes[2]);
    bytes.remove_prefix(3);
    if (value.type == AttributeType::text) {
        auto text = take_text_view(bytes);
        if (!text || text->size() > kMaxAttributeTextSize) return false;
        value.text = *text;
    } else if (value.type == AttributeType::number) {
        if (bytes.size() < 8) return false;
        std::uint64_t bits = get_le(bytes.data(), 8);
        std::memcpy(&value.number, &bits, sizeof bits);
        if (!std::isfinite(value.number)) return false;
        bytes.remove_prefix(8);
    } else {
        return false;
    }
    return true;
}

}  // namespace

std::optional<ProfileRecord> decode_profile_record(std::string_view bytes) {
    ProfileView view;
    if (!decode_profile_view(bytes, view)) return std::nullopt;
    ProfileRecord record;
    record.segment_ids.assign(view.segment_ids, view.segment_ids + view.segment_count);
    for (std::size_t i = 0; i < view.attribute_count; ++i) {
        const auto& a = view.attributes[i];
        record.attributes.push_back({a.id, a.value.type, a.value.number, std::string(a.value.text)});
    }
    return record;
}

bool decode_profile_view(std::string_view bytes, ProfileView& view) {
    auto count = profile_segment_count(bytes);
    if (!count) return false;
    view.segment_count = decode_profile(bytes, view.segment_ids, *count);
    view.attribute_count = 0;
    bytes.remove_prefix(2 + 4 * *count);
    if (bytes.empty()) return true;
    auto attributes = static_cast<std::size_t>(get_le(bytes.data(), 2));
    bytes.remove_prefix(2);
    if (attributes == 0 || attributes > kMaxAttributesPerProfile) return false;
    for (std::size_t i = 0; i < attributes; ++i) {
        auto& attribute = view.attributes[i];
        attribute.value = AttributeView{};
        if (!take_attribute_view(bytes, attribute.id, attribute.value) || attribute.id == 0) return false;
        if (i > 0 && view.attributes[i - 1].id >= attribute.id) return false;
    }
    view.attribute_count = attributes;
    return bytes.empty();
}

AttributeReader::AttributeReader(std::string_view bytes) noexcept {
    auto count = profile_segment_count(bytes);
    if (!count) return;
    bytes.remove_prefix(2 + 4 * *count);
    if (bytes.size() < 2) return;
    left_ = std::min<std::size_t>(get_le(bytes.data(), 2), kMaxAttributesPerProfile);
    rest_ = bytes.substr(2);
}

bool AttributeReader::next(std::uint16_t& id, AttributeView& out) noexcept {
    if (left_ == 0) return false;
    --left_;
    if (take_attribute_view(rest_, id, out)) return true;
    left_ = 0;
    return false;
}

std::size_t decode_profile(std::string_view bytes, std::uint32_t* out, std::size_t out_capacity) {
    auto count = static_cast<std::size_t>(get_le(bytes.data(), 2));
    if (count > out_capacity) count = out_capacity;
    for (std::size_t i = 0; i < count; ++i)
        out[i] = static_cast<std::uint32_t>(get_le(bytes.data() + 2 + 4 * i, 4));
    return count;
}

std::string encode_u64(std::uint64_t value) {
    std::string out;
    put_le(out, value, 8);
    return out;
}

std::optional<std::uint64_t> decode_u64(std::string_view bytes) {
    if (bytes.size() != 8) return std::nullopt;
    return get_le(bytes.data(), 8);
}

std::string encode_u32(std::uint32_t value) {
    std::string out;
    put_le(out, value, 4);
    return out;
}

std::optional<std::uint32_t> decode_u32(std::string_view bytes) {
    if (bytes.size() != 4) return std::nullopt;
    return static_cast<std::uint32_t>(get_le(bytes.data(), 4));
}

}  // namespace segcore::schema
