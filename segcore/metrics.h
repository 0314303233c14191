// Request counters shared by all nginx workers. The Zone is a fixed-layout
// block placed in memory the caller provides (an nginx shared zone); every
// update is one relaxed atomic add, so the hot path takes no lock.
//
// Segments and blocks are counted by name, not by id: ids are only
// meaningful within one snapshot, while counts must add up across
// snapshots. A name claims a slot once (compare-and-swap); each worker maps
// the ids of its snapshot to slots when it switches snapshot, so a request
// only indexes an array. Cardinality is bounded by the tables' sizes.
// Experiment exposures are counted the same way, by "experiment:variant"
// (a snapshot names at most kExposureSlots of them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "segcore/experiments.h"
#include "segcore/schema.h"

namespace segcore {

class Snapshot;
struct BlockChoice;

namespace metrics {

// Changes with the layout: a reload into a module with another layout
// starts new counters instead of misreading the old ones.
inline constexpr std::uint64_t kMagic = 0x5345474d45545232ull;  // "SEGMETR2"
inline constexpr std::size_t kSegmentSlots = 4096;
inline constexpr std::size_t kBlockSlots = schema::kMaxBlocks;
inline constexpr std::size_t kFailCauses = 8;
// Every variant and the holdout of every experiment a snapshot can hold.
inline constexpr std::size_t kExposureSlots =
    experiments::kMaxExperiments * (experiments::kMaxVariants + 1);

struct Slot {
    std::uint32_t state;  // 0 free, 1 being claimed, 2 named
    std::uint32_t length;
    char name[schema::kMaxSegmentNameSize];
    std::uint64_t count;
};

// Zero-initialised memory is a valid, empty Zone once init() has run.
struct Zone {
    std::uint64_t magic;
    std::uint64_t created_at;  // unix seconds: counters count from here
    std::uint64_t requests;    // requests whose segments were resolved
    std::uint64_t stale;       // of which served from a stale snapshot
    std::uint64_t fail_open[kFailCauses];
    std::uint64_t unslotted;   // matches and swaps not counted: table full
    Slot segments[kSegmentSlots];
    Slot blocks[kBlockSlots];
    Slot exposures[kExposureSlots];  // "experiment:variant"
};

// Prepares zeroed memory. A Zone with the right magic is left as it is.
void init(Zone& zone, std::uint64_t now);
bool valid(const Zone& zone) noexcept;

inline void add(std::uint64_t& counter, std::uint64_t n = 1) noexcept {
    __atomic_fetch_add(&counter, n, __ATOMIC_RELAXED);
}
inline std::uint64_t read(const std::uint64_t& counter) noexcept {
    return __atomic_load_n(&counter, __ATOMIC_RELAXED);
}

// The slot named `name` in `table`, claimed if needed; -1 when the table is
// full (or `name` too long).
int find_or_claim(Slot* table, std::size_t size, std::string_view name) noexcept;

// One worker's view: which slot counts each segment id and block index of
// the snapshot it uses. Rebuilt (allocating) only on a snapshot switch.
class Recorder {
public:
    explicit Recorder(Zone* zone) noexcept : zone_(zone) {}

    // Call when the worker's snapshot may have changed; cheap when not.
    void use(const Snapshot* snapshot, std::uint64_t generation);
    void request(bool stale) noexcept;
    void segments(const std::uint32_t* ids, std::size_t n) noexcept;
    void blocks(const BlockChoice* choices, std::size_t n) noexcept;
    void fail_open(unsigned cause) noexcept;
    void exposures(const experiments::Assignment* assigned, std::size_t n) noexcept;

    Zone* zone() const noexcept { return zone_; }

private:
    Zone* zone_;
    const Snapshot* snapshot_ = nullptr;
    std::uint64_t generation_ = 0;
    std::unordered_map<std::uint32_t, int> segment_slots_;
    std::vector<int> block_slots_;
    // per experiment index: a slot per variant, then the holdout's
    std::vector<std::vector<int>> exposure_slots_;
};

// What the worker answering a scrape knows about its own snapshot.
struct WorkerGauges {
    bool has_snapshot = false;
    std::uint64_t generation = 0;
    std::uint64_t built_at = 0;             // unix seconds
    std::uint64_t since_switch_ms = 0;
    std::uint64_t map_size = 0;             // bytes
    std::uint64_t map_used = 0;             // bytes up to the last page used
    std::uint64_t readers = 0;
    std::uint64_t max_readers = 0;
    std::uint64_t max_staleness = 0;        // seconds, 0: not configured
    bool stale = false;
};

struct RenderInput {
    const Zone* zone = nullptr;
    WorkerGauges gauges;
    std::uint64_t now = 0;                  // unix seconds
    std::vector<std::string> fail_causes;   // label per fail_open index
};

std::string escape_label(std::string_view value);

// Writes Prometheus text exposition format 0.0.4: a family's HELP and TYPE,
// then its samples, label values escaped.
struct Family {
    const char* name;
    const char* type;  // counter | gauge
    const char* help;
};

class Exposition {
public:
    void family(const Family& f);
    template <typename Number>
    void sample(const char* name, Number value, std::string_view label = {}, std::string_view label_value = {}) {
        sample(name, std::to_string(value), label, label_value);
    }
    // A family of one unlabelled sample.
    template <typename Number>
    void single(const Family& f, Number value) {
        family(f);
        sample(f.name, value);
    }
    const std::string& text() const noexcept { return out_; }

private:
    void sample(const char* name, const std::string& value, std::string_view label, std::string_view label_value);
    std::string out_;
};
std::string escape_json(std::string_view value);

// Prometheus text exposition format 0.0.4.
std::string render_prometheus(const RenderInput& in);
// The same counters as one JSON object (see README "Status endpoint").
std::string render_json(const RenderInput& in);

}  // namespace metrics
}  // namespace segcore
