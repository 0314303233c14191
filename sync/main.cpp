// segsync's command line: argument parsing only; the work is in run_import,
// run_daemon, print_status, verify_db, dump_db, run_sign and sign_feed.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "segcore/layout.h"
#include "segcore/snapshot.h"
#include "sync/config.h"
#include "sync/daemon.h"
#include "sync/import.h"
#include "sync/inspect.h"
#include "sync/report.h"
#include "sync/sign.h"
#include "sync/signature.h"
#include "sync/status.h"

namespace {

constexpr const char* kUsage =
    "usage: segsync import --db DIR --segments FILE --profiles FILE [--aliases FILE]\n"
    "                      [--blocks FILE] [--experiments FILE] [--orders FILE]\n"
    "                      [--as-of UNIX_SECONDS]\n"
    "                      [--source LABEL] [--keep N] [--built-at UNIX_SECONDS]\n"
    "       segsync run --config FILE [--once]\n"
    "       segsync status (--db DIR | --config FILE) [--json]\n"
    "       segsync report (--db DIR | --config FILE) (--counters FILE | --status-url URL)\n"
    "                      [--baseline FILE] [--window DURATION] [--near-universal PERCENT]\n"
    "                      [--near-empty PERCENT] [--json]\n"
    "       segsync verify (--db DIR | --config FILE)\n"
    "       segsync dump (--db DIR | --config FILE) meta|segments|attributes|profiles|aliases\n"
    "                    [--id ID --kind anonymous|known]\n"
    "       segsync sign --keys FILE --id ID [--ttl DURATION | --expires UNIX]\n"
    "       segsync sign-feed --key KEYFILE [--name NAME] [--out SIGFILE] FILE\n"
    "       segsync help\n"
    "\n"
    "import   check the segments and profiles files (NDJSON, one object per line) and\n"
    "         publish them as a new snapshot, DIR/current, all or nothing; nginx picks it\n"
    "         up by itself, without a reload.\n"
    "  --db DIR         database root (the module's segedge_db)\n"
    "  --segments FILE  segment definitions: {\"name\":...,\"description\":...,\"owner\":...,\"priority\":N}\n"
    "  --profiles FILE  visitors: {\"id\":...,\"kind\":\"anonymous\"|\"known\",\"segments\":[...],\"attributes\":{...}}\n"
    "  --aliases FILE   identity links: {\"anonymous\":...,\"known\":...}\n"
    "  --blocks FILE    content blocks: {\"block\":...,\"segment\":...,\"html\":...}\n"
    "  --experiments FILE  layers {\"layer\":...,\"holdout\":BP} and experiments\n"
    "                   {\"id\":...,\"status\":...,\"salt\":...,\"variants\":[{\"name\":...,\"weight\":BP}],...}\n"
    "  --orders FILE    orders {\"customer\":...,\"at\":...,\"amount\":...}: adds RFM and lifecycle attributes\n"
    "  --as-of T        \"now\" for lifecycle stages, unix seconds (default: the current time)\n"
    "  --source LABEL   recorded in the snapshot (default: import)\n"
    "  --keep N         snapshots to keep, counting the new one (default: 2)\n"
    "  --built-at T     record T (unix seconds) as the build time instead of now: for\n"
    "                   backfills and for testing segedge_max_staleness\n"
    "run      the daemon: applies snapshots, deltas and orders from the configured\n"
    "         sources as they appear (--once: one pass, then exit)\n"
    "status   generation, last success, last error and lag per source\n"
    "report   segments with no matches, matching almost every or almost no request,\n"
    "         over the window the module's counters cover (--counters: a saved\n"
    "         segedge_status?format=json; --baseline: an earlier one, counted from;\n"
    "         --window: the least time the counts must cover, e.g. 90d; thresholds\n"
    "         in percent of requests, default 90 and 0.1)\n"
    "verify   full walk and check of the live snapshot\n"
    "dump     one database of the live snapshot as NDJSON\n"
    "sign     print a signed known-visitor cookie value for ID, signed with the first\n"
    "         key of the module's segedge_keys FILE (--ttl: N seconds or Ns, Nm, Nh, Nd;\n"
    "         default 30d)\n"
    "sign-feed  write FILE's detached signature (HMAC key as hex, or Ed25519 PEM private key)\n"
    "\n"
    "exit status: 0 success, 1 error (import: nothing published), 2 bad command line\n";

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Command {
    std::string name;
    std::map<std::string, std::string> options;  // "--db" -> value; flags -> ""
    std::vector<std::string> arguments;
    bool help = false;

    bool has(const std::string& option) const { return options.count(option) > 0; }
    const std::string& get(const std::string& option) const {
        static const std::string empty;
        auto it = options.find(option);
        return it == options.end() ? empty : it->second;
    }
};

// Options that take a value, and flags, per command.
const std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> kCommands = {
    {"import", {{"--db", "--segments", "--profiles", "--aliases", "--blocks", "--experiments", "--orders", "--as-of", "--source", "--keep", "--built-at"}, {}}},
    {"report", {{"--db", "--config", "--counters", "--status-url", "--baseline", "--window", "--near-universal",
                 "--near-empty"}, {"--json"}}},
    {"run", {{"--config"}, {"--once"}}},
    {"status", {{"--db", "--config"}, {"--json"}}},
    {"verify", {{"--db", "--config"}, {}}},
    {"dump", {{"--db", "--config", "--id", "--kind"}, {}}},
    {"sign", {{"--keys", "--id", "--ttl", "--expires"}, {}}},
    {"sign-feed", {{"--key", "--name", "--out"}, {}}},
};

// A whole number within [min, max], or a UsageError naming `option`.
unsigned long long parse_number(const std::string& option, const std::string& text,
                                unsigned long long min, unsigned long long max) {
    char* end = nullptr;
    errno = 0;
    unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || text[0] == '-' || text[0] == '+' || errno == ERANGE ||
        value < min || value > max)
        throw UsageError(option + " takes a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", got \"" + text + "\"");
    return value;
}

// "90", "90s", "15m", "12h", "30d": seconds.
std::uint64_t parse_duration(const std::string& text, const std::string& option = "--ttl") {
    constexpr std::uint64_t kMax = 100ull * 365 * 86400;
    std::uint64_t unit = 1;
    std::string digits = text;
    if (!text.empty() && std::string("smhd").find(text.back()) != std::string::npos) {
        unit = text.back() == 'm' ? 60 : text.back() == 'h' ? 3600 : text.back() == 'd' ? 86400 : 1;
        digits.pop_back();
    }
    try {
        return parse_number(option, digits, 1, kMax / unit) * unit;
    } catch (const UsageError&) {
        throw UsageError(option + " takes a duration such as 3600, 90m, 12h or 30d, got \"" + text + "\"");
    }
}

Command parse(const std::vector<std::string>& args) {
    Command command;
    if (args.empty()) throw UsageError("no command given");
    command.name = args[0];
    if (command.name == "help" || command.name == "--help" || command.name == "-h") {
        command.help = true;
        return command;
    }
    auto spec = kCommands.find(command.name);
    if (spec == kCommands.end()) throw UsageError("unknown command \"" + command.name + "\"");
    const auto& [valued, flags] = spec->second;
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string name = args[i], value;
        if (name == "--help" || name == "-h") {
            command.help = true;
            continue;
        }
        if (name.rfind("--", 0) != 0) {
            command.arguments.push_back(name);
            continue;
        }
        std::size_t eq = name.find('=');
        if (eq != std::string::npos) value = name.substr(eq + 1), name.resize(eq);
        if (flags.count(name) && eq == std::string::npos) {
            command.options[name];
        } else if (valued.count(name)) {
            if (eq == std::string::npos) {
                if (i + 1 >= args.size()) throw UsageError(name + " needs a value");
                value = args[++i];
            }
            command.options[name] = value;
        } else {
            throw UsageError("unknown option " + name + " for " + command.name);
        }
    }
    return command;
}

// --db, or the db of --config.
std::string database_of(const Command& c) {
    if (c.has("--db") == c.has("--config")) throw UsageError(c.name + " needs --db DIR or --config FILE");
    return c.has("--db") ? c.get("--db") : segsync::load_config(c.get("--config")).db;
}

void expect_arguments(const Command& c, std::size_t n) {
    if (c.arguments.size() != n)
        throw UsageError(c.name + " takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s"));
}

int run_import(const Command& c) {
    expect_arguments(c, 0);
    segsync::ImportOptions o;
    o.db = c.get("--db");
    o.segments_path = c.get("--segments");
    o.profiles_path = c.get("--profiles");
    o.aliases_path = c.get("--aliases");
    o.blocks_path = c.get("--blocks");
    o.experiments_path = c.get("--experiments");
    o.orders_path = c.get("--orders");
    if (c.has("--source")) o.source = c.get("--source");
    if (c.has("--keep")) o.keep = static_cast<unsigned>(parse_number("--keep", c.get("--keep"), 1, 1000000));
    if (c.has("--as-of")) o.as_of = static_cast<std::int64_t>(parse_number("--as-of", c.get("--as-of"), 1, 1ull << 40));
    if (c.has("--built-at"))
        o.built_at = static_cast<std::int64_t>(parse_number("--built-at", c.get("--built-at"), 1, 1ull << 40));
    if (o.db.empty() || o.segments_path.empty() || o.profiles_path.empty())
        throw UsageError("import needs --db, --segments and --profiles");
    // Progress is for a person watching; logs and pipes get only the result.
    if (isatty(STDERR_FILENO)) o.progress = &std::cerr;
    segsync::ImportResult result = segsync::run_import(o);
    for (const auto& warning : result.prune.warnings)
        std::cerr << "segsync: warning: cannot prune: " << warning << '\n';
    for (const auto& name : result.prune.busy)
        std::cerr << "segsync: " << name << " is still in use; it will be pruned by a later import\n";
    std::cout << "segsync: published generation " << result.generation << " (" << result.segments
              << " segments, " << result.profiles << " profiles, " << result.attributes
              << " attributes" << (o.aliases_path.empty() ? "" : ", " + std::to_string(result.aliases) + " aliases")
              << (o.blocks_path.empty() ? "" : ", " + std::to_string(result.blocks) + " block contents")
              << (o.experiments_path.empty() ? "" : ", " + std::to_string(result.experiments) + " experiments")
              << ") as " << result.snapshot_path << std::endl;
    return 0;
}

double parse_percent(const std::string& option, const std::string& text) {
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(value >= 0 && value <= 100))
        throw UsageError(option + " takes a percentage from 0 to 100, got \"" + text + "\"");
    return value / 100;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

int run_report(const Command& c) {
    expect_arguments(c, 0);
    if (c.has("--counters") == c.has("--status-url"))
        throw UsageError("report needs --counters FILE or --status-url URL");
    segsync::ReportOptions o;
    if (c.has("--window")) o.window = parse_duration(c.get("--window"), "--window");
    if (c.has("--near-universal")) o.near_universal = parse_percent("--near-universal", c.get("--near-universal"));
    if (c.has("--near-empty")) o.near_empty = parse_percent("--near-empty", c.get("--near-empty"));
    std::string db = database_of(c);
    auto current = c.has("--counters")
                       ? segsync::parse_counters(read_file(c.get("--counters")), c.get("--counters"))
                       : segsync::parse_counters(segsync::fetch_status(c.get("--status-url")), c.get("--status-url"));
    std::optional<segsync::Counters> baseline;
    if (c.has("--baseline")) baseline = segsync::parse_counters(read_file(c.get("--baseline")), c.get("--baseline"));
    segcore::Snapshot snapshot(segcore::layout::current_link(db));
    std::vector<segcore::schema::SegmentDef> catalogue;
    for (const auto& entry : snapshot.segments()) catalogue.push_back(entry.second);
    auto report = segsync::build_report(catalogue, current, baseline ? &*baseline : nullptr, o);
    segsync::check_holdouts(report, snapshot.experiments().all());
    segsync::print_report(report, c.has("--json"), std::cout);
    return 0;
}

int run_dump(const Command& c) {
    expect_arguments(c, 1);
    std::optional<segsync::Visitor> only;
    if (c.has("--id") || c.has("--kind")) {
        auto kind = segcore::schema::parse_visitor_kind(c.get("--kind"));
        if (!c.has("--id") || !kind) throw UsageError("dump --id ID needs --kind anonymous or known");
        only = segsync::Visitor{*kind, c.get("--id")};
    }
    return segsync::dump_db(database_of(c), c.arguments[0], only, std::cout);
}

int run_sign(const Command& c) {
    constexpr std::uint64_t kDefaultTtl = 30 * 86400;
    expect_arguments(c, 0);
    if (!c.has("--keys") || !c.has("--id")) throw UsageError("sign needs --keys and --id");
    if (c.has("--ttl") && c.has("--expires")) throw UsageError("sign takes --ttl or --expires, not both");
    segsync::SignOptions o;
    o.keys_path = c.get("--keys");
    o.id = c.get("--id");
    o.expires = c.has("--expires")
                    ? parse_number("--expires", c.get("--expires"), 0, UINT64_MAX)
                    : static_cast<std::uint64_t>(std::time(nullptr)) +
                          (c.has("--ttl") ? parse_duration(c.get("--ttl")) : kDefaultTtl);
    std::cout << segsync::run_sign(o) << std::endl;
    return 0;
}

int run_sign_feed(const Command& c) {
    expect_arguments(c, 1);
    if (!c.has("--key")) throw UsageError("sign-feed needs --key KEYFILE");
    const std::string& file = c.arguments[0];
    std::string name = c.has("--name") ? c.get("--name") : file.substr(file.rfind('/') + 1);
    std::string out = c.has("--out") ? c.get("--out") : file + ".sig";
    std::string signature = segsync::sign_feed(c.get("--key"), name, file);
    std::ofstream(out, std::ios::trunc) << signature << '\n';
    std::cout << "segsync: signed " << name << " into " << out << std::endl;
    return 0;
}

int dispatch(const Command& c) {
    if (c.name == "import") return run_import(c);
    if (c.name == "run") {
        expect_arguments(c, 0);
        if (!c.has("--config")) throw UsageError("run needs --config FILE");
        return segsync::run_daemon({c.get("--config"), c.has("--once")});
    }
    if (c.name == "status") {
        expect_arguments(c, 0);
        return segsync::print_status(database_of(c), c.has("--json"), std::cout);
    }
    if (c.name == "verify") {
        expect_arguments(c, 0);
        return segsync::verify_db(database_of(c), std::cout, std::cerr);
    }
    if (c.name == "dump") return run_dump(c);
    if (c.name == "report") return run_report(c);
    if (c.name == "sign") return run_sign(c);
    return run_sign_feed(c);
}

}  // namespace

int main(int argc, char** argv) {
    Command command;
    try {
        command = parse(std::vector<std::string>(argv + 1, argv + argc));
        if (command.help) {
            std::cout << kUsage;
            return 0;
        }
        return dispatch(command);
    } catch (const UsageError& e) {
        std::cerr << "segsync: " << e.what() << '\n' << kUsage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "segsync: " << e.what() << '\n';
    } catch (...) {
        std::cerr << "segsync: unexpected error\n";
    }
    return 1;
}
