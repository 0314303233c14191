#include "sync/inspect.h"

#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>

#include <nlohmann/json.hpp>

#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "segcore/snapshot.h"
#include "sync/error.h"

namespace segsync {
namespace {

using nlohmann::json;
namespace schema = segcore::schema;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

class ReadOnlyDb {
public:
    explicit ReadOnlyDb(const std::string& root) {
        std::string link = segcore::layout::current_link(root);
        char resolved[PATH_MAX];
        if (!realpath(link.c_str(), resolved)) throw system_error("cannot resolve " + link);
        segcore::Env::Options options;
        options.flags = MDB_RDONLY;
        env_ = std::make_unique<segcore::Env>(resolved, options);
        txn_ = std::make_unique<segcore::Txn>(*env_, MDB_RDONLY);
    }
    segcore::Txn& txn() { return *txn_; }

private:
    std::unique_ptr<segcore::Env> env_;  // before txn_: destroyed after it
    std::unique_ptr<segcore::Txn> txn_;
};

void dump_meta(segcore::Txn& txn, std::ostream& out) {
    json meta = json::object(), feeds = json::object();
    segcore::Cursor cursor(txn, txn.open_db(schema::kMetaDb));
    while (cursor.next()) {
        std::string key(cursor.key());
        if (key == schema::kMetaSchemaVersion) meta[key] = schema::decode_u32(cursor.value()).value_or(0);
        else if (key == schema::kMetaGeneration || key == schema::kMetaBuiltAt)
            meta[key] = schema::decode_u64(cursor.value()).value_or(0);
        else if (key.rfind(schema::kMetaFeedPrefix, 0) == 0)
            feeds[key.substr(schema::kMetaFeedPrefix.size())] = std::string(cursor.value());
        else meta[key] = std::string(cursor.value());
    }
    meta["feeds"] = feeds;
    out << dump(meta) << '\n';
}

std::map<std::uint32_t, schema::SegmentDef> segments_of(segcore::Txn& txn) {
    std::map<std::uint32_t, schema::SegmentDef> segments;
    segcore::Cursor cursor(txn, txn.open_db(schema::kSegmentsDb));
    while (cursor.next()) {
        auto id = schema::decode_segment_key(cursor.key());
        auto def = id ? schema::decode_segment(*id, cursor.value()) : std::nullopt;
        if (!def) throw ImportError("malformed segment record");
        segments.emplace(*id, std::move(*def));
    }
    return segments;
}

std::map<std::uint16_t, schema::AttributeDef> attributes_of(segcore::Txn& txn) {
    std::map<std::uint16_t, schema::AttributeDef> attributes;
    auto dbi = txn.open_existing_db(schema::kAttributesDb);
    if (!dbi) return attributes;
    segcore::Cursor cursor(txn, *dbi);
    while (cursor.next()) {
        auto id = schema::decode_attribute_key(cursor.key());
        auto def = id ? schema::decode_attribute(*id, cursor.value()) : std::nullopt;
        if (!def) throw ImportError("malformed attribute record");
        attributes.emplace(*id, std::move(*def));
    }
    return attributes;
}

json profile_json(std::string_view key, std::string_view value,
                  const std::map<std::uint32_t, schema::SegmentDef>& segments,
                  const std::map<std::uint16_t, schema::AttributeDef>& attributes) {
    auto kind = schema::decode_visitor_key_kind(key);
    auto record = schema::decode_profile_record(value);
    if (!kind || !record) throw ImportError("malformed profile record");
    json names = json::array(), values = json::object();
    for (auto id : record->segment_ids) {
        auto def = segments.find(id);
        names.push_back(def == segments.end() ? "#" + std::to_string(id) : def->second.name);
    }
    for (const auto& a : record->attributes) {
        auto def = attributes.find(a.id);
        std::string name = def == attributes.end() ? "#" + std::to_string(a.id) : def->second.name;
        if (a.type == schema::AttributeType::text) values[name] = a.text;
        else if (std::trunc(a.number) == a.number && std::fabs(a.number) < 9007199254740992.0)
            values[name] = static_cast<std::int64_t>(a.number);  // 5, not 5.0
        else values[name] = a.number;
    }
    json out = {{"id", std::string(key.substr(1))}, {"kind", std::string(schema::to_string(*kind))},
                {"segments", names}};
    if (!values.empty()) out["attributes"] = values;
    return out;
}

int dump_profiles(segcore::Txn& txn, const std::optional<Visitor>& only, std::ostream& out) {
    auto segments = segments_of(txn);
    auto attributes = attributes_of(txn);
    MDB_dbi profiles = txn.open_db(schema::kProfilesDb);
    if (only) {
        char key[schema::kMaxKeySize];
        std::size_t size = schema::encode_visitor_key(only->kind, only->id, key);
        auto value = size ? txn.get(profiles, std::string_view(key, size)) : std::nullopt;
        if (!value) return 1;
        out << dump(profile_json(std::string_view(key, size), *value, segments, attributes)) << '\n';
        return 0;
    }
    segcore::Cursor cursor(txn, profiles);
    while (cursor.next()) out << dump(profile_json(cursor.key(), cursor.value(), segments, attributes)) << '\n';
    return 0;
}

}  // namespace

int verify_db(const std::string& root, std::ostream& out, std::ostream& err) {
    std::string link = segcore::layout::current_link(root);
    try {
        segcore::Snapshot snapshot(link);
        auto counts = snapshot.verify();
        out << "ok: generation " << snapshot.generation() << ", " << counts.segments << " segments, "
            << counts.profiles << " profiles, " << counts.attributes << " attributes, " << counts.aliases
            << " aliases\n";
        return 0;
    } catch (const std::exception& e) {
        err << "segsync: verify " << link << ": " << e.what() << '\n';
        return 1;
    }
}

int dump_db(const std::string& root, const std::string& what, const std::optional<Visitor>& only,
            std::ostream& out) {
    if (what != "meta" && what != "segments" && what != "attributes" && what != "profiles" && what != "aliases")
        throw ImportError("dump what? one of meta, segments, attributes, profiles, aliases; got " + quote(what));
    try {
        ReadOnlyDb db(root);
        segcore::Txn& txn = db.txn();
        if (what == "meta") {
            dump_meta(txn, out);
        } else if (what == "segments") {
            for (const auto& [id, def] : segments_of(txn))
                out << dump({{"name", def.name}, {"description", def.description}, {"owner", def.owner},
                             {"priority", def.priority}}) << '\n';
        } else if (what == "attributes") {
            for (const auto& [id, def] : attributes_of(txn))
                out << dump({{"name", def.name}, {"type", std::string(schema::to_string(def.type))}}) << '\n';
        } else if (what == "profiles") {
            return dump_profiles(txn, only, out);
        } else if (auto aliases = txn.open_existing_db(schema::kAliasesDb)) {
            segcore::Cursor cursor(txn, *aliases);
            while (cursor.next())
                out << dump({{"anonymous", std::string(cursor.key())}, {"known", std::string(cursor.value())}}) << '\n';
        }
        return 0;
    } catch (const segcore::LmdbError& e) {
        throw ImportError(e.what());
    }
}

}  // namespace segsync
