// RFM scores and lifecycle stages computed from an orders feed (NDJSON:
// customer, at, amount), stored as attributes of the customers' known
// profiles. The feed is streamed; per-customer totals and the value
// distributions live in a scratch LMDB environment on disk, so memory stays
// bounded whatever the number of customers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sync/editor.h"
#include "sync/error.h"

namespace segsync {

// Lifecycle stage thresholds, in whole days since the last order.
struct RfmThresholds {
    unsigned quiet_days = 60;        // high-value-quiet: top spenders gone quiet
    unsigned at_risk_days = 90;      // at-risk
    unsigned lapsed_days = 365;      // lapsed
    unsigned high_value_score = 4;   // rfm_monetary at least this is high value
};

struct CustomerTotals {
    std::uint64_t orders = 0;
    double amount = 0;
    std::int64_t last_at = 0;  // unix seconds
};

// Ascending cut points c1..c4 of one metric: the values at ranks
// ceil(k * n / 5), k = 1..4, over all customers.
using QuintileCuts = std::array<double, 4>;

// 1 + the number of cut points `value` exceeds: 1..5, ties score alike.
int quintile_score(double value, const QuintileCuts& cuts);

// new, repeat, high-value-quiet, at-risk or lapsed (first match from the
// most severe; see README).
std::string lifecycle_stage(const CustomerTotals& totals, int monetary_score, std::int64_t as_of,
                            const RfmThresholds& thresholds);

struct RfmStats {
    std::size_t orders = 0;
    std::size_t customers = 0;
    std::size_t created = 0;  // customers without a profile before
    std::size_t cleared = 0;  // profiles that lost their RFM attributes
};

// Scores every customer in `orders_path` and stores rfm_recency,
// rfm_frequency, rfm_monetary, lifecycle, order_count, order_total and
// last_order_at on their known profiles through `editor`; known profiles of
// customers absent from the feed lose these attributes. `scratch_parent` is
// a directory to create the temporary environment in; `as_of` (unix
// seconds) is "now" for lifecycle ages. At most `held_in_memory` customers
// (and distinct values) are held in memory before being merged into the
// scratch environment. Throws ImportError "FILE:LINE: ..." for a bad order
// line, Cancelled when asked to stop.
inline constexpr std::size_t kRfmHeldInMemory = 100000;
RfmStats apply_rfm(const std::string& orders_path, const RfmThresholds& thresholds,
                   std::int64_t as_of, ProfileEditor& editor, const std::string& scratch_parent,
                   const CancelCheck& cancelled, std::size_t held_in_memory = kRfmHeldInMemory);

}  // namespace segsync
