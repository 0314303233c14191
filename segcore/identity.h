// Identity resolution: who the visitor is and which stored segments apply.
//
//   1. A known id from a verified signed cookie wins.
//   2. Otherwise an anonymous id with an alias resolves to its known id.
//   3. The segments are those of the known profile (if any) merged with
//      those of the anonymous profile of the cookie's id: each segment once,
//      in stored order (priority descending, then segment id ascending).
//
// The anonymous profile keeps what this browser did before (or without)
// logging in; the known profile adds what the customer record says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "segcore/schema.h"
#include "segcore/snapshot.h"

namespace segcore {

inline constexpr std::size_t kMaxResolvedSegments = 2 * schema::kMaxSegmentsPerProfile;

struct VisitorClaims {
    std::string_view anonymous_id;  // canonical id from the cookie, or empty
    std::string_view known_id;      // from a verified signed cookie, or empty
    bool anonymous_is_new = false;  // issued on this request: nothing stored
};

struct Resolution {
    bool known = false;          // a known id applies (signed or aliased)
    std::size_t segments = 0;    // ids written to `out`
    std::uint64_t generation = 0;  // of the transaction the ids were read in
};

// Applies the rule above with at most three LMDB reads (alias, known
// profile, anonymous profile) in one read transaction. `snapshot` may be
// null (nothing published yet): then only `known` is decided. `out` must
// hold kMaxResolvedSegments ids. No allocation; throws
// LmdbError/SnapshotError on a broken database.
// Receives the stored profile values resolve_identity reads (known first,
// then anonymous), for their attributes; `value` is valid only during the
// call (it points into the LMDB map).
class ProfileSink {
public:
    virtual void take(schema::VisitorKind kind, std::string_view value) = 0;

protected:
    ~ProfileSink() = default;
};

// Stored order: priority descending, then id ascending.
bool comes_before(const Snapshot& snapshot, std::uint32_t a, std::uint32_t b);
// Merges two lists that are each in stored order into `out` (room for
// na + nb), dropping repeats; returns the count.
std::size_t merge_stored_order(const Snapshot& snapshot, const std::uint32_t* a, std::size_t na,
                               const std::uint32_t* b, std::size_t nb, std::uint32_t* out);

Resolution resolve_identity(Snapshot* snapshot, const VisitorClaims& claims, std::uint32_t* out,
                            ProfileSink* profiles = nullptr);

}  // namespace segcore
