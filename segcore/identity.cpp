#include "segcore/identity.h"

namespace segcore {

bool comes_before(const Snapshot& snapshot, std::uint32_t a, std::uint32_t b) {
    const schema::SegmentDef* da = snapshot.segment(a);
    const schema::SegmentDef* db = snapshot.segment(b);
    std::int32_t pa = da ? da->priority : 0, pb = db ? db->priority : 0;
    return pa != pb ? pa > pb : a < b;
}

std::size_t merge_stored_order(const Snapshot& snapshot, const std::uint32_t* a, std::size_t na,
                  const std::uint32_t* b, std::size_t nb, std::uint32_t* out) {
    std::size_t i = 0, j = 0, n = 0;
    while (i < na || j < nb) {
        std::uint32_t next;
        if (j == nb || (i < na && a[i] != b[j] && comes_before(snapshot, a[i], b[j]))) {
            next = a[i++];
        } else if (i < na && a[i] == b[j]) {
            next = a[i++];
            ++j;
        } else {
            next = b[j++];
        }
        out[n++] = next;
    }
    return n;
}

namespace {

std::size_t read_profile(Snapshot::Read& read, schema::VisitorKind kind, std::string_view id,
                         std::uint32_t* out, ProfileSink* profiles) {
    std::string_view value = read.profile_value(kind, id);
    if (value.empty()) return 0;
    if (profiles) profiles->take(kind, value);
    return schema::decode_profile(value, out, schema::kMaxSegmentsPerProfile);
}

}  // namespace

Resolution resolve_identity(Snapshot* snapshot, const VisitorClaims& claims, std::uint32_t* out,
                            ProfileSink* profiles) {
    Resolution result;
    result.known = !claims.known_id.empty();
    if (!snapshot) return result;

    constexpr std::size_t kMax = schema::kMaxSegmentsPerProfile;
    std::uint32_t known_ids[kMax], anonymous_ids[kMax];
    std::size_t known_count = 0, anonymous_count = 0;
    char alias[schema::kMaxVisitorIdSize];
    std::string_view known_id = claims.known_id;
    bool stored_anonymous = !claims.anonymous_id.empty() && !claims.anonymous_is_new;

    Snapshot::Read read(*snapshot);
    result.generation = read.generation();
    if (known_id.empty() && stored_anonymous)
        known_id = std::string_view(alias, read.alias(claims.anonymous_id, alias));
    if (!known_id.empty()) {
        result.known = true;
        known_count = read_profile(read, schema::VisitorKind::known, known_id, known_ids, profiles);
    }
    if (stored_anonymous)
        anonymous_count = read_profile(read, schema::VisitorKind::anonymous, claims.anonymous_id,
                                       anonymous_ids, profiles);
    result.segments = merge_stored_order(*snapshot, known_ids, known_count, anonymous_ids, anonymous_count, out);
    return result;
}

}  // namespace segcore
