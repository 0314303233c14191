#include "sync/report.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

#include "sync/error.h"
#include "sync/status.h"

namespace segsync {

namespace {

using nlohmann::json;

std::uint64_t count_at(const Counters& c, const std::string& name) {
    auto it = c.segments.find(name);
    return it == c.segments.end() ? 0 : it->second;
}

std::string days(std::uint64_t seconds) {
    return std::to_string(seconds / 86400) + "d " + std::to_string(seconds % 86400 / 3600) + "h";
}

size_t append(char* data, size_t size, size_t n, void* body) {
    static_cast<std::string*>(body)->append(data, size * n);
    return size * n;
}

void print_rows(const char* title, const std::vector<SegmentRow>& rows, std::ostream& out) {
    out << title << ": " << (rows.empty() ? "none" : std::to_string(rows.size())) << '\n';
    for (const auto& r : rows) {
        char share[32];
        std::snprintf(share, sizeof share, "%.3f%%", r.share * 100);
        out << "  " << r.name << "  matches " << r.matches << " (" << share << ")  owner "
            << (r.owner.empty() ? "-" : r.owner) << "  " << r.description << '\n';
    }
}

json rows_json(const std::vector<SegmentRow>& rows) {
    json a = json::array();
    for (const auto& r : rows)
        a.push_back({{"segment", r.name}, {"owner", r.owner}, {"description", r.description},
                     {"matches", r.matches}, {"share", r.share}});
    return a;
}

}  // namespace

Counters parse_counters(const std::string& text, const std::string& origin) {
    try {
        json j = json::parse(text);
        Counters c;
        c.now = j.at("now").get<std::uint64_t>();
        c.created_at = j.at("counters_created_at").get<std::uint64_t>();
        c.requests = j.at("requests").get<std::uint64_t>();
        for (const auto& [name, matches] : j.at("segments").items()) c.segments[name] = matches.get<std::uint64_t>();
        return c;
    } catch (const json::exception& e) {
        throw ImportError(origin + ": not segedge_status JSON output: " + e.what());
    }
}

std::string fetch_status(const std::string& url) {
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw ImportError("curl_easy_init failed");
    std::string body;
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) throw ImportError(url + ": " + (error[0] ? error : curl_easy_strerror(rc)));
    return body;
}

Report build_report(const std::vector<segcore::schema::SegmentDef>& catalogue, const Counters& current,
                    const Counters* baseline, const ReportOptions& options) {
    Report report;
    report.from = baseline ? baseline->now : current.created_at;
    report.to = current.now;
    if (baseline && (baseline->created_at != current.created_at || baseline->now > current.now ||
                     baseline->requests > current.requests))
        throw ImportError("the baseline is not an earlier scrape of the same counters "
                          "(they were reset, or it is newer)");
    if (report.to - report.from < options.window)
        throw ImportError("the counters cover " + days(report.to - report.from) + " since " + utc_time(static_cast<std::int64_t>(report.from)) +
                          ", less than the window of " + days(options.window));
    report.requests = current.requests - (baseline ? baseline->requests : 0);
    for (const auto& def : catalogue) {
        SegmentRow row{def.name, def.owner, def.description, 0, 0};
        std::uint64_t before = baseline ? count_at(*baseline, def.name) : 0;
        row.matches = count_at(current, def.name) - std::min(before, count_at(current, def.name));
        row.share = report.requests ? static_cast<double>(row.matches) / report.requests : 0;
        if (row.matches == 0)
            report.dead.push_back(row);
        else if (row.share >= options.near_universal)
            report.near_universal.push_back(row);
        else if (row.share < options.near_empty)
            report.near_empty.push_back(row);
    }
    auto by_name = [](const SegmentRow& a, const SegmentRow& b) { return a.name < b.name; };
    for (auto* rows : {&report.dead, &report.near_universal, &report.near_empty})
        std::sort(rows->begin(), rows->end(), by_name);
    return report;
}

void check_holdouts(Report& report, const std::vector<segcore::experiments::ExperimentDef>& experiments) {
    report.experiments = experiments.size();
    report.experiments_without_holdout.clear();
    for (const auto& def : experiments)
        if (def.status == segcore::experiments::Status::running && def.holdout == 0)
            report.experiments_without_holdout.push_back(def.id);
}

void print_report(const Report& report, bool as_json, std::ostream& out) {
    if (as_json) {
        out << json{{"from", report.from},
                    {"to", report.to},
                    {"requests", report.requests},
                    {"dead", rows_json(report.dead)},
                    {"near_universal", rows_json(report.near_universal)},
                    {"near_empty", rows_json(report.near_empty)},
                    {"experiments", report.experiments},
                    {"experiments_without_holdout", report.experiments_without_holdout}}
                   .dump(2)
            << '\n';
        return;
    }
    out << "window: " << utc_time(static_cast<std::int64_t>(report.from)) << " to " << utc_time(static_cast<std::int64_t>(report.to)) << " (" << days(report.to - report.from)
        << "), " << report.requests << " requests\n";
    print_rows("segments with no matches", report.dead, out);
    print_rows("segments matching almost every request", report.near_universal, out);
    print_rows("segments matching almost no request", report.near_empty, out);
    out << "experiments without a holdout: ";
    if (report.experiments == 0)
        out << "none (the snapshot has no experiments)\n";
    else
        out << report.experiments_without_holdout.size() << '\n';
    for (const auto& name : report.experiments_without_holdout) out << "  " << name << '\n';
}

}  // namespace segsync
