#include "segcore/experiments.h"

// The one-shot SHA256() of OpenSSL 3 fetches the algorithm and allocates a
// context on every call (about 3,400 instructions and malloc/free per
// bucket); the low-level functions hash on the stack. They are deprecated
// in 3.0 but kept, and bucket() must stay exactly SHA-256.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include "segcore/schema.h"

namespace segcore::experiments {
namespace {

void put_u8(std::string& out, std::size_t v) { out.push_back(static_cast<char>(v & 0xff)); }

void put_u16(std::string& out, std::uint32_t v) {
    put_u8(out, v);
    put_u8(out, v >> 8);
}

void put_text(std::string& out, std::string_view text) {
    put_u8(out, text.size());
    out.append(text);
}

class Reader {
public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}

    bool u8(std::uint32_t& v) {
        if (bytes_.size() < 1) return false;
        v = static_cast<unsigned char>(bytes_[0]);
        bytes_.remove_prefix(1);
        return true;
    }
    bool u16(std::uint32_t& v) {
        std::uint32_t lo = 0, hi = 0;
        if (!u8(lo) || !u8(hi)) return false;
        v = lo | (hi << 8);
        return true;
    }
    bool u32(std::uint32_t& v) {
        std::uint32_t lo = 0, hi = 0;
        if (!u16(lo) || !u16(hi)) return false;
        v = lo | (hi << 16);
        return true;
    }
    bool text(std::string& out) {
        std::uint32_t n = 0;
        if (!u8(n) || bytes_.size() < n) return false;
        out.assign(bytes_.substr(0, n));
        bytes_.remove_prefix(n);
        return true;
    }
    bool done() const { return bytes_.empty(); }

private:
    std::string_view bytes_;
};

bool targeted(const ExperimentDef& def, const std::uint32_t* segments, std::size_t n) {
    if (def.segments.empty()) return true;
    for (std::size_t i = 0; i < n; ++i)
        if (std::find(def.segments.begin(), def.segments.end(), segments[i]) != def.segments.end())
            return true;
    return false;
}

bool well_formed(const ExperimentDef& def) {
    std::uint32_t sum = 0;
    for (const auto& v : def.variants) sum += v.weight;
    return sum == kBuckets && !def.variants.empty() && def.status <= Status::running &&
           def.holdout <= def.range_begin && def.range_begin < def.range_end &&
           def.range_end <= kBuckets;
}

}  // namespace

bool operator==(const Variant& a, const Variant& b) {
    return a.name == b.name && a.weight == b.weight;
}

bool operator==(const ExperimentDef& a, const ExperimentDef& b) {
    return a.id == b.id && a.status == b.status && a.salt == b.salt && a.segments == b.segments &&
           a.variants == b.variants && a.layer == b.layer && a.holdout == b.holdout &&
           a.range_begin == b.range_begin && a.range_end == b.range_end;
}

bool is_valid_name(std::string_view name) {
    return name.size() <= kMaxNameSize && schema::is_valid_segment_name(name);
}

bool is_valid_variant_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameSize) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

std::uint32_t bucket(std::string_view salt, std::string_view id) noexcept {
    unsigned char input[kMaxSaltSize + 1 + schema::kMaxKeySize];
    salt = salt.substr(0, kMaxSaltSize);
    id = id.substr(0, schema::kMaxKeySize);
    std::memcpy(input, salt.data(), salt.size());
    input[salt.size()] = ':';
    std::memcpy(input + salt.size() + 1, id.data(), id.size());
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256_CTX sha;
    SHA256_Init(&sha);
    SHA256_Update(&sha, input, salt.size() + 1 + id.size());
    SHA256_Final(digest, &sha);
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = (value << 8) | digest[i];
    return static_cast<std::uint32_t>(value % kBuckets);
}

std::string encode(const ExperimentDef& def) {
    std::string out;
    put_u8(out, static_cast<std::uint8_t>(def.status));
    put_u16(out, def.holdout);
    put_u16(out, def.range_begin);
    put_u16(out, def.range_end);
    put_text(out, def.salt);
    put_text(out, def.layer);
    put_u8(out, def.segments.size());
    for (std::uint32_t id : def.segments) {
        put_u16(out, id & 0xffff);
        put_u16(out, id >> 16);
    }
    put_u8(out, def.variants.size());
    for (const auto& v : def.variants) {
        put_u16(out, v.weight);
        put_text(out, v.name);
    }
    return out;
}

std::optional<ExperimentDef> decode(std::string_view id, std::string_view bytes) {
    ExperimentDef def;
    def.id = std::string(id);
    Reader in(bytes);
    std::uint32_t status = 0, count = 0;
    if (!in.u8(status) || !in.u16(def.holdout) || !in.u16(def.range_begin) ||
        !in.u16(def.range_end) || !in.text(def.salt) || !in.text(def.layer) || !in.u8(count))
        return std::nullopt;
    def.status = static_cast<Status>(status);
    def.segments.resize(count);
    for (auto& segment : def.segments)
        if (!in.u32(segment)) return std::nullopt;
    if (!in.u8(count) || count > kMaxVariants) return std::nullopt;
    def.variants.resize(count);
    for (auto& v : def.variants)
        if (!in.u16(v.weight) || !in.text(v.name)) return std::nullopt;
    if (!in.done() || !well_formed(def)) return std::nullopt;
    return def;
}

std::optional<std::uint8_t> assign_index(const ExperimentDef& def, const std::uint32_t* segments,
                                         std::size_t n, std::string_view bucketing_id) noexcept {
    if (def.status != Status::running || bucketing_id.empty() || !targeted(def, segments, n))
        return std::nullopt;
    std::uint32_t layer_bucket = bucket(def.layer_name(), bucketing_id);
    if (layer_bucket < def.holdout) return kHoldoutIndex;
    if (layer_bucket < def.range_begin || layer_bucket >= def.range_end) return std::nullopt;
    std::uint32_t b = bucket(def.salt, bucketing_id);
    std::uint32_t upper = 0;
    for (std::size_t v = 0; v < def.variants.size(); ++v) {
        upper += def.variants[v].weight;
        if (b < upper) return static_cast<std::uint8_t>(v);
    }
    return std::nullopt;  // unreachable for a well-formed definition
}

std::string_view assign(const ExperimentDef& def, const std::uint32_t* segments, std::size_t n,
                        std::string_view bucketing_id) noexcept {
    auto index = assign_index(def, segments, n, bucketing_id);
    if (!index) return {};
    return *index == kHoldoutIndex ? kHoldout : std::string_view(def.variants[*index].name);
}

std::string_view find_variant(std::string_view list, std::string_view id) noexcept {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view entry = list.substr(0, comma);
        std::size_t colon = entry.find(':');
        if (entry.substr(0, colon) == id) return entry.substr(colon + 1);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return {};
}

void Catalogue::add(ExperimentDef def) { defs_.push_back(std::move(def)); }

std::optional<std::size_t> Catalogue::find(std::string_view id) const noexcept {
    for (std::size_t i = 0; i < defs_.size(); ++i)
        if (defs_[i].id == id) return i;
    return std::nullopt;
}

std::size_t Catalogue::assign_all(const std::uint32_t* segments, std::size_t n,
                                  std::string_view bucketing_id, Assignment* out) const noexcept {
    std::size_t count = 0;
    for (std::size_t i = 0; i < defs_.size() && i < kMaxExperiments; ++i) {
        auto index = assign_index(defs_[i], segments, n, bucketing_id);
        if (index) out[count++] = {static_cast<std::uint8_t>(i), *index};
    }
    return count;
}

std::string_view Catalogue::variant_name(const Assignment& a) const noexcept {
    if (a.variant == kHoldoutIndex) return kHoldout;
    return defs_[a.experiment].variants[a.variant].name;
}

std::size_t Catalogue::exposure_list(const Assignment* assigned, std::size_t n, char* out) const noexcept {
    std::size_t len = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& id = defs_[assigned[i].experiment].id;
        std::string_view variant = variant_name(assigned[i]);
        if (len) out[len++] = ',';
        std::memcpy(out + len, id.data(), id.size());
        len += id.size();
        out[len++] = ':';
        std::memcpy(out + len, variant.data(), variant.size());
        len += variant.size();
    }
    return len;
}

}  // namespace segcore::experiments
