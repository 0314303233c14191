// Stage 2: field rules for one record and the cross-record rules that need
// the segment catalogue. Everything the module relies on without checking
// per request (segment names, visitor id syntax, key sizes, list bounds) is
// enforced here, at import time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "segcore/schema.h"
#include "sync/error.h"

namespace segsync {

inline constexpr std::size_t kMaxSegmentTextSize = 1024;  // description, owner

// The segments file, validated, with ids 1..n in file order.
class Catalogue {
public:
    // Validates one segments-file record and gives it the next id. Throws
    // ImportError at `where` (bad field, unknown field, duplicate name).
    void add(const nlohmann::json& object, const Location& where);
    // A definition read back from a snapshot (ids 1..n in order).
    void add_stored(segcore::schema::SegmentDef def);

    const std::vector<segcore::schema::SegmentDef>& segments() const noexcept { return segments_; }
    std::optional<std::uint32_t> find(std::string_view name) const;
    // Sorts ids into stored order: priority descending, then id ascending,
    // so the module can take the first n without comparing anything.
    void order(std::vector<std::uint32_t>& ids) const;

private:
    std::string rule_field(const nlohmann::json& object, const Location& where) const;
    const segcore::schema::SegmentDef& by_id(std::uint32_t id) const { return segments_[id - 1]; }

    std::vector<segcore::schema::SegmentDef> segments_;
    std::map<std::string, std::uint32_t, std::less<>> ids_;
    std::vector<std::size_t> lines_;  // definition line per id, for duplicates
};

// Attribute names and their types: read from a snapshot, and grown by the
// profiles or deltas that name new attributes (first use fixes the type).
class AttributeCatalogue {
public:
    void add_stored(const segcore::schema::AttributeDef& def);
    // The id of `name`, catalogued with `type` if new. Throws ImportError at
    // `where` for an invalid name, a type other than the catalogued one, or
    // a full catalogue.
    std::uint16_t intern(std::string_view name, segcore::schema::AttributeType type,
                         const Location& where);
    std::optional<std::uint16_t> find(std::string_view name) const;
    const segcore::schema::AttributeDef* by_id(std::uint16_t id) const;
    // Definitions interned since construction: to store with the batch.
    const std::vector<segcore::schema::AttributeDef>& added() const noexcept { return added_; }
    std::size_t size() const noexcept { return defs_.size(); }

private:
    std::vector<segcore::schema::AttributeDef> defs_;  // index id - 1
    std::map<std::string, std::uint16_t, std::less<>> ids_;
    std::vector<segcore::schema::AttributeDef> added_;
};

// One entry of an "attributes" object: a value to set, or no value (JSON
// null, deltas only) to remove the attribute.
struct AttributeChange {
    std::uint16_t id = 0;
    std::optional<segcore::schema::AttributeValue> value;
};

// Validates an "attributes" object ({"name": number | string [| null]}).
std::vector<AttributeChange> parse_attributes(const nlohmann::json& object,
                                              AttributeCatalogue& attributes, bool allow_null,
                                              const Location& where);
// Sets or removes the changed attributes, keeping `values` in id order.
void apply_attribute_changes(std::vector<segcore::schema::AttributeValue>& values,
                             const std::vector<AttributeChange>& changes);

struct Visitor {
    segcore::schema::VisitorKind kind = segcore::schema::VisitorKind::anonymous;
    std::string id;
};

struct Profile {
    Visitor visitor;
    std::vector<std::uint32_t> segment_ids;  // stored order
    std::vector<segcore::schema::AttributeValue> attributes;  // id order
};

// Validates one profiles-file record against the catalogues (interning new
// attribute names). Throws ImportError at `where`.
Profile parse_profile(const nlohmann::json& object, const Catalogue& catalogue,
                      AttributeCatalogue& attributes, const Location& where);

// Field rules shared by the feeds (profiles, deltas, orders); each throws
// ImportError at `where`.
// Rejects any field not in `allowed` (a typo must not drop data silently).
void check_fields(const nlohmann::json& object, std::initializer_list<std::string_view> allowed,
                  const Location& where);
const nlohmann::json& required(const nlohmann::json& object, std::string_view name,
                               const Location& where);
const std::string& as_string(const nlohmann::json& value, std::string_view name,
                             const Location& where);
// The "id" and "kind" fields.
Visitor parse_visitor(const nlohmann::json& object, const Location& where);
void check_visitor_id(const Visitor& visitor, const Location& where);
// A "segments" array of names: ids in stored order, each once.
std::vector<std::uint32_t> parse_segment_names(const nlohmann::json& names,
                                               const Catalogue& catalogue, const Location& where);

// One line of the blocks file: the HTML shown in `block` to visitors whose
// highest-priority segment with content for that block is `segment`.
struct BlockContent {
    std::string block;
    std::uint32_t segment = 0;
    std::string html;
    std::string variant;  // "experiment:variant" (sync/experiments.h), or empty
};

// Validates one blocks-file record against the catalogue. Throws ImportError
// at `where`.
BlockContent parse_block(const nlohmann::json& object, const Catalogue& catalogue,
                         const Location& where);

// The blocks file's cross-line rules: each (block, segment) once, at most
// schema::kMaxBlocks block names. Small enough to keep in memory.
class BlockIndex {
public:
    // Throws ImportError at `where`, naming the first line of a duplicate.
    void add(const BlockContent& content, const Catalogue& catalogue, const Location& where);

private:
    std::map<std::pair<std::string, std::uint32_t>, std::size_t> lines_;
    std::set<std::string, std::less<>> names_;
};

// One line of the aliases file: this anonymous visitor is that known one.
// The known id need not have a profile (yet): resolution then applies the
// anonymous profile's segments and reports the visitor as known.
struct Alias {
    std::string anonymous;  // canonical, as the module issues
    std::string known;
};

// Validates one aliases-file record. Throws ImportError at `where`.
Alias parse_alias(const nlohmann::json& object, const Location& where);

}  // namespace segsync
