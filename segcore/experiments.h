// Experiments (A/B variants) in a snapshot, and the deterministic assignment
// of a visitor to a variant.
//
// bucket(salt, id) = first 8 bytes of SHA-256(salt ":" id), read as a
// big-endian u64, modulo kBuckets (10,000 basis points).
//
// For one experiment and one bucketing id:
//   1. paused, not targeted (none of its segments), or no id: no variant;
//   2. layer bucket = bucket(layer name, id); the experiment's layer is the
//      implicit layer named by its id when it names none;
//   3. layer bucket < the layer's holdout: "holdout" (default experience);
//   4. layer bucket outside [range_begin, range_end): not in the experiment;
//   5. otherwise bucket(salt, id) picks the variant whose cumulative weight
//      range (variants in stored order) contains it.
// Experiments of one layer own disjoint ranges, so they never share a
// visitor; different salts make different experiments independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace segcore::experiments {

inline constexpr std::uint32_t kBuckets = 10000;
inline constexpr std::size_t kMaxExperiments = 64;
inline constexpr std::size_t kMaxVariants = 16;
// Ids and layers: [a-z0-9_-]; variants also A-Z. 31 so that "id:variant" fits the
// metrics zone's slot names (schema::kMaxSegmentNameSize).
inline constexpr std::size_t kMaxNameSize = 31;
inline constexpr std::size_t kMaxSaltSize = 128;  // any bytes
inline constexpr std::string_view kHoldout = "holdout";
// Upper bound of "id:variant," per experiment, for $segedge_experiments.
inline constexpr std::size_t kMaxListSize = kMaxExperiments * (2 * kMaxNameSize + 2);

enum class Status : std::uint8_t { paused = 0, running = 1 };

struct Variant {
    std::string name;
    std::uint32_t weight = 0;  // basis points; an experiment's sum is kBuckets
};

struct ExperimentDef {
    std::string id;
    Status status = Status::running;
    std::string salt;
    std::vector<std::uint32_t> segments;  // segment ids; empty: everyone
    std::vector<Variant> variants;
    std::string layer;                     // empty: the implicit layer named by id
    std::uint32_t holdout = 0;             // the layer's holdout, buckets [0, holdout)
    std::uint32_t range_begin = 0;         // this experiment's layer buckets
    std::uint32_t range_end = kBuckets;

    std::string_view layer_name() const noexcept { return layer.empty() ? id : layer; }
};

bool operator==(const Variant& a, const Variant& b);
bool operator==(const ExperimentDef& a, const ExperimentDef& b);

// Experiment ids and layers: [a-z0-9_-]; variants: [A-Za-z0-9_-]; 1..kMaxNameSize.
bool is_valid_name(std::string_view name);
bool is_valid_variant_name(std::string_view name);

// SHA-256 based bucket in [0, kBuckets). No allocation: salt and id are
// hashed from a stack buffer, so a salt is cut at kMaxSaltSize and an id at
// schema::kMaxKeySize (the importer and the module keep both within).
std::uint32_t bucket(std::string_view salt, std::string_view id) noexcept;

// Key: the experiment id. Value (little-endian): u8 status, u16 holdout,
// u16 range_begin, u16 range_end, u8 len + salt, u8 len + layer, u8 count +
// u32 segment ids, u8 count + per variant (u16 weight, u8 len + name).
std::string encode(const ExperimentDef& def);
std::optional<ExperimentDef> decode(std::string_view id, std::string_view bytes);

// One experiment's variant for a visitor: `variant` indexes def.variants,
// kHoldoutIndex for the layer's holdout.
inline constexpr std::uint8_t kHoldoutIndex = 0xff;
struct Assignment {
    std::uint8_t experiment = 0;  // index in Catalogue::all()
    std::uint8_t variant = 0;
};

// The variant index for a visitor, kHoldoutIndex, or nullopt (none).
// `segments`: the visitor's segment ids.
std::optional<std::uint8_t> assign_index(const ExperimentDef& def, const std::uint32_t* segments,
                                         std::size_t n, std::string_view bucketing_id) noexcept;
// The same as a name: empty for none, kHoldout for the holdout.
std::string_view assign(const ExperimentDef& def, const std::uint32_t* segments, std::size_t n,
                        std::string_view bucketing_id) noexcept;

// The variant of experiment `id` in an exposure list, or empty.
std::string_view find_variant(std::string_view list, std::string_view id) noexcept;

// Every experiment of a snapshot in id order, decoded once per snapshot.
class Catalogue {
public:
    void add(ExperimentDef def);  // in id order (LMDB cursor order)
    const std::vector<ExperimentDef>& all() const noexcept { return defs_; }
    // Index of `id`, or nullopt.
    std::optional<std::size_t> find(std::string_view id) const noexcept;

    // Every experiment with a variant for the visitor, in id order, written
    // into `out` (kMaxExperiments entries); returns how many.
    std::size_t assign_all(const std::uint32_t* segments, std::size_t n,
                           std::string_view bucketing_id, Assignment* out) const noexcept;
    // "id:variant,..." for assign_all's result, written into `out`
    // (kMaxListSize bytes); returns its length.
    std::size_t exposure_list(const Assignment* assigned, std::size_t n, char* out) const noexcept;
    std::string_view variant_name(const Assignment& a) const noexcept;

private:
    std::vector<ExperimentDef> defs_;
};

}  // namespace segcore::experiments
