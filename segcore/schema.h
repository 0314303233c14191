// The LMDB snapshot format, defined once for the module (reader) and segsync
// (writer). Every value the module reads per request is fixed-layout binary,
// little-endian, so the hot path never parses text.
//
// Named databases of schema v1:
//   meta      key: ASCII name          value: see Meta below
//   segments  key: u32 id (big-endian, so cursor order is id order)
//             value: SegmentDef encoding
//   profiles  key: VisitorKind byte + visitor id bytes
//             value: ProfileRecord encoding (segment ids, priority order)
//   aliases   key: anonymous visitor id bytes   value: known visitor id bytes
//             (identity resolution: this anonymous visitor is that person)
//   blocks    key: block name, '\0', u32 segment id (big-endian), variant
//             value: the HTML fragment shown in that block to that segment
//             The variant is empty for a block's content; non-empty variants
//             are reserved for per-experiment content and skipped by readers
//             that do not know them. The '\0' sorts below every name byte,
//             so one block's keys are contiguous in cursor order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace segcore::schema {

inline constexpr std::uint32_t kVersion = 1;

inline constexpr const char* kMetaDb = "meta";
inline constexpr const char* kSegmentsDb = "segments";
inline constexpr const char* kProfilesDb = "profiles";
inline constexpr const char* kAliasesDb = "aliases";
inline constexpr const char* kBlocksDb = "blocks";
inline constexpr unsigned kMaxDbs = 8;

inline constexpr std::string_view kMetaSchemaVersion = "schema_version";  // u32
inline constexpr std::string_view kMetaGeneration = "generation";         // u64
inline constexpr std::string_view kMetaBuiltAt = "built_at";              // u64 unix s
inline constexpr std::string_view kMetaSource = "source";                 // UTF-8 text

// LMDB's compiled-in key limit (mdb_env_get_maxkeysize) on Debian's liblmdb.
inline constexpr std::size_t kMaxKeySize = 511;
inline constexpr std::size_t kMaxVisitorIdSize = kMaxKeySize - 1;
inline constexpr std::size_t kMaxSegmentNameSize = 64;
// Bounds the module's per-request output buffer; the importer enforces it.
inline constexpr std::size_t kMaxSegmentsPerProfile = 256;

// Block names follow the segment name rule; the module's marker scanner and
// the importer both rely on it.
inline constexpr std::size_t kMaxBlockNameSize = kMaxSegmentNameSize;
inline constexpr std::size_t kMaxVariantNameSize = 64;
// Bounds the per-request copy of a chosen fragment; the importer enforces it.
inline constexpr std::size_t kMaxFragmentSize = 64 * 1024;
// Distinct block names per snapshot: bounds the module's per-request choice.
inline constexpr std::size_t kMaxBlocks = 256;
inline constexpr std::size_t kMaxBlockKeySize = kMaxBlockNameSize + 1 + 4 + kMaxVariantNameSize;

// The key prefix keeps anonymous and known ids apart even when the strings
// are equal.
enum class VisitorKind : std::uint8_t { anonymous = 'a', known = 'k' };

std::optional<VisitorKind> parse_visitor_kind(std::string_view text);
std::string_view to_string(VisitorKind kind);

// Writes the key into `out` (at least kMaxKeySize bytes) and returns its
// length, or 0 when the id is empty or too long. No allocation: used per
// request.
std::size_t encode_visitor_key(VisitorKind kind, std::string_view id, char* out);
// The kind of a stored profile key, or nullopt for a malformed key.
std::optional<VisitorKind> decode_visitor_key_kind(std::string_view key);

// Segment names travel in headers and comma-separated variables, so they are
// restricted to [a-z0-9_-], 1..kMaxSegmentNameSize.
bool is_valid_segment_name(std::string_view name);

bool is_valid_block_name(std::string_view name);

// A decoded blocks-db key; the views point into the key bytes.
struct BlockKey {
    std::string_view block;
    std::uint32_t segment = 0;
    std::string_view variant;  // empty: the block's content for the segment
};

// Writes the key into `out` (at least kMaxBlockKeySize bytes) and returns its
// length, or 0 for an invalid block or variant name. No allocation.
std::size_t encode_block_key(std::string_view block, std::uint32_t segment, std::string_view variant,
                             char* out);
std::optional<BlockKey> decode_block_key(std::string_view key);

struct SegmentDef {
    std::uint32_t id = 0;
    std::string name;
    std::string description;
    std::string owner;
    std::int32_t priority = 0;  // higher first
};

bool operator==(const SegmentDef& a, const SegmentDef& b);

std::string encode_segment_key(std::uint32_t id);
std::optional<std::uint32_t> decode_segment_key(std::string_view key);
std::string encode_segment(const SegmentDef& def);
// nullopt when the bytes are not a well-formed v1 segment value.
std::optional<SegmentDef> decode_segment(std::uint32_t id, std::string_view bytes);

// A profile value: u16 count, then count u32 segment ids.
std::string encode_profile(const std::vector<std::uint32_t>& segment_ids);
// Number of ids in a well-formed value, or nullopt. Cheap: length check only.
std::optional<std::size_t> profile_segment_count(std::string_view bytes);
// Copies at most out_capacity ids; returns how many were copied. The value
// must have passed profile_segment_count.
std::size_t decode_profile(std::string_view bytes, std::uint32_t* out, std::size_t out_capacity);

std::string encode_u64(std::uint64_t value);
std::optional<std::uint64_t> decode_u64(std::string_view bytes);
std::string encode_u32(std::uint32_t value);
std::optional<std::uint32_t> decode_u32(std::string_view bytes);

}  // namespace segcore::schema
