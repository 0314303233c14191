// segcore micro-benchmarks (Google Benchmark) over the data set that
// tests/bench/run.sh generates and imports:
//
//   segedge_microbench --db=ROOT --requests=requests.tsv --page=index.html [--benchmark_...]
//
// lookup/*   one visitor per iteration, drawn from a shuffled sample of the
//            database's anonymous ids plus 10% unknown ids: a raw mdb_get in
//            an open transaction, the same with the renew/reset a request
//            pays, Snapshot::lookup, and resolve_identity (alias + profile,
//            profile values handed out for rule attributes, as the module does)
// rules/*    the snapshot's rule segments evaluated for one request of the
//            benchmark's request pool (its path, query, headers, cookies and
//            stored profile), merged with its precomputed segments
// experiments/assign_all   every experiment's variant for one visitor
// blocks/*   BlockScanner over the page, in MB/s: all 3 blocks replaced, or
//            none; the page in one piece or in 1 KB chunks
//
// Not a test: ctest does not run it.
#include <benchmark/benchmark.h>
#include <strings.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "segcore/block_scanner.h"
#include "segcore/cookie.h"
#include "segcore/identity.h"
#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "segcore/schema.h"
#include "segcore/segment_rules.h"
#include "segcore/snapshot.h"

namespace {

namespace schema = segcore::schema;
using segcore::rules::InputKind;
using segcore::rules::Value;

struct Options {
    std::string db;  // the segedge_db root
    std::string requests;
    std::string page;
};
Options options;

std::string snapshot_dir() { return segcore::layout::current_link(options.db); }

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// --- lookups

// Every k-th anonymous id of the profiles database (about 100 000), plus
// 10% ids that are not there, shuffled: lookups land all over the B-tree.
std::vector<std::string> sample_ids() {
    segcore::Env::Options env_options;
    env_options.flags = MDB_RDONLY | MDB_NOTLS;
    segcore::Env env(snapshot_dir(), env_options);
    segcore::Txn txn(env, MDB_RDONLY);
    MDB_dbi profiles = txn.open_db(schema::kProfilesDb);
    MDB_stat stat;
    segcore::check_lmdb(mdb_stat(txn.get(), profiles, &stat), "mdb_stat");
    std::size_t every = std::max<std::size_t>(1, stat.ms_entries / 100000);
    std::vector<std::string> ids;
    segcore::Cursor cursor(txn, profiles);
    for (std::size_t i = 0; cursor.next(); ++i)
        if (i % every == 0 && schema::decode_visitor_key_kind(cursor.key()) == schema::VisitorKind::anonymous)
            ids.emplace_back(cursor.key().substr(1));
    std::mt19937 random(1);
    for (std::size_t i = 0, n = ids.size() / 10; i < n; ++i) {
        std::string unknown = ids[random() % ids.size()];
        unknown[3] = unknown[3] == 'x' ? 'y' : 'x';
        ids.push_back(unknown);
    }
    std::shuffle(ids.begin(), ids.end(), random);
    return ids;
}

const std::vector<std::string>& ids() {
    static const std::vector<std::string> sample = sample_ids();
    return sample;
}

// A raw reader on the same snapshot, opened like Snapshot opens it.
struct RawReader {
    segcore::Env env;
    MDB_txn* txn = nullptr;
    MDB_dbi profiles = 0;

    RawReader() : env(snapshot_dir(), env_options()) {
        {  // a handle opened in a read transaction lives on only if it commits
            segcore::Txn open(env, MDB_RDONLY);
            profiles = open.open_db(schema::kProfilesDb);
            open.commit();
        }
        segcore::check_lmdb(mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    }
    ~RawReader() { mdb_txn_abort(txn); }

    static segcore::Env::Options env_options() {
        segcore::Env::Options o;
        o.flags = MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD;
        return o;
    }
    bool get(const std::string& id) {
        char key[schema::kMaxKeySize];
        MDB_val k{schema::encode_visitor_key(schema::VisitorKind::anonymous, id, key), key}, v{};
        return mdb_get(txn, profiles, &k, &v) == MDB_SUCCESS;
    }
};

struct CountingSink : segcore::ProfileSink {
    std::size_t bytes = 0;
    void take(schema::VisitorKind, std::string_view value) override { bytes += value.size(); }
};

// LMDB forbids opening one environment twice in a process: the raw reader
// and the Snapshot take turns (the benchmarks using each are registered
// together), each opened once. Before timing, every sampled visitor is read
// once, so that the pages the lookups touch are mapped, as they are in a
// worker that has been serving for a while: a first touch is a page fault,
// which costs tens of microseconds on some virtual machines.
std::unique_ptr<RawReader> raw;
std::unique_ptr<segcore::Snapshot> snapshot;

RawReader& raw_reader() {
    if (!raw) {
        snapshot.reset();
        raw = std::make_unique<RawReader>();
        for (const auto& id : ids()) raw->get(id);
    }
    return *raw;
}

segcore::Snapshot& open_snapshot() {
    if (!snapshot) {
        raw.reset();
        snapshot = std::make_unique<segcore::Snapshot>(snapshot_dir());
        std::uint32_t out[segcore::kMaxResolvedSegments];
        CountingSink sink;
        for (const auto& id : ids()) {
            segcore::VisitorClaims claims;
            claims.anonymous_id = id;
            segcore::resolve_identity(snapshot.get(), claims, out, &sink);
        }
    }
    return *snapshot;
}

void lookup_mdb_get(benchmark::State& state) {
    RawReader& reader = raw_reader();
    const auto& sample = ids();
    std::size_t i = 0, found = 0;
    for (auto _ : state) found += reader.get(sample[i++ % sample.size()]);
    state.counters["found"] = static_cast<double>(found) / static_cast<double>(state.iterations());
}

void lookup_mdb_get_renew(benchmark::State& state) {
    RawReader& reader = raw_reader();
    mdb_txn_reset(reader.txn);
    const auto& sample = ids();
    std::size_t i = 0, found = 0;
    for (auto _ : state) {
        segcore::check_lmdb(mdb_txn_renew(reader.txn), "mdb_txn_renew");
        found += reader.get(sample[i++ % sample.size()]);
        mdb_txn_reset(reader.txn);
    }
    segcore::check_lmdb(mdb_txn_renew(reader.txn), "mdb_txn_renew");
    state.counters["found"] = static_cast<double>(found) / static_cast<double>(state.iterations());
}

void lookup_snapshot(benchmark::State& state) {
    segcore::Snapshot& snapshot = open_snapshot();
    const auto& sample = ids();
    std::uint32_t out[schema::kMaxSegmentsPerProfile];
    std::size_t i = 0;
    for (auto _ : state)
        benchmark::DoNotOptimize(snapshot.lookup(schema::VisitorKind::anonymous, sample[i++ % sample.size()],
                                                 out, schema::kMaxSegmentsPerProfile));
}

void lookup_resolve_identity(benchmark::State& state) {
    segcore::Snapshot& snapshot = open_snapshot();
    const auto& sample = ids();
    std::uint32_t out[segcore::kMaxResolvedSegments];
    CountingSink sink;
    std::size_t i = 0;
    for (auto _ : state) {
        segcore::VisitorClaims claims;
        claims.anonymous_id = sample[i++ % sample.size()];
        benchmark::DoNotOptimize(segcore::resolve_identity(&snapshot, claims, out, &sink));
    }
}

// --- rules

std::vector<std::string> split(const std::string& line, char sep) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, sep)) fields.push_back(field);
    if (!line.empty() && line.back() == sep) fields.emplace_back();
    return fields;
}

// One line of requests.tsv: CATEGORY, path?query, Cookie, User-Agent,
// "Name: value|Name: value", and its resolved profile.
struct Request {
    std::string path, query, cookie;
    std::vector<std::pair<std::string, std::string>> headers;  // User-Agent included
    std::vector<std::uint32_t> ids;                            // precomputed segments
    std::vector<std::string> profiles;                         // stored values, known first

    explicit Request(const std::string& line) {
        auto f = split(line, '\t');
        if (f.size() != 5) throw std::runtime_error("bad requests line: " + line);
        auto q = f[1].find('?');
        path = f[1].substr(0, q);
        query = q == std::string::npos ? "" : f[1].substr(q + 1);
        cookie = f[2];
        headers.emplace_back("user-agent", f[3]);
        for (const auto& h : split(f[4], '|')) {
            auto colon = h.find(": ");
            std::string name = h.substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(), ::tolower);
            headers.emplace_back(name, h.substr(colon + 2));
        }
    }
};

// rules::Inputs over a Request, computed lazily as the module's are.
class RequestInputs : public segcore::rules::Inputs {
public:
    explicit RequestInputs(const Request& r) : r_(r) {}

    bool get(const segcore::rules::Input& input, Value& out) override {
        std::string_view name = input.name;
        out.is_number = false;
        switch (input.kind) {
        case InputKind::path: out.text = r_.path; return true;
        case InputKind::query: return query(name, out.text);
        case InputKind::referrer_host:
            if (!header("referer", out.text)) return false;
            out.text = segcore::rules::referrer_host(out.text);
            return !out.text.empty();
        case InputKind::header: return header(name, out.text);
        case InputKind::cookie: {
            auto value = segcore::find_cookie(r_.cookie, name);
            if (value) out.text = *value;
            return value.has_value();
        }
        case InputKind::device:
            if (device_.empty()) {
                std::string_view ua;
                header("user-agent", ua);
                device_ = segcore::rules::classify_device(ua);
            }
            out.text = device_;
            return true;
        case InputKind::hour: out.is_number = true; out.number = 20; return true;
        case InputKind::weekday: out.is_number = true; out.number = 6; return true;
        case InputKind::visitor:
            out.text = "returning";
            return segcore::find_cookie(r_.cookie, "segedge_id").has_value();
        case InputKind::context:
        case InputKind::first_seen_days:
        case InputKind::attribute: return false;  // attributes: SegmentRules reads the profiles
        }
        return false;
    }
    bool member(std::uint32_t) override { return false; }

private:
    bool header(std::string_view name, std::string_view& out) const {
        for (const auto& [n, v] : r_.headers)
            if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) {
                out = v;
                return true;
            }
        return false;
    }
    bool query(std::string_view name, std::string_view& out) const {
        std::string_view args = r_.query;
        while (!args.empty()) {
            auto amp = args.find('&');
            std::string_view arg = args.substr(0, amp);
            if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
                out = arg.substr(name.size() + 1);
                return true;
            }
            if (amp == std::string_view::npos) break;
            args.remove_prefix(amp + 1);
        }
        return false;
    }

    const Request& r_;
    std::string_view device_;
};

struct CopyingSink : segcore::ProfileSink {
    std::vector<std::string>* profiles;
    void take(schema::VisitorKind, std::string_view value) override { profiles->emplace_back(value); }
};

// The request pool with each request's identity resolved once, up front.
std::vector<Request> load_requests(segcore::Snapshot& snapshot) {
    std::vector<Request> requests;
    std::ifstream in(options.requests);
    if (!in) throw std::runtime_error("cannot read " + options.requests);
    for (std::string line; std::getline(in, line);) {
        Request& r = requests.emplace_back(line);
        segcore::VisitorClaims claims;
        auto id = segcore::find_cookie(r.cookie, "segedge_id");
        if (id) claims.anonymous_id = *id;
        std::uint32_t out[segcore::kMaxResolvedSegments];
        CopyingSink sink;
        sink.profiles = &r.profiles;
        auto resolution = segcore::resolve_identity(&snapshot, claims, out, &sink);
        r.ids.assign(out, out + resolution.segments);
    }
    return requests;
}

void rules_evaluate(benchmark::State& state) {
    segcore::Snapshot& snapshot = open_snapshot();
    segcore::SegmentRules* rules = snapshot.rules();
    if (!rules) {
        state.SkipWithError("the snapshot has no rule segments");
        return;
    }
    rules->refresh_attributes(snapshot.generation());
    static const std::vector<Request> requests = load_requests(snapshot);
    std::vector<std::max_align_t> scratch(rules->scratch_size() / sizeof(std::max_align_t) + 1);
    std::vector<std::uint32_t> out(segcore::kMaxResolvedSegments + rules->size());
    std::size_t i = 0, matched = 0;
    for (auto _ : state) {
        const Request& r = requests[i++ % requests.size()];
        std::string_view profiles[2];
        for (std::size_t p = 0; p < r.profiles.size() && p < 2; ++p) profiles[p] = r.profiles[p];
        segcore::SegmentRules::Visitor visitor{r.ids.data(), r.ids.size(), profiles,
                                               std::min<std::size_t>(r.profiles.size(), 2)};
        RequestInputs inputs(r);
        matched += rules->evaluate(inputs, visitor, scratch.data(), out.data()) - r.ids.size();
    }
    state.counters["rules"] = static_cast<double>(rules->size());
    state.counters["matches_per_request"] = static_cast<double>(matched) / static_cast<double>(state.iterations());
}

void experiments_assign_all(benchmark::State& state) {
    segcore::Snapshot& snapshot = open_snapshot();
    const auto& sample = ids();
    struct Visitor {
        const std::string* id;
        std::vector<std::uint32_t> segments;
    };
    std::vector<Visitor> visitors;
    for (std::size_t v = 0; v < sample.size() && v < 10000; ++v) {
        std::uint32_t out[schema::kMaxSegmentsPerProfile];
        auto found = snapshot.lookup(schema::VisitorKind::anonymous, sample[v], out, schema::kMaxSegmentsPerProfile);
        visitors.push_back({&sample[v], std::vector<std::uint32_t>(out, out + found.segments)});
    }
    segcore::experiments::Assignment assigned[segcore::experiments::kMaxExperiments];
    std::size_t i = 0;
    for (auto _ : state) {
        const Visitor& v = visitors[i++ % visitors.size()];
        benchmark::DoNotOptimize(
            snapshot.experiments().assign_all(v.segments.data(), v.segments.size(), *v.id, assigned));
    }
    state.counters["experiments"] = static_cast<double>(snapshot.experiments().all().size());
}

// --- blocks

class Replacer : public segcore::BlockHandler {
public:
    explicit Replacer(bool replace) : replace_(replace) {}
    std::optional<std::string_view> replacement(std::string_view) override {
        if (!replace_) return std::nullopt;
        return std::string_view("<section><h2>For you</h2><p>Personal words.</p></section>");
    }
    void output(std::string_view bytes, segcore::Piece) override { size += bytes.size(); }
    std::size_t size = 0;

private:
    bool replace_;
};

void blocks_scan(benchmark::State& state, bool replace, std::size_t chunk) {
    static const std::string page = read_file(options.page);
    std::size_t step = std::min(chunk, page.size());
    for (auto _ : state) {
        Replacer handler(replace);
        segcore::BlockScanner scanner;
        for (std::size_t at = 0; at < page.size(); at += step)
            scanner.feed(std::string_view(page).substr(at, step), handler);
        scanner.finish(handler);
        benchmark::DoNotOptimize(handler.size);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * page.size()));
}

bool take_option(const char* arg, const char* name, std::string& value) {
    std::size_t n = std::strlen(name);
    if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
    value = arg + n + 1;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    for (int i = 1; i < argc; ++i)
        if (!take_option(argv[i], "--db", options.db) && !take_option(argv[i], "--requests", options.requests) &&
            !take_option(argv[i], "--page", options.page)) {
            std::cerr << "unknown argument " << argv[i] << "\n";
            return 2;
        }
    if (options.db.empty() || options.requests.empty() || options.page.empty()) {
        std::cerr << "usage: segedge_microbench --db=ROOT --requests=requests.tsv --page=index.html "
                     "[--benchmark_...]\n";
        return 2;
    }
    try {
        ids();  // sampled before the clock starts
    } catch (const std::exception& e) {
        std::cerr << "segedge_microbench: " << e.what() << "\n";
        return 1;
    }
    benchmark::RegisterBenchmark("lookup/mdb_get", lookup_mdb_get);
    benchmark::RegisterBenchmark("lookup/mdb_get+renew", lookup_mdb_get_renew);
    benchmark::RegisterBenchmark("lookup/Snapshot::lookup", lookup_snapshot);
    benchmark::RegisterBenchmark("lookup/resolve_identity", lookup_resolve_identity);
    benchmark::RegisterBenchmark("rules/evaluate", rules_evaluate);
    benchmark::RegisterBenchmark("experiments/assign_all", experiments_assign_all);
    benchmark::RegisterBenchmark("blocks/scan_replace_3", blocks_scan, true, std::string::npos);
    benchmark::RegisterBenchmark("blocks/scan_keep", blocks_scan, false, std::string::npos);
    benchmark::RegisterBenchmark("blocks/scan_replace_3_1k_chunks", blocks_scan, true, std::size_t{1024});
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
