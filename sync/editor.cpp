#include "sync/editor.h"

#include "sync/error.h"

namespace segsync {
namespace {

namespace schema = segcore::schema;

std::string_view key_of(const Visitor& visitor, char* buffer) {
    std::size_t size = schema::encode_visitor_key(visitor.kind, visitor.id, buffer);
    if (size == 0) throw ImportError("internal error: unvalidated visitor id");
    return {buffer, size};
}

}  // namespace

ProfileEditor::ProfileEditor(segcore::Txn& txn) : txn_(txn) {
    profiles_db_ = txn.open_db(schema::kProfilesDb);
    attributes_db_ = txn.open_db(schema::kAttributesDb, MDB_CREATE);
    {
        segcore::Cursor cursor(txn, txn.open_db(schema::kSegmentsDb));
        while (cursor.next()) {
            auto id = schema::decode_segment_key(cursor.key());
            auto def = id ? schema::decode_segment(*id, cursor.value()) : std::nullopt;
            if (!def) throw ImportError("malformed segment record in the database");
            segments_.add_stored(std::move(*def));
        }
    }
    segcore::Cursor cursor(txn, attributes_db_);
    while (cursor.next()) {
        auto id = schema::decode_attribute_key(cursor.key());
        auto def = id ? schema::decode_attribute(*id, cursor.value()) : std::nullopt;
        if (!def) throw ImportError("malformed attribute record in the database");
        attributes_.add_stored(*def);
    }
}

std::optional<schema::ProfileRecord> ProfileEditor::get(const Visitor& visitor) const {
    char buffer[schema::kMaxKeySize];
    auto value = txn_.get(profiles_db_, key_of(visitor, buffer));
    if (!value) return std::nullopt;
    auto record = schema::decode_profile_record(*value);
    if (!record) throw ImportError("malformed profile record in the database for " + quote(visitor.id));
    return record;
}

void ProfileEditor::put(const Visitor& visitor, const schema::ProfileRecord& record) {
    if (record.segment_ids.empty() && record.attributes.empty()) {
        erase(visitor);
        return;
    }
    char buffer[schema::kMaxKeySize];
    txn_.put(profiles_db_, key_of(visitor, buffer),
             schema::encode_profile(record.segment_ids, record.attributes));
}

bool ProfileEditor::erase(const Visitor& visitor) {
    char buffer[schema::kMaxKeySize];
    return txn_.del(profiles_db_, key_of(visitor, buffer));
}

void ProfileEditor::put_alias(std::string_view anonymous_id, std::string_view known_id) {
    if (!aliases_db_) aliases_db_ = txn_.open_db(schema::kAliasesDb, MDB_CREATE);
    txn_.put(*aliases_db_, anonymous_id, known_id);
}

void ProfileEditor::store_new_attributes() {
    const auto& added = attributes_.added();
    for (; stored_attributes_ < added.size(); ++stored_attributes_) {
        const auto& def = added[stored_attributes_];
        txn_.put(attributes_db_, schema::encode_attribute_key(def.id), schema::encode_attribute(def));
    }
}

}  // namespace segsync
