// segsync's command line: argument parsing only; the work is in run_import.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sync/import.h"

namespace {

constexpr const char* kUsage =
    "usage: segsync import --db DIR --segments FILE --profiles FILE [--blocks FILE]\n"
    "                      [--source LABEL] [--keep N]\n"
    "       segsync help\n"
    "\n"
    "import   check the input files (NDJSON, one object per line) and\n"
    "         publish them as a new snapshot, DIR/current, all or nothing; nginx picks it\n"
    "         up by itself, without a reload.\n"
    "  --db DIR         database root (the module's segedge_db)\n"
    "  --segments FILE  segment definitions: {\"name\":...,\"description\":...,\"owner\":...,\"priority\":N}\n"
    "  --profiles FILE  visitors: {\"id\":...,\"kind\":\"anonymous\"|\"known\",\"segments\":[...]}\n"
    "  --blocks FILE    block contents: {\"block\":...,\"segment\":...,\"html\":...}\n"
    "  --source LABEL   recorded in the snapshot (default: import)\n"
    "  --keep N         snapshots to keep, counting the new one (default: 2)\n"
    "\n"
    "exit status: 0 published, 1 error (nothing published), 2 bad command line\n";

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Command {
    bool help = false;
    segsync::ImportOptions options;
};

unsigned parse_keep(const std::string& text) {
    char* end = nullptr;
    unsigned long value = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || text[0] == '-' || value < 1 || value > 1000000)
        throw UsageError("--keep takes a whole number of at least 1, got \"" + text + "\"");
    return static_cast<unsigned>(value);
}

// Accepts "--name VALUE" and "--name=VALUE".
void take_option(const std::vector<std::string>& args, std::size_t& i, segsync::ImportOptions& o) {
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
    if (name == "--db") o.db = value;
    else if (name == "--segments") o.segments_path = value;
    else if (name == "--profiles") o.profiles_path = value;
    else if (name == "--blocks") o.blocks_path = value;
    else if (name == "--source") o.source = value;
    else if (name == "--keep") o.keep = parse_keep(value);
    else throw UsageError("unknown option " + name);
}

Command parse(const std::vector<std::string>& args) {
    Command command;
    if (args.empty()) throw UsageError("no command given");
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        command.help = true;
        return command;
    }
    if (args[0] != "import") throw UsageError("unknown command \"" + args[0] + "\"");
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--help" || args[i] == "-h") command.help = true;
        else if (args[i].rfind("--", 0) == 0) take_option(args, i, command.options);
        else throw UsageError("unexpected argument \"" + args[i] + "\"");
    }
    const auto& o = command.options;
    if (!command.help && (o.db.empty() || o.segments_path.empty() || o.profiles_path.empty()))
        throw UsageError("import needs --db, --segments and --profiles");
    return command;
}

int run(const segsync::ImportOptions& options) {
    segsync::ImportResult result = segsync::run_import(options);
    for (const auto& warning : result.prune.warnings)
        std::cerr << "segsync: warning: cannot prune: " << warning << '\n';
    for (const auto& name : result.prune.busy)
        std::cerr << "segsync: " << name << " is still in use; it will be pruned by a later import\n";
    std::cout << "segsync: published generation " << result.generation << " (" << result.segments
              << " segments, " << result.profiles << " profiles, " << result.blocks
              << " block contents) as " << result.snapshot_path
              << std::endl;
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
    if (command.help) {
        std::cout << kUsage;
        return 0;
    }
    // Progress is for a person watching; logs and pipes get only the result.
    if (isatty(STDERR_FILENO)) command.options.progress = &std::cerr;
    try {
        return run(command.options);
    } catch (const std::exception& e) {
        std::cerr << "segsync: " << e.what() << '\n';
    } catch (...) {
        std::cerr << "segsync: unexpected error\n";
    }
    return 1;
}
