// Delta batches: NDJSON, one change per line, applied in file order inside
// the caller's single write transaction. The first bad line throws; the
// caller aborts the transaction, so readers never see part of a batch.
#pragma once

#include <cstddef>

#include "sync/editor.h"
#include "sync/error.h"
#include "sync/sources.h"

namespace segsync {

struct DeltaStats {
    std::size_t changes = 0;
    std::size_t enters = 0;
    std::size_t exits = 0;
    std::size_t upserts = 0;
    std::size_t deletes = 0;
    std::size_t aliases = 0;
};

// Throws ImportError "FILE:LINE: message" for a bad line, Cancelled when
// `cancelled` says so (checked every few thousand lines).
DeltaStats apply_delta(NdjsonReader& reader, ProfileEditor& editor, const CancelCheck& cancelled);

}  // namespace segsync
