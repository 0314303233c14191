// segsync's command line: argument parsing only; the work is in run_import
// and run_sign.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sync/import.h"
#include "sync/sign.h"

namespace {

constexpr const char* kUsage =
    "usage: segsync import --db DIR --segments FILE --profiles FILE [--aliases FILE]\n"
    "                      [--blocks FILE] [--source LABEL] [--keep N]\n"
    "       segsync sign --keys FILE --id ID [--ttl DURATION | --expires UNIX]\n"
    "       segsync help\n"
    "\n"
    "import   check the input files (NDJSON, one object per line) and\n"
    "         publish them as a new snapshot, DIR/current, all or nothing; nginx picks it\n"
    "         up by itself, without a reload.\n"
    "  --db DIR         database root (the module's segedge_db)\n"
    "  --segments FILE  segment definitions: {\"name\":...,\"description\":...,\"owner\":...,\"priority\":N}\n"
    "  --profiles FILE  visitors: {\"id\":...,\"kind\":\"anonymous\"|\"known\",\"segments\":[...]}\n"
    "  --aliases FILE   identity links: {\"anonymous\":...,\"known\":...}\n"
    "  --blocks FILE    block contents: {\"block\":...,\"segment\":...,\"html\":...}\n"
    "  --source LABEL   recorded in the snapshot (default: import)\n"
    "  --keep N         snapshots to keep, counting the new one (default: 2)\n"
    "\n"
    "sign     print a signed known-visitor cookie value for ID, signed with the first\n"
    "         key of FILE, for the cookie the module's segedge_known_cookie names.\n"
    "  --keys FILE        key file (the module's segedge_keys)\n"
    "  --id ID            known visitor id (a \"known\" id of profiles.ndjson)\n"
    "  --ttl DURATION     valid for N seconds, or Ns, Nm, Nh, Nd (default: 30d)\n"
    "  --expires UNIX     valid until this unix time instead\n"
    "\n"
    "exit status: 0 published (import) or printed (sign), 1 error (nothing published),\n"
    "2 bad command line\n";

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Command {
    enum class Name { help, import, sign } name = Name::help;
    segsync::ImportOptions import;
    segsync::SignOptions sign;
    std::optional<std::uint64_t> ttl;
    bool has_expires = false;
};

// A whole number within [min, max], or a UsageError naming `option`.
std::uint64_t parse_number(const std::string& option, const std::string& text, std::uint64_t min,
                           std::uint64_t max) {
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
std::uint64_t parse_duration(const std::string& text) {
    constexpr std::uint64_t kMax = 100ull * 365 * 86400;
    std::uint64_t unit = 1;
    std::string digits = text;
    if (!text.empty() && std::string("smhd").find(text.back()) != std::string::npos) {
        unit = text.back() == 'm' ? 60 : text.back() == 'h' ? 3600 : text.back() == 'd' ? 86400 : 1;
        digits.pop_back();
    }
    try {
        return parse_number("--ttl", digits, 1, kMax / unit) * unit;
    } catch (const UsageError&) {
        throw UsageError("--ttl takes a duration such as 3600, 90m, 12h or 30d, got \"" + text + "\"");
    }
}

void set_import_option(const std::string& name, const std::string& value, segsync::ImportOptions& o) {
    if (name == "--db") o.db = value;
    else if (name == "--segments") o.segments_path = value;
    else if (name == "--profiles") o.profiles_path = value;
    else if (name == "--aliases") o.aliases_path = value;
    else if (name == "--blocks") o.blocks_path = value;
    else if (name == "--source") o.source = value;
    else if (name == "--keep") o.keep = static_cast<unsigned>(parse_number("--keep", value, 1, 1000000));
    else throw UsageError("unknown option " + name);
}

void set_sign_option(const std::string& name, const std::string& value, Command& command) {
    if (name == "--keys") command.sign.keys_path = value;
    else if (name == "--id") command.sign.id = value;
    else if (name == "--ttl") command.ttl = parse_duration(value);
    else if (name == "--expires") {
        command.sign.expires = parse_number("--expires", value, 0, UINT64_MAX);
        command.has_expires = true;
    } else throw UsageError("unknown option " + name);
}

// Accepts "--name VALUE" and "--name=VALUE".
void take_option(const std::vector<std::string>& args, std::size_t& i, Command& command) {
    std::string name = args[i], value;
    std::size_t eq = name.find('=');
    if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
    } else if (i + 1 < args.size()) {
        value = args[++i];
    } else {
        throw UsageError(name + " needs a value");
    }
    if (command.name == Command::Name::import) set_import_option(name, value, command.import);
    else set_sign_option(name, value, command);
}

void check_complete(const Command& command) {
    const auto& o = command.import;
    if (command.name == Command::Name::import &&
        (o.db.empty() || o.segments_path.empty() || o.profiles_path.empty()))
        throw UsageError("import needs --db, --segments and --profiles");
    if (command.name == Command::Name::sign) {
        if (command.sign.keys_path.empty() || command.sign.id.empty())
            throw UsageError("sign needs --keys and --id");
        if (command.ttl && command.has_expires)
            throw UsageError("sign takes --ttl or --expires, not both");
    }
}

Command parse(const std::vector<std::string>& args) {
    Command command;
    if (args.empty()) throw UsageError("no command given");
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") return command;
    if (args[0] == "import") command.name = Command::Name::import;
    else if (args[0] == "sign") command.name = Command::Name::sign;
    else throw UsageError("unknown command \"" + args[0] + "\"");
    bool help = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--help" || args[i] == "-h") help = true;
        else if (args[i].rfind("--", 0) == 0) take_option(args, i, command);
        else throw UsageError("unexpected argument \"" + args[i] + "\"");
    }
    if (help) command.name = Command::Name::help;
    else check_complete(command);
    return command;
}

int sign(Command& command) {
    constexpr std::uint64_t kDefaultTtl = 30 * 86400;
    if (!command.has_expires)
        command.sign.expires = static_cast<std::uint64_t>(std::time(nullptr)) + command.ttl.value_or(kDefaultTtl);
    std::cout << segsync::run_sign(command.sign) << std::endl;
    return 0;
}

int run(const segsync::ImportOptions& options) {
    segsync::ImportResult result = segsync::run_import(options);
    for (const auto& warning : result.prune.warnings)
        std::cerr << "segsync: warning: cannot prune: " << warning << '\n';
    for (const auto& name : result.prune.busy)
        std::cerr << "segsync: " << name << " is still in use; it will be pruned by a later import\n";
    std::cout << "segsync: published generation " << result.generation << " (" << result.segments
              << " segments, " << result.profiles << " profiles";
    if (!options.aliases_path.empty()) std::cout << ", " << result.aliases << " aliases";
    if (!options.blocks_path.empty()) std::cout << ", " << result.blocks << " block contents";
    std::cout << ") as " << result.snapshot_path << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Command command;
    try {
        command = parse(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const UsageError& e) {
        std::cerr << "segsync: " << e.what() << '\n' << kUsage;
        return 2;
    }
    if (command.name == Command::Name::help) {
        std::cout << kUsage;
        return 0;
    }
    // Progress is for a person watching; logs and pipes get only the result.
    if (isatty(STDERR_FILENO)) command.import.progress = &std::cerr;
    try {
        return command.name == Command::Name::sign ? sign(command) : run(command.import);
    } catch (const std::exception& e) {
        std::cerr << "segsync: " << e.what() << '\n';
    } catch (...) {
        std::cerr << "segsync: unexpected error\n";
    }
    return 1;
}
