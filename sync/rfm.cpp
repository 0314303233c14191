#include "sync/rfm.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <vector>

#include "segcore/lmdb.h"
#include "sync/sources.h"
#include "sync/write.h"

namespace segsync {
namespace {

using nlohmann::json;
namespace schema = segcore::schema;

constexpr std::size_t kCancelEvery = 4096;
constexpr std::int64_t kDay = 86400;

// The attributes this computation owns, in the order they are interned.
constexpr const char* kRecency = "rfm_recency";
constexpr const char* kFrequency = "rfm_frequency";
constexpr const char* kMonetary = "rfm_monetary";
constexpr const char* kLifecycle = "lifecycle";
constexpr const char* kOrderCount = "order_count";
constexpr const char* kOrderTotal = "order_total";
constexpr const char* kLastOrderAt = "last_order_at";

// ---------------------------------------------------------------- parsing

struct Order {
    std::string customer;
    std::int64_t at = 0;
    double amount = 0;
};

// "2024-06-01T12:00:00Z", "2024-06-01T12:00:00.5+02:00": RFC 3339.
std::optional<std::int64_t> parse_rfc3339(const std::string& text) {
    std::tm tm{};
    int consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19)
        return std::nullopt;
    std::size_t pos = 19;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t digits = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
        if (pos == digits) return std::nullopt;
    }
    std::int64_t offset = 0;
    std::string zone = text.substr(pos);
    if (zone == "Z" || zone == "z") {
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
               std::isdigit(static_cast<unsigned char>(zone[1])) &&
               std::isdigit(static_cast<unsigned char>(zone[2])) &&
               std::isdigit(static_cast<unsigned char>(zone[4])) &&
               std::isdigit(static_cast<unsigned char>(zone[5]))) {
        offset = (std::stoi(zone.substr(1, 2)) * 60 + std::stoi(zone.substr(4, 2))) * 60;
        if (zone[0] == '-') offset = -offset;
    } else {
        return std::nullopt;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(timegm(&tm)) - offset;
}

std::int64_t order_time(const json& value, const Location& where) {
    if (value.is_number_unsigned()) return static_cast<std::int64_t>(value.get<std::uint64_t>());
    if (value.is_string()) {
        if (auto at = parse_rfc3339(value.get<std::string>())) return *at;
        throw ImportError(where, "field \"at\" " + quote(value.get<std::string>()) +
                                     " is not an RFC 3339 time such as 2024-06-01T12:00:00Z");
    }
    throw ImportError(where, "field \"at\" must be unix seconds (a whole number >= 0) or an "
                             "RFC 3339 time string, got " + value.dump());
}

Order parse_order(const json& object, const Location& where) {
    check_fields(object, {"customer", "at", "amount"}, where);
    Order order;
    order.customer = as_string(required(object, "customer", where), "customer", where);
    if (order.customer.empty() || order.customer.size() > schema::kMaxVisitorIdSize)
        throw ImportError(where, "field \"customer\" must be 1 to " +
                                     std::to_string(schema::kMaxVisitorIdSize) + " bytes");
    order.at = order_time(required(object, "at", where), where);
    const json& amount = required(object, "amount", where);
    if (!amount.is_number())
        throw ImportError(where, std::string("field \"amount\" must be a number, got ") + amount.type_name());
    order.amount = amount.get<double>();
    if (!std::isfinite(order.amount) || order.amount < 0)
        throw ImportError(where, "field \"amount\" must be a finite number >= 0 (send refunds as "
                                 "reduced order amounts), got " + amount.dump());
    return order;
}

// ---------------------------------------------------------------- scratch

std::string encode_totals(const CustomerTotals& t) {
    std::string out(24, '\0');
    std::memcpy(&out[0], &t.orders, 8);
    std::memcpy(&out[8], &t.amount, 8);
    std::memcpy(&out[16], &t.last_at, 8);
    return out;
}

CustomerTotals decode_totals(std::string_view bytes) {
    CustomerTotals t;
    if (bytes.size() != 24) throw ImportError("rfm scratch: malformed customer record");
    std::memcpy(&t.orders, bytes.data(), 8);
    std::memcpy(&t.amount, bytes.data() + 8, 8);
    std::memcpy(&t.last_at, bytes.data() + 16, 8);
    return t;
}

void merge(CustomerTotals& into, const CustomerTotals& more) {
    into.orders += more.orders;
    into.amount += more.amount;
    into.last_at = std::max(into.last_at, more.last_at);
}

// Big-endian with the sign handled, so LMDB's byte order is numeric order.
std::string ordered_key(double value) {
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    bits = (bits >> 63) ? ~bits : bits | (std::uint64_t{1} << 63);
    std::string key(8, '\0');
    for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(bits >> (8 * (7 - i)));
    return key;
}

double key_value(std::string_view key) {
    std::uint64_t bits = 0;
    for (char c : key) bits = (bits << 8) | static_cast<unsigned char>(c);
    bits = (bits >> 63) ? bits & ~(std::uint64_t{1} << 63) : ~bits;
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

std::uint64_t as_count(std::string_view bytes) {
    std::uint64_t count = 0;
    if (bytes.size() == 8) std::memcpy(&count, bytes.data(), 8);
    return count;
}

std::string count_bytes(std::uint64_t count) {
    std::string out(8, '\0');
    std::memcpy(&out[0], &count, 8);
    return out;
}

// A temporary LMDB environment, removed with its directory.
class Scratch {
public:
    Scratch(const std::string& parent, std::uint64_t input_bytes) {
        std::string pattern = parent + "/rfm-XXXXXX";
        if (!mkdtemp(pattern.data())) throw system_error("mkdtemp " + pattern);
        dir_ = pattern;
        segcore::Env::Options options;
        options.flags = MDB_NOTLS;  // a read txn here runs beside write txns elsewhere
        options.map_size = map_size_for(input_bytes * 2);
        options.mode = 0600;
        env_ = std::make_unique<segcore::Env>(dir_, options);
        segcore::Txn txn(*env_, 0);
        customers = txn.open_db("customers", MDB_CREATE);
        const char* const names[] = {"recency", "frequency", "monetary"};
        for (int m = 0; m < 3; ++m) metrics[m] = txn.open_db(names[m], MDB_CREATE);
        txn.commit();
    }
    ~Scratch() {
        env_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    const segcore::Env& env() const { return *env_; }

    MDB_dbi customers = 0;
    MDB_dbi metrics[3] = {};  // recency (last order time), frequency, monetary

private:
    std::string dir_;
    std::unique_ptr<segcore::Env> env_;
};

// Pass 1: per-customer totals, merged into the scratch environment every
// `held` customers.
std::size_t aggregate(const std::string& path, Scratch& scratch, const CancelCheck& cancelled,
                      std::size_t held) {
    std::unordered_map<std::string, CustomerTotals> pending;
    auto flush = [&] {
        segcore::Txn txn(scratch.env(), 0);
        for (auto& [customer, totals] : pending) {
            if (auto stored = txn.get(scratch.customers, customer)) merge(totals, decode_totals(*stored));
            txn.put(scratch.customers, customer, encode_totals(totals));
        }
        txn.commit();
        pending.clear();
    };
    NdjsonReader reader(path);
    Record record;
    std::size_t orders = 0;
    while (reader.next(record)) {
        if (cancelled && orders % kCancelEvery == 0 && cancelled()) throw Cancelled();
        Order order = parse_order(record.object, reader.where());
        merge(pending[order.customer], CustomerTotals{1, order.amount, order.at});
        ++orders;
        if (pending.size() >= held) flush();
    }
    flush();
    return orders;
}

double metric(const CustomerTotals& t, int which) {
    if (which == 0) return static_cast<double>(t.last_at);
    if (which == 1) return static_cast<double>(t.orders);
    return t.amount;
}

// Pass 2: how many customers have each value of each metric.
void count_values(Scratch& scratch, std::size_t held) {
    std::map<double, std::uint64_t> pending[3];
    auto flush = [&] {
        segcore::Txn txn(scratch.env(), 0);
        for (int m = 0; m < 3; ++m) {
            for (const auto& [value, count] : pending[m]) {
                std::string key = ordered_key(value);
                auto stored = txn.get(scratch.metrics[m], key);
                txn.put(scratch.metrics[m], key, count_bytes(count + (stored ? as_count(*stored) : 0)));
            }
            pending[m].clear();
        }
        txn.commit();
    };
    segcore::Txn read(scratch.env(), MDB_RDONLY);
    segcore::Cursor cursor(read, scratch.customers);
    while (cursor.next()) {
        CustomerTotals totals = decode_totals(cursor.value());
        for (int m = 0; m < 3; ++m) ++pending[m][metric(totals, m)];
        if (pending[0].size() + pending[1].size() + pending[2].size() >= held) flush();
    }
    flush();
}

QuintileCuts cuts_of(const segcore::Env& env, MDB_dbi dbi, std::uint64_t customers) {
    QuintileCuts cuts{};
    segcore::Txn txn(env, MDB_RDONLY);
    segcore::Cursor cursor(txn, dbi);
    std::uint64_t seen = 0;
    int k = 0;
    while (k < 4 && cursor.next()) {
        seen += as_count(cursor.value());
        double value = key_value(cursor.key());
        // rank ceil(k * n / 5), 1-based
        while (k < 4 && seen * 5 >= static_cast<std::uint64_t>(k + 1) * customers) cuts[k++] = value;
    }
    return cuts;
}

}  // namespace

int quintile_score(double value, const QuintileCuts& cuts) {
    int score = 1;
    for (double cut : cuts) score += value > cut ? 1 : 0;
    return score;
}

std::string lifecycle_stage(const CustomerTotals& totals, int monetary_score, std::int64_t as_of,
                            const RfmThresholds& thresholds) {
    std::int64_t days = std::max<std::int64_t>(0, (as_of - totals.last_at) / kDay);
    if (days > thresholds.lapsed_days) return "lapsed";
    if (monetary_score >= static_cast<int>(thresholds.high_value_score) && days > thresholds.quiet_days)
        return "high-value-quiet";
    if (days > thresholds.at_risk_days) return "at-risk";
    return totals.orders == 1 ? "new" : "repeat";
}

RfmStats apply_rfm(const std::string& orders_path, const RfmThresholds& thresholds,
                   std::int64_t as_of, ProfileEditor& editor, const std::string& scratch_parent,
                   const CancelCheck& cancelled, std::size_t held_in_memory) {
    NdjsonReader probe(orders_path);  // a missing feed fails before anything is built
    Scratch scratch(scratch_parent, probe.size());
    RfmStats stats;
    stats.orders = aggregate(orders_path, scratch, cancelled, held_in_memory);
    count_values(scratch, held_in_memory);

    segcore::Txn read(scratch.env(), MDB_RDONLY);
    MDB_stat st;
    segcore::check_lmdb(mdb_stat(read.get(), scratch.customers, &st), "mdb_stat");
    stats.customers = st.ms_entries;
    QuintileCuts cuts[3];
    for (int m = 0; m < 3; ++m) cuts[m] = cuts_of(scratch.env(), scratch.metrics[m], stats.customers);

    Location where{orders_path, 0};
    auto& attributes = editor.attributes();
    using Type = schema::AttributeType;
    const std::uint16_t ids[] = {
        attributes.intern(kRecency, Type::number, where),
        attributes.intern(kFrequency, Type::number, where),
        attributes.intern(kMonetary, Type::number, where),
        attributes.intern(kLifecycle, Type::text, where),
        attributes.intern(kOrderCount, Type::number, where),
        attributes.intern(kOrderTotal, Type::number, where),
        attributes.intern(kLastOrderAt, Type::number, where),
    };

    // Pass 3: scores onto the profiles.
    {
        segcore::Cursor cursor(read, scratch.customers);
        std::size_t done = 0;
        while (cursor.next()) {
            if (cancelled && ++done % kCancelEvery == 0 && cancelled()) throw Cancelled();
            CustomerTotals totals = decode_totals(cursor.value());
            int scores[3];
            for (int m = 0; m < 3; ++m) scores[m] = quintile_score(metric(totals, m), cuts[m]);
            std::vector<AttributeChange> changes;
            auto number = [&](std::uint16_t id, double value) {
                schema::AttributeValue v;
                v.id = id;
                v.number = value;
                changes.push_back({id, v});
            };
            number(ids[0], scores[0]);
            number(ids[1], scores[1]);
            number(ids[2], scores[2]);
            schema::AttributeValue stage;
            stage.id = ids[3];
            stage.type = Type::text;
            stage.text = lifecycle_stage(totals, scores[2], as_of, thresholds);
            changes.push_back({ids[3], stage});
            number(ids[4], static_cast<double>(totals.orders));
            number(ids[5], totals.amount);
            number(ids[6], static_cast<double>(totals.last_at));

            Visitor customer{schema::VisitorKind::known, std::string(cursor.key())};
            auto record = editor.get(customer);
            if (!record) ++stats.created;
            schema::ProfileRecord updated = record.value_or(schema::ProfileRecord{});
            apply_attribute_changes(updated.attributes, changes);
            editor.put(customer, updated);
        }
    }

    // Pass 4: known profiles not in this feed lose what an earlier one set.
    // Walked in chunks, so the cursor is never open while the database
    // under it changes, and memory stays bounded.
    std::vector<AttributeChange> removals;
    for (auto id : ids) removals.push_back({id, std::nullopt});
    std::string from(1, static_cast<char>(schema::VisitorKind::known));
    while (true) {
        std::vector<std::pair<Visitor, schema::ProfileRecord>> stale;
        bool more = false;
        {
            MDB_cursor* raw = nullptr;
            segcore::check_lmdb(mdb_cursor_open(editor.txn().get(), editor.profiles_db(), &raw), "mdb_cursor_open");
            MDB_val key = segcore::as_val(from), value{};
            int rc = mdb_cursor_get(raw, &key, &value, MDB_SET_RANGE);
            while (rc == MDB_SUCCESS) {
                std::string_view k = segcore::as_view(key);
                if (k.empty() || k[0] != static_cast<char>(schema::VisitorKind::known)) break;
                if (stale.size() >= held_in_memory) {
                    from = std::string(k);
                    more = true;
                    break;
                }
                auto record = schema::decode_profile_record(segcore::as_view(value));
                bool scored = record && std::any_of(record->attributes.begin(), record->attributes.end(),
                                                    [&](const auto& a) { return a.id == ids[0]; });
                std::string id(k.substr(1));
                if (scored && !read.get(scratch.customers, id))
                    stale.emplace_back(Visitor{schema::VisitorKind::known, id}, std::move(*record));
                rc = mdb_cursor_get(raw, &key, &value, MDB_NEXT);
            }
            mdb_cursor_close(raw);
            if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) segcore::check_lmdb(rc, "mdb_cursor_get");
        }
        for (auto& [visitor, record] : stale) {
            apply_attribute_changes(record.attributes, removals);
            editor.put(visitor, record);
            ++stats.cleared;
        }
        if (!more) break;
    }
    editor.store_new_attributes();
    return stats;
}

}  // namespace segsync
