// `segsync report`: the review cadence as a command. Puts the snapshot's
// segment catalogue (owner, description) next to the module's match
// counters (segedge_status?format=json, saved or fetched) and lists the
// segments nobody matched over the window, those that match almost every
// request, and those that match almost none.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "segcore/experiments.h"
#include "segcore/schema.h"

namespace segsync {

// What report needs from one scrape of segedge_status?format=json.
struct Counters {
    std::uint64_t now = 0;         // when it was scraped (unix seconds)
    std::uint64_t created_at = 0;  // when the counters started
    std::uint64_t requests = 0;
    std::map<std::string, std::uint64_t> segments;
};

// Throws ImportError naming `origin` when the text is not such a scrape.
Counters parse_counters(const std::string& text, const std::string& origin);
// GET url (libcurl); throws ImportError.
std::string fetch_status(const std::string& url);

struct ReportOptions {
    double near_universal = 0.9;  // share of requests at or above which
    double near_empty = 0.001;    // share below which (but above zero)
    std::uint64_t window = 0;     // seconds the counts must cover; 0: any
};

struct SegmentRow {
    std::string name;
    std::string owner;
    std::string description;
    std::uint64_t matches = 0;
    double share = 0;  // of the window's requests
};

struct Report {
    std::uint64_t from = 0, to = 0;  // the window
    std::uint64_t requests = 0;
    std::vector<SegmentRow> dead, near_universal, near_empty;
    std::size_t experiments = 0;     // experiments in the snapshot
    std::vector<std::string> experiments_without_holdout;
};

// The counts of `current`, minus those of `baseline` (an earlier scrape of
// the same counters) when given. Throws ImportError when the baseline is
// not earlier or the counters were reset in between, or the window is
// shorter than options.window.
Report build_report(const std::vector<segcore::schema::SegmentDef>& catalogue, const Counters& current,
                    const Counters* baseline, const ReportOptions& options);

// Counts the snapshot's experiments and lists the running ones without a
// holdout: nothing to measure them against.
void check_holdouts(Report& report, const std::vector<segcore::experiments::ExperimentDef>& experiments);

void print_report(const Report& report, bool as_json, std::ostream& out);

}  // namespace segsync
