#include "sync/validate.h"

#include <algorithm>
#include <cmath>
#include <climits>
#include <initializer_list>

#include "segcore/block_scanner.h"
#include "segcore/rules.h"
#include "segcore/visitor_id.h"

namespace segsync {
namespace {

using nlohmann::json;
namespace schema = segcore::schema;

std::string field_name(std::string_view name) { return "field \"" + std::string(name) + "\""; }

std::string optional_text(const json& object, std::string_view name, const Location& where) {
    auto it = object.find(name);
    if (it == object.end()) return {};
    const std::string& text = as_string(*it, name, where);
    if (text.size() > kMaxSegmentTextSize)
        throw ImportError(where, field_name(name) + " is " + std::to_string(text.size()) +
                                     " bytes, at most " + std::to_string(kMaxSegmentTextSize));
    return text;
}

std::int32_t priority(const json& object, const Location& where) {
    auto it = object.find("priority");
    if (it == object.end()) return 0;
    if (!it->is_number_integer())
        throw ImportError(where, field_name("priority") + " must be an integer, got " +
                                     (it->is_number() ? std::string("a fraction") : it->type_name()));
    bool fits = it->is_number_unsigned() ? it->get<std::uint64_t>() <= INT32_MAX
                                         : it->get<std::int64_t>() >= INT32_MIN &&
                                               it->get<std::int64_t>() <= INT32_MAX;
    if (!fits)
        throw ImportError(where, field_name("priority") + " " + it->dump() +
                                     " does not fit in a 32-bit signed integer");
    return static_cast<std::int32_t>(it->get<std::int64_t>());
}

// Segment and block names share one rule (schema::is_valid_segment_name).
std::string name_field(const json& object, std::string_view field, std::string_view kind,
                       const Location& where) {
    const std::string& name = as_string(required(object, field, where), field, where);
    if (!schema::is_valid_segment_name(name))
        throw ImportError(where, "invalid " + std::string(kind) + " name " + quote(name) + ": use 1.." +
                                     std::to_string(schema::kMaxSegmentNameSize) +
                                     " characters of a-z, 0-9, _ and -");
    return name;
}

void check_anonymous_id(const std::string& id, const Location& where) {
    if (!segcore::is_visitor_id(id))
        throw ImportError(where, "anonymous id " + quote(id) +
                                     " can never match a cookie: the module only accepts ids as it "
                                     "issues them, " +
                                     std::to_string(segcore::kVisitorIdLength) +
                                     " base64url characters encoding 128 bits");
}

segcore::schema::AttributeValue attribute_value(const json& value, std::uint16_t id,
                                                schema::AttributeType type, const std::string& name,
                                                const Location& where) {
    schema::AttributeValue out;
    out.id = id;
    out.type = type;
    if (type == schema::AttributeType::text) {
        out.text = value.get<std::string>();
        if (out.text.size() > schema::kMaxAttributeTextSize)
            throw ImportError(where, "attribute " + quote(name) + " is " +
                                         std::to_string(out.text.size()) + " bytes, at most " +
                                         std::to_string(schema::kMaxAttributeTextSize));
    } else {
        out.number = value.get<double>();
        if (!std::isfinite(out.number))
            throw ImportError(where, "attribute " + quote(name) + " is not a finite number");
    }
    return out;
}

}  // namespace

// Strict on purpose: an unknown field is almost always a typo of a known one,
// and silently ignoring it would drop data.
void check_fields(const json& object, std::initializer_list<std::string_view> allowed,
                  const Location& where) {
    for (const auto& item : object.items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
        std::string names;
        for (auto name : allowed) names += (names.empty() ? "" : ", ") + std::string(name);
        throw ImportError(where, "unknown field " + quote(item.key()) + " (allowed: " + names + ")");
    }
}

const json& required(const json& object, std::string_view name, const Location& where) {
    auto it = object.find(name);
    if (it == object.end()) throw ImportError(where, "missing " + field_name(name));
    return *it;
}

const std::string& as_string(const json& value, std::string_view name, const Location& where) {
    if (!value.is_string())
        throw ImportError(where, field_name(name) + " must be a string, got " + value.type_name());
    return value.get_ref<const std::string&>();
}

void check_visitor_id(const Visitor& visitor, const Location& where) {
    if (visitor.id.empty()) throw ImportError(where, field_name("id") + " must not be empty");
    // Length first: a long anonymous id should hear about the LMDB limit, not
    // about the cookie syntax.
    if (visitor.id.size() > schema::kMaxVisitorIdSize)
        throw ImportError(where, "key too long: " + std::to_string(visitor.id.size() + 1) +
                                     " bytes (id of " + std::to_string(visitor.id.size()) +
                                     "), LMDB keys are limited to " +
                                     std::to_string(schema::kMaxKeySize) + " bytes (1 type byte + " +
                                     std::to_string(schema::kMaxVisitorIdSize) + ")");
    if (visitor.kind == schema::VisitorKind::anonymous) check_anonymous_id(visitor.id, where);
}

Visitor parse_visitor(const json& object, const Location& where) {
    Visitor visitor;
    visitor.id = as_string(required(object, "id", where), "id", where);
    const std::string& kind = as_string(required(object, "kind", where), "kind", where);
    auto parsed = schema::parse_visitor_kind(kind);
    if (!parsed)
        throw ImportError(where, field_name("kind") + " must be \"anonymous\" or \"known\", got " +
                                     quote(kind));
    visitor.kind = *parsed;
    check_visitor_id(visitor, where);
    return visitor;
}

std::vector<std::uint32_t> parse_segment_names(const json& names, const Catalogue& catalogue,
                                               const Location& where) {
    if (!names.is_array())
        throw ImportError(where, field_name("segments") + " must be an array of segment names, got " +
                                     names.type_name());
    if (names.size() > schema::kMaxSegmentsPerProfile)
        throw ImportError(where, "too many segments: " + std::to_string(names.size()) +
                                     ", at most " + std::to_string(schema::kMaxSegmentsPerProfile));
    std::vector<std::uint32_t> ids;
    ids.reserve(names.size());
    for (const auto& name : names) {
        auto id = catalogue.find(as_string(name, "segments[]", where));
        if (!id) throw ImportError(where, "unknown segment " + quote(name.get<std::string>()));
        ids.push_back(*id);
    }
    catalogue.order(ids);
    // Ordered, so a repeat is adjacent.
    auto repeat = std::adjacent_find(ids.begin(), ids.end());
    if (repeat != ids.end())
        throw ImportError(where, "segment " + quote(catalogue.segments()[*repeat - 1].name) +
                                     " listed twice");
    return ids;
}

namespace {

// Fragments are inserted as they are, never scanned, so a marker inside one
// would reach the visitor's browser verbatim: almost certainly a copy-paste
// of page markup that was meant to be trimmed.
std::string fragment(const json& object, const Location& where) {
    const std::string& html = as_string(required(object, "html", where), "html", where);
    if (html.size() > schema::kMaxFragmentSize)
        throw ImportError(where, field_name("html") + " is " + std::to_string(html.size()) +
                                     " bytes, at most " + std::to_string(schema::kMaxFragmentSize));
    for (auto marker : {segcore::BlockScanner::kOpenPrefix, segcore::BlockScanner::kClosePrefix})
        if (html.find(marker) != std::string::npos)
            throw ImportError(where, field_name("html") + " contains a block marker " + quote(marker) +
                                         ": fragments are inserted as they are, blocks do not nest");
    return html;
}

std::string known_id(const json& object, const Location& where) {
    const std::string& id = as_string(required(object, "known", where), "known", where);
    if (id.empty()) throw ImportError(where, field_name("known") + " must not be empty");
    if (id.size() > schema::kMaxVisitorIdSize)
        throw ImportError(where, "known id of " + std::to_string(id.size()) + " bytes, at most " +
                                     std::to_string(schema::kMaxVisitorIdSize));
    return id;
}

}  // namespace

void AttributeCatalogue::add_stored(const schema::AttributeDef& def) {
    if (def.id != defs_.size() + 1)
        throw ImportError("attribute catalogue: id " + std::to_string(def.id) + " out of sequence");
    defs_.push_back(def);
    ids_.emplace(def.name, def.id);
}

std::uint16_t AttributeCatalogue::intern(std::string_view name, schema::AttributeType type,
                                         const Location& where) {
    if (auto id = find(name)) {
        const auto& def = defs_[*id - 1];
        if (def.type != type)
            throw ImportError(where, "attribute " + quote(name) + " is a " +
                                         std::string(schema::to_string(def.type)) + ", got a " +
                                         std::string(schema::to_string(type)));
        return *id;
    }
    if (!schema::is_valid_attribute_name(name))
        throw ImportError(where, "invalid attribute name " + quote(name) + ": use 1.." +
                                     std::to_string(schema::kMaxAttributeNameSize) +
                                     " characters of a-z, 0-9 and _, not starting with a digit");
    if (defs_.size() >= schema::kMaxAttributes)
        throw ImportError(where, "too many attribute names: at most " +
                                     std::to_string(schema::kMaxAttributes));
    schema::AttributeDef def{static_cast<std::uint16_t>(defs_.size() + 1), type, std::string(name)};
    defs_.push_back(def);
    ids_.emplace(def.name, def.id);
    added_.push_back(std::move(def));
    return defs_.back().id;
}

std::optional<std::uint16_t> AttributeCatalogue::find(std::string_view name) const {
    auto it = ids_.find(name);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
}

const schema::AttributeDef* AttributeCatalogue::by_id(std::uint16_t id) const {
    return id >= 1 && id <= defs_.size() ? &defs_[id - 1] : nullptr;
}

std::vector<AttributeChange> parse_attributes(const json& object, AttributeCatalogue& attributes,
                                              bool allow_null, const Location& where) {
    if (!object.is_object())
        throw ImportError(where, field_name("attributes") + " must be an object, got " +
                                     object.type_name());
    if (object.size() > schema::kMaxAttributesPerProfile)
        throw ImportError(where, "too many attributes: " + std::to_string(object.size()) +
                                     ", at most " + std::to_string(schema::kMaxAttributesPerProfile));
    std::vector<AttributeChange> changes;
    for (const auto& item : object.items()) {
        const json& value = item.value();
        AttributeChange change;
        if (value.is_null() && allow_null) {
            auto id = attributes.find(item.key());
            if (!id) continue;  // removing what was never there
            change.id = *id;
        } else if (value.is_number() || value.is_string()) {
            auto type = value.is_string() ? schema::AttributeType::text : schema::AttributeType::number;
            change.id = attributes.intern(item.key(), type, where);
            change.value = attribute_value(value, change.id, type, item.key(), where);
        } else {
            throw ImportError(where, "attribute " + quote(item.key()) + " must be a number or a string" +
                                         (allow_null ? " (or null to remove it)" : "") + ", got " +
                                         value.type_name());
        }
        changes.push_back(std::move(change));
    }
    return changes;
}

void apply_attribute_changes(std::vector<schema::AttributeValue>& values,
                             const std::vector<AttributeChange>& changes) {
    for (const auto& change : changes) {
        auto it = std::lower_bound(values.begin(), values.end(), change.id,
                                   [](const schema::AttributeValue& v, std::uint16_t id) { return v.id < id; });
        bool present = it != values.end() && it->id == change.id;
        if (!change.value) {
            if (present) values.erase(it);
        } else if (present) {
            *it = *change.value;
        } else {
            values.insert(it, *change.value);
        }
    }
}

// A rule may name only segments defined above it: evaluation then runs in
// file order with every reference already decided, and cycles cannot exist.
std::string Catalogue::rule_field(const json& object, const Location& where) const {
    auto it = object.find("rule");
    if (it == object.end() || it->is_null()) return {};
    struct Earlier : segcore::rules::SegmentNames {
        const Catalogue& catalogue;
        explicit Earlier(const Catalogue& c) : catalogue(c) {}
        std::optional<std::uint32_t> find(std::string_view name) const override {
            return catalogue.find(name);
        }
    } earlier(*this);
    std::string text = it->dump();
    try {
        segcore::rules::Rule::compile(text, earlier);
    } catch (const segcore::rules::RuleError& e) {
        throw ImportError(where, e.what());
    }
    return text;
}

void Catalogue::add(const json& object, const Location& where) {
    check_fields(object, {"name", "description", "owner", "priority", "rule"}, where);
    schema::SegmentDef def;
    def.name = name_field(object, "name", "segment", where);
    def.description = optional_text(object, "description", where);
    def.owner = optional_text(object, "owner", where);
    def.priority = priority(object, where);
    def.rule = rule_field(object, where);
    def.id = static_cast<std::uint32_t>(segments_.size() + 1);
    auto [it, inserted] = ids_.emplace(def.name, def.id);
    if (!inserted)
        throw ImportError(where, "duplicate segment " + quote(def.name) + " (first defined on line " +
                                     std::to_string(lines_[it->second - 1]) + ")");
    segments_.push_back(std::move(def));
    lines_.push_back(where.line);
}

std::optional<std::uint32_t> Catalogue::find(std::string_view name) const {
    auto it = ids_.find(name);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
}

void Catalogue::order(std::vector<std::uint32_t>& ids) const {
    std::sort(ids.begin(), ids.end(), [this](std::uint32_t a, std::uint32_t b) {
        if (by_id(a).priority != by_id(b).priority) return by_id(a).priority > by_id(b).priority;
        return a < b;
    });
}

void Catalogue::add_stored(schema::SegmentDef def) {
    if (def.id != segments_.size() + 1)
        throw ImportError("segment catalogue: id " + std::to_string(def.id) + " out of sequence");
    ids_.emplace(def.name, def.id);
    lines_.push_back(0);
    segments_.push_back(std::move(def));
}

Profile parse_profile(const json& object, const Catalogue& catalogue,
                      AttributeCatalogue& attributes, const Location& where) {
    check_fields(object, {"id", "kind", "segments", "attributes"}, where);
    Profile profile;
    profile.visitor = parse_visitor(object, where);
    profile.segment_ids = parse_segment_names(required(object, "segments", where), catalogue, where);
    auto given = object.find("attributes");
    if (given != object.end())
        apply_attribute_changes(profile.attributes,
                                parse_attributes(*given, attributes, false, where));
    return profile;
}

BlockContent parse_block(const json& object, const Catalogue& catalogue, const Location& where) {
    check_fields(object, {"block", "segment", "html"}, where);
    BlockContent content;
    content.block = name_field(object, "block", "block", where);
    const std::string& segment = as_string(required(object, "segment", where), "segment", where);
    auto id = catalogue.find(segment);
    if (!id) throw ImportError(where, "unknown segment " + quote(segment));
    content.segment = *id;
    content.html = fragment(object, where);
    return content;
}

void BlockIndex::add(const BlockContent& content, const Catalogue& catalogue, const Location& where) {
    auto [it, inserted] = lines_.emplace(std::make_pair(content.block, content.segment), where.line);
    if (!inserted)
        throw ImportError(where, "duplicate content for block " + quote(content.block) + " and segment " +
                                     quote(catalogue.segments()[content.segment - 1].name) +
                                     " (first on line " + std::to_string(it->second) + ")");
    if (names_.size() == schema::kMaxBlocks && !names_.count(content.block))
        throw ImportError(where, "too many blocks: at most " + std::to_string(schema::kMaxBlocks) +
                                     " distinct block names");
    names_.insert(content.block);
}

Alias parse_alias(const json& object, const Location& where) {
    check_fields(object, {"anonymous", "known"}, where);
    Alias alias;
    alias.anonymous = as_string(required(object, "anonymous", where), "anonymous", where);
    check_anonymous_id(alias.anonymous, where);
    alias.known = known_id(object, where);
    return alias;
}

}  // namespace segsync
