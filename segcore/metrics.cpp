#include "segcore/metrics.h"

#include <cstdio>
#include <cstring>

#include "segcore/block_choice.h"
#include "segcore/snapshot.h"

namespace segcore::metrics {

namespace {

constexpr std::uint32_t kFree = 0, kClaiming = 1, kNamed = 2;
constexpr int kMaxSpins = 1 << 20;

std::uint64_t fnv1a(std::string_view text) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

bool named(const Slot& slot, std::string_view name) noexcept {
    return slot.length == name.size() && std::memcmp(slot.name, name.data(), name.size()) == 0;
}

// Visits the named slots of a table in slot order.
template <typename F>
void each_named(const Slot* table, std::size_t size, F&& f) {
    for (std::size_t i = 0; i < size; ++i)
        if (__atomic_load_n(&table[i].state, __ATOMIC_ACQUIRE) == kNamed)
            f(std::string_view(table[i].name, table[i].length), read(table[i].count));
}

}  // namespace

void init(Zone& zone, std::uint64_t now) {
    if (zone.magic == kMagic) return;
    std::memset(&zone, 0, sizeof zone);
    zone.created_at = now;
    zone.magic = kMagic;
}

bool valid(const Zone& zone) noexcept { return zone.magic == kMagic; }

int find_or_claim(Slot* table, std::size_t size, std::string_view name) noexcept {
    if (name.empty() || name.size() > sizeof table->name) return -1;
    std::size_t start = fnv1a(name) % size;
    for (std::size_t probe = 0; probe < size; ++probe) {
        Slot& slot = table[(start + probe) % size];
        std::uint32_t state = __atomic_load_n(&slot.state, __ATOMIC_ACQUIRE);
        if (state == kFree) {
            std::uint32_t expected = kFree;
            if (__atomic_compare_exchange_n(&slot.state, &expected, kClaiming, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                std::memcpy(slot.name, name.data(), name.size());
                slot.length = static_cast<std::uint32_t>(name.size());
                __atomic_store_n(&slot.state, kNamed, __ATOMIC_RELEASE);
                return static_cast<int>(&slot - table);
            }
            state = expected;
        }
        // Another worker is naming this slot right now: wait for the name,
        // which takes a few instructions, to learn whether it is ours. A
        // worker that died in between leaves the slot unnamed for good: give
        // up waiting on it (the name may then take a second slot).
        for (int spins = 0; state == kClaiming && spins < kMaxSpins; ++spins)
            state = __atomic_load_n(&slot.state, __ATOMIC_ACQUIRE);
        if (state == kNamed && named(slot, name)) return static_cast<int>(&slot - table);
    }
    return -1;
}

void Recorder::use(const Snapshot* snapshot, std::uint64_t generation) {
    if (snapshot == snapshot_ && generation == generation_) return;
    snapshot_ = snapshot;
    generation_ = generation;
    segment_slots_.clear();
    block_slots_.clear();
    exposure_slots_.clear();
    if (!snapshot) return;
    for (const auto& [id, def] : snapshot->segments())
        segment_slots_[id] = find_or_claim(zone_->segments, kSegmentSlots, def.name);
    const BlockCatalogue& catalogue = snapshot->blocks();
    for (std::uint32_t i = 0; i < catalogue.size(); ++i)
        block_slots_.push_back(find_or_claim(zone_->blocks, kBlockSlots, catalogue.name(i)));
    for (const auto& def : snapshot->experiments().all()) {
        std::vector<int> slots;
        for (const auto& variant : def.variants)
            slots.push_back(find_or_claim(zone_->exposures, kExposureSlots, def.id + ":" + variant.name));
        slots.push_back(find_or_claim(zone_->exposures, kExposureSlots,
                                      def.id + ":" + std::string(experiments::kHoldout)));
        exposure_slots_.push_back(std::move(slots));
    }
}

void Recorder::exposures(const experiments::Assignment* assigned, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        int slot = -1;
        if (assigned[i].experiment < exposure_slots_.size()) {
            const auto& slots = exposure_slots_[assigned[i].experiment];
            slot = assigned[i].variant == experiments::kHoldoutIndex ? slots.back()
                   : assigned[i].variant < slots.size() - 1       ? slots[assigned[i].variant]
                                                                  : -1;
        }
        add(slot >= 0 ? zone_->exposures[slot].count : zone_->unslotted);
    }
}

void Recorder::request(bool stale) noexcept {
    add(zone_->requests);
    if (stale) add(zone_->stale);
}

void Recorder::segments(const std::uint32_t* ids, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        auto it = segment_slots_.find(ids[i]);
        if (it != segment_slots_.end() && it->second >= 0)
            add(zone_->segments[it->second].count);
        else
            add(zone_->unslotted);
    }
}

void Recorder::blocks(const BlockChoice* choices, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        int slot = choices[i].block < block_slots_.size() ? block_slots_[choices[i].block] : -1;
        add(slot >= 0 ? zone_->blocks[slot].count : zone_->unslotted);
    }
}

void Recorder::fail_open(unsigned cause) noexcept {
    if (cause < kFailCauses) add(zone_->fail_open[cause]);
}

void Exposition::family(const Family& f) {
    out_ += std::string("# HELP ") + f.name + ' ' + f.help + "\n# TYPE " + f.name + ' ' + f.type + '\n';
}

void Exposition::sample(const char* name, const std::string& value, std::string_view label,
                        std::string_view label_value) {
    out_ += name;
    if (!label.empty()) {
        out_.append("{").append(label).append("=\"");
        out_ += escape_label(label_value);
        out_ += "\"}";
    }
    out_ += ' ' + value + '\n';
}

std::string escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string escape_json(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 2);
    out += '"';
    for (unsigned char c : value) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\u%04x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + '"';
}

std::string render_prometheus(const RenderInput& in) {
    const Zone& z = *in.zone;
    const WorkerGauges& g = in.gauges;
    Exposition t;
    t.single({"segedge_requests_total", "counter",
              "Requests whose visitor segments were resolved."}, read(z.requests));
    t.single({"segedge_stale_requests_total", "counter",
              "Requests resolved while the snapshot was older than segedge_max_staleness."}, read(z.stale));
    t.family({"segedge_segment_matches_total", "counter",
              "Requests whose visitor was in the segment."});
    each_named(z.segments, kSegmentSlots, [&](std::string_view name, std::uint64_t n) {
        t.sample("segedge_segment_matches_total", n, "segment", name);
    });
    t.family({"segedge_block_swaps_total", "counter",
              "Responses in which the block got the visitor's segment content."});
    each_named(z.blocks, kBlockSlots, [&](std::string_view name, std::uint64_t n) {
        t.sample("segedge_block_swaps_total", n, "block", name);
    });
    t.family({"segedge_experiment_exposures_total", "counter",
              "Requests assigned the variant (or the holdout) of an experiment, as experiment:variant."});
    each_named(z.exposures, kExposureSlots, [&](std::string_view name, std::uint64_t n) {
        t.sample("segedge_experiment_exposures_total", n, "exposure", name);
    });
    t.single({"segedge_uncounted_total", "counter",
              "Matches, swaps and exposures not counted by name because the zone's tables were full."}, read(z.unslotted));
    t.family({"segedge_fail_open_total", "counter",
              "Requests served unpersonalised because of a failure, by cause."});
    for (std::size_t i = 0; i < in.fail_causes.size() && i < kFailCauses; ++i)
        t.sample("segedge_fail_open_total", read(z.fail_open[i]), "cause", in.fail_causes[i]);
    t.single({"segedge_counters_created_seconds", "gauge",
              "When the counters started counting (unix time)."}, z.created_at);
    t.single({"segedge_snapshot_loaded", "gauge",
              "1 when the answering worker has a snapshot open."}, g.has_snapshot);
    if (!g.has_snapshot) return t.text();
    const std::pair<Family, std::uint64_t> snapshot_gauges[] = {
        {{"segedge_snapshot_generation", "gauge", "Generation of the snapshot in use."}, g.generation},
        {{"segedge_snapshot_built_seconds", "gauge", "When the snapshot in use was built (unix time)."}, g.built_at},
        {{"segedge_snapshot_switch_age_milliseconds", "gauge", "Time since the worker last switched snapshot."},
         g.since_switch_ms},
        {{"segedge_snapshot_stale", "gauge", "1 when the snapshot is older than segedge_max_staleness."}, g.stale},
        {{"segedge_lmdb_map_size_bytes", "gauge", "LMDB map size of the snapshot in use."}, g.map_size},
        {{"segedge_lmdb_map_used_bytes", "gauge", "LMDB map bytes up to the last page in use."}, g.map_used},
        {{"segedge_lmdb_readers", "gauge", "LMDB reader slots in use."}, g.readers},
        {{"segedge_lmdb_max_readers", "gauge", "LMDB reader slots available."}, g.max_readers},
    };
    for (const auto& [family, value] : snapshot_gauges) t.single(family, value);
    return t.text();
}

namespace {

template <typename F>
std::string json_map(const Slot* table, std::size_t size, F&& value) {
    std::string out = "{";
    each_named(table, size, [&](std::string_view name, std::uint64_t n) {
        if (out.size() > 1) out += ',';
        out += escape_json(name) + ':' + value(n);
    });
    return out + '}';
}

std::string number(std::uint64_t n) { return std::to_string(n); }

}  // namespace

std::string render_json(const RenderInput& in) {
    const Zone& z = *in.zone;
    const WorkerGauges& g = in.gauges;
    std::string causes = "{";
    for (std::size_t i = 0; i < in.fail_causes.size() && i < kFailCauses; ++i)
        causes += (i ? "," : "") + escape_json(in.fail_causes[i]) + ':' + number(read(z.fail_open[i]));
    causes += '}';
    std::string out = "{\"now\":" + number(in.now) + ",\"counters_created_at\":" + number(z.created_at) +
                      ",\"requests\":" + number(read(z.requests)) + ",\"stale_requests\":" + number(read(z.stale)) +
                      ",\"uncounted\":" + number(read(z.unslotted)) + ",\"fail_open\":" + causes +
                      ",\"segments\":" + json_map(z.segments, kSegmentSlots, number) +
                      ",\"blocks\":" + json_map(z.blocks, kBlockSlots, number) +
                      ",\"exposures\":" + json_map(z.exposures, kExposureSlots, number) + ",\"snapshot\":";
    if (!g.has_snapshot) return out + "null}\n";
    return out + "{\"generation\":" + number(g.generation) + ",\"built_at\":" + number(g.built_at) +
           ",\"switch_age_ms\":" + number(g.since_switch_ms) + ",\"stale\":" + (g.stale ? "true" : "false") +
           ",\"max_staleness\":" + number(g.max_staleness) + ",\"map_size\":" + number(g.map_size) +
           ",\"map_used\":" + number(g.map_used) + ",\"readers\":" + number(g.readers) +
           ",\"max_readers\":" + number(g.max_readers) + "}}\n";
}

}  // namespace segcore::metrics
