// The LMDB snapshot format, defined once for the module (reader) and segsync
// (writer). Every value the module reads per request is fixed-layout binary,
// little-endian, so the hot path never parses text.
//
// Named databases of schema v1:
//   meta      key: ASCII name          value: see Meta below
//   segments  key: u32 id (big-endian, so cursor order is id order)
//             value: SegmentDef encoding
//   profiles  key: VisitorKind byte + visitor id bytes
//             value: ProfileRecord encoding (segment ids, priority order,
//             then an optional attribute section)
//   aliases   key: anonymous visitor id bytes   value: known visitor id bytes
//             (identity resolution: this anonymous visitor is that person)
//   attributes key: u16 id (big-endian)   value: AttributeDef encoding
//             (names of profile attributes; grows through delta batches, so
//             a reader that caches it must reload it when the generation
//             moves; may be absent in older snapshots: then empty)
//   blocks    key: block name, '\0', u32 segment id (big-endian), variant
//             value: the HTML fragment shown in that block to that segment
//             The variant is empty for a block's content; a non-empty one,
//             "experiment:variant", is the content for the segment's visitors
//             who have that variant (the segment's own content must exist).
//             The '\0' sorts below every name byte, so one block's keys are
//             contiguous in cursor order, each segment's content first.
//   experiments key: experiment id   value: experiments::encode (see
//             segcore/experiments.h); may be absent: no experiments
//
// Segments and blocks never change in place: they change only with a full
// snapshot. Profiles, aliases, attributes and meta's generation also change
// in place, one LMDB write transaction per delta batch.
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
inline constexpr const char* kAttributesDb = "attributes";
inline constexpr const char* kBlocksDb = "blocks";
inline constexpr const char* kExperimentsDb = "experiments";
inline constexpr unsigned kMaxDbs = 8;

inline constexpr std::string_view kMetaSchemaVersion = "schema_version";  // u32
inline constexpr std::string_view kMetaGeneration = "generation";         // u64
inline constexpr std::string_view kMetaBuiltAt = "built_at";              // u64 unix s
inline constexpr std::string_view kMetaSource = "source";                 // UTF-8 text
// "feed:<source name>" -> name of the last feed applied (or rejected) from
// that segsync source; written in the same transaction as the feed's data,
// so a feed is never applied twice, even across a crash.
inline constexpr std::string_view kMetaFeedPrefix = "feed:";

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
    // Real-time rule (segcore/rules.h), compact JSON text; empty: membership
    // is precomputed only. Stored after owner, and only when non-empty, so
    // snapshots without rules keep their bytes.
    std::string rule;
};

bool operator==(const SegmentDef& a, const SegmentDef& b);

std::string encode_segment_key(std::uint32_t id);
std::optional<std::uint32_t> decode_segment_key(std::string_view key);
std::string encode_segment(const SegmentDef& def);
// nullopt when the bytes are not a well-formed v1 segment value.
std::optional<SegmentDef> decode_segment(std::uint32_t id, std::string_view bytes);

// Profile attributes (RFM scores, lifecycle stage, ...): a number or a text
// per attribute. Names are identifiers so rule expressions can use them:
// [a-z_][a-z0-9_]*, 1..kMaxAttributeNameSize.
inline constexpr std::size_t kMaxAttributeNameSize = 64;
inline constexpr std::size_t kMaxAttributeTextSize = 1024;
inline constexpr std::size_t kMaxAttributesPerProfile = 64;
inline constexpr std::size_t kMaxAttributes = 65535;  // ids 1..65535

enum class AttributeType : std::uint8_t { number = 'n', text = 's' };

bool is_valid_attribute_name(std::string_view name);
std::string_view to_string(AttributeType type);

// One catalogued attribute; every value stored for it has its type.
struct AttributeDef {
    std::uint16_t id = 0;
    AttributeType type = AttributeType::number;
    std::string name;
};

bool operator==(const AttributeDef& a, const AttributeDef& b);

// Key: u16 id big-endian. Value: type byte, then the name.
std::string encode_attribute_key(std::uint16_t id);
std::optional<std::uint16_t> decode_attribute_key(std::string_view key);
std::string encode_attribute(const AttributeDef& def);
std::optional<AttributeDef> decode_attribute(std::uint16_t id, std::string_view bytes);

struct AttributeValue {
    std::uint16_t id = 0;
    AttributeType type = AttributeType::number;
    double number = 0;  // when type is number (finite)
    std::string text;   // when type is text
};

bool operator==(const AttributeValue& a, const AttributeValue& b);

// An attribute value read in place; `text` points into the profile bytes.
struct AttributeView {
    AttributeType type = AttributeType::number;
    double number = 0;
    std::string_view text;
};

struct ProfileRecord {
    std::vector<std::uint32_t> segment_ids;  // stored order
    std::vector<AttributeValue> attributes;  // ascending id, each id once
};

// A profile value: u16 count, then count u32 segment ids; then, only when
// the profile has attributes, u16 count and per attribute: u16 id, type
// byte, and an f64 (number) or u16 length + bytes (text). A value without
// attributes is byte-for-byte the original v1 layout.
std::string encode_profile(const std::vector<std::uint32_t>& segment_ids,
                           const std::vector<AttributeValue>& attributes = {});
// The same into `out` (replacing its contents), for a writer that reuses one
// buffer per record.
void encode_profile(const std::uint32_t* segment_ids, std::size_t segment_count,
                    const AttributeValue* attributes, std::size_t attribute_count, std::string& out);
// Number of ids in a well-formed value, or nullopt. Cheap: length checks
// only; the attribute section is skipped, not decoded.
std::optional<std::size_t> profile_segment_count(std::string_view bytes);
// Full decode (segsync, verify, dump), nullopt for a malformed value.
std::optional<ProfileRecord> decode_profile_record(std::string_view bytes);
// Walks the attributes of a profile value in place, ascending id, stopping
// at the end or at the first malformed one. No allocation.
class AttributeReader {
public:
    explicit AttributeReader(std::string_view profile) noexcept;
    bool next(std::uint16_t& id, AttributeView& out) noexcept;

private:
    std::string_view rest_;
    std::size_t left_ = 0;
};
// A profile value decoded in place, for walks over every profile: ids
// copied, attribute texts pointing into the bytes, nothing allocated.
struct ProfileView {
    struct Attribute {
        std::uint16_t id = 0;
        AttributeView value;
    };
    std::uint32_t segment_ids[kMaxSegmentsPerProfile];
    std::size_t segment_count = 0;
    Attribute attributes[kMaxAttributesPerProfile];
    std::size_t attribute_count = 0;
};
// decode_profile_record's checks; false for a malformed value.
bool decode_profile_view(std::string_view bytes, ProfileView& out);
// Copies at most out_capacity ids; returns how many were copied. The value
// must have passed profile_segment_count.
std::size_t decode_profile(std::string_view bytes, std::uint32_t* out, std::size_t out_capacity);

std::string encode_u64(std::uint64_t value);
std::optional<std::uint64_t> decode_u64(std::string_view bytes);
std::string encode_u32(std::uint32_t value);
std::optional<std::uint32_t> decode_u32(std::string_view bytes);

}  // namespace segcore::schema
