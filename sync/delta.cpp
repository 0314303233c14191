#include "sync/delta.h"

#include <algorithm>

#include "segcore/cookie.h"

namespace segsync {
namespace {

using nlohmann::json;
namespace schema = segcore::schema;

constexpr std::size_t kCancelEvery = 4096;

std::uint32_t segment_id(const json& object, const ProfileEditor& editor, const Location& where) {
    const std::string& name = as_string(required(object, "segment", where), "segment", where);
    auto id = editor.segments().find(name);
    if (!id) throw ImportError(where, "unknown segment " + quote(name));
    return *id;
}

schema::ProfileRecord current(const ProfileEditor& editor, const Visitor& visitor) {
    return editor.get(visitor).value_or(schema::ProfileRecord{});
}

void enter(const json& object, ProfileEditor& editor, const Location& where) {
    check_fields(object, {"op", "id", "kind", "segment"}, where);
    Visitor visitor = parse_visitor(object, where);
    std::uint32_t id = segment_id(object, editor, where);
    schema::ProfileRecord record = current(editor, visitor);
    auto& ids = record.segment_ids;
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return;
    if (ids.size() >= schema::kMaxSegmentsPerProfile)
        throw ImportError(where, "visitor " + quote(visitor.id) + " is already in " +
                                     std::to_string(ids.size()) + " segments, the most a profile holds");
    ids.push_back(id);
    editor.segments().order(ids);
    editor.put(visitor, record);
}

void exit(const json& object, ProfileEditor& editor, const Location& where) {
    check_fields(object, {"op", "id", "kind", "segment"}, where);
    Visitor visitor = parse_visitor(object, where);
    std::uint32_t id = segment_id(object, editor, where);
    auto record = editor.get(visitor);
    if (!record) return;
    auto& ids = record->segment_ids;
    auto it = std::find(ids.begin(), ids.end(), id);
    if (it == ids.end()) return;
    ids.erase(it);
    editor.put(visitor, *record);
}

void upsert(const json& object, ProfileEditor& editor, const Location& where) {
    check_fields(object, {"op", "id", "kind", "segments", "attributes"}, where);
    Visitor visitor = parse_visitor(object, where);
    auto segments = object.find("segments");
    auto attributes = object.find("attributes");
    if (segments == object.end() && attributes == object.end())
        throw ImportError(where, "upsert needs \"segments\", \"attributes\" or both");
    schema::ProfileRecord record = current(editor, visitor);
    if (segments != object.end())
        record.segment_ids = parse_segment_names(*segments, editor.segments(), where);
    if (attributes != object.end()) {
        auto changes = parse_attributes(*attributes, editor.attributes(), true, where);
        apply_attribute_changes(record.attributes, changes);
        if (record.attributes.size() > schema::kMaxAttributesPerProfile)
            throw ImportError(where, "visitor " + quote(visitor.id) + " would have " +
                                         std::to_string(record.attributes.size()) +
                                         " attributes, at most " +
                                         std::to_string(schema::kMaxAttributesPerProfile));
    }
    editor.put(visitor, record);
}

void erase(const json& object, ProfileEditor& editor, const Location& where) {
    check_fields(object, {"op", "id", "kind"}, where);
    editor.erase(parse_visitor(object, where));
}

void alias(const json& object, ProfileEditor& editor, const Location& where) {
    check_fields(object, {"op", "anonymous", "known"}, where);
    Visitor anonymous{schema::VisitorKind::anonymous,
                      as_string(required(object, "anonymous", where), "anonymous", where)};
    Visitor known{schema::VisitorKind::known,
                  as_string(required(object, "known", where), "known", where)};
    check_visitor_id(anonymous, where);
    check_visitor_id(known, where);
    editor.put_alias(anonymous.id, known.id);
}

}  // namespace

DeltaStats apply_delta(NdjsonReader& reader, ProfileEditor& editor, const CancelCheck& cancelled) {
    DeltaStats stats;
    Record record;
    while (reader.next(record)) {
        if (cancelled && stats.changes % kCancelEvery == 0 && cancelled()) throw Cancelled();
        Location where = reader.where();
        const std::string& op = as_string(required(record.object, "op", where), "op", where);
        // LmdbError (MDB_MAP_FULL, I/O) passes through untouched: it is about
        // the environment, not the line, and the caller may grow and retry.
        if (op == "enter") enter(record.object, editor, where), ++stats.enters;
        else if (op == "exit") exit(record.object, editor, where), ++stats.exits;
        else if (op == "upsert") upsert(record.object, editor, where), ++stats.upserts;
        else if (op == "delete") erase(record.object, editor, where), ++stats.deletes;
        else if (op == "alias") alias(record.object, editor, where), ++stats.aliases;
        else
            throw ImportError(where, "unknown op " + quote(op) +
                                         " (allowed: enter, exit, upsert, delete, alias)");
        ++stats.changes;
    }
    editor.store_new_attributes();
    return stats;
}

}  // namespace segsync
