// segsync's feed parsers: the NDJSON reader and the validation of every
// feed (segments, experiments, blocks, profiles, aliases), delta batches
// and orders applied to a real snapshot inside a transaction that is then
// aborted, and snapshot manifests. Input: the files' contents in that
// order, separated by lines "---"; missing trailing files are not read.
//
//   segments ndjson --- experiments --- blocks --- profiles --- aliases
//   --- delta --- orders --- manifest (feed.snapshot.json)
//
// A bad input must be an ImportError naming the file (what the operator
// sees: "FILE:LINE: message"); any other exception escapes and is a crash.
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "segcore/layout.h"
#include "segcore/lmdb.h"
#include "sync/delta.h"
#include "sync/editor.h"
#include "sync/experiments.h"
#include "sync/import.h"
#include "sync/rfm.h"
#include "sync/source.h"
#include "sync/sources.h"
#include "sync/validate.h"
#include "tests/fuzz/fuzz.h"

namespace {

namespace fs = std::filesystem;
using namespace segsync;

const char* const kFiles[] = {"segments.ndjson", "experiments.ndjson", "blocks.ndjson",
                              "profiles.ndjson", "aliases.ndjson",     "delta.ndjson",
                              "orders.ndjson",   "feed.snapshot.json"};
constexpr std::size_t kSections = sizeof kFiles / sizeof kFiles[0];
constexpr std::int64_t kAsOf = 1700000000;

void write(const std::string& path, std::string_view text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), text.size());
}

// A scratch directory with a published snapshot for deltas and orders
// (segments vip, news, lapsed; one anonymous and one known profile) and
// the input files. Removed at exit.
class Fixture {
public:
    Fixture() {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/segedge-fuzz-feed-XXXXXX";
        if (!mkdtemp(pattern.data())) std::abort();
        dir_ = pattern;
        fs::create_directories(dir_ + "/in");
        ImportOptions options;
        options.db = dir_ + "/db";
        options.segments_path = dir_ + "/segments.ndjson";
        options.profiles_path = dir_ + "/profiles.ndjson";
        write(options.segments_path,
              "{\"name\":\"vip\",\"priority\":10}\n{\"name\":\"news\",\"priority\":5}\n"
              "{\"name\":\"lapsed\"}\n");
        write(options.profiles_path,
              "{\"id\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"kind\":\"anonymous\",\"segments\":[\"news\"]}\n"
              "{\"id\":\"cust-1\",\"kind\":\"known\",\"segments\":[\"vip\"],"
              "\"attributes\":{\"ltv\":120.5,\"stage\":\"active\"}}\n");
        run_import(options);
        char snapshot[PATH_MAX];
        if (!realpath(segcore::layout::current_link(options.db).c_str(), snapshot)) std::abort();
        env_ = std::make_unique<segcore::Env>(snapshot, segcore::Env::Options{});
        SourceConfig source;
        source.name = "fuzz";
        source.path = in();
        source_ = make_directory_source(source);
    }
    ~Fixture() {
        source_.reset();
        env_.reset();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string in() const { return dir_ + "/in"; }
    const segcore::Env& env() const { return *env_; }
    Source& source() { return *source_; }
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    std::unique_ptr<segcore::Env> env_;
    std::unique_ptr<Source> source_;
};

Fixture& fixture() {
    static Fixture instance;
    return instance;
}

std::vector<std::string_view> sections(std::string_view input) {
    std::vector<std::string_view> out;
    while (out.size() + 1 < kSections) {
        std::size_t at = input.rfind("---\n", 0) == 0 ? 0 : input.find("\n---\n");
        if (at == std::string_view::npos) break;
        out.push_back(input.substr(0, at));
        input.remove_prefix(at == 0 ? 4 : at + 5);
    }
    out.push_back(input);
    return out;
}

// Runs `parse`; an ImportError must start with `path`.
template <typename Parse>
bool attempt(const std::string& path, Parse parse) {
    try {
        parse();
        return true;
    } catch (const ImportError& e) {
        FUZZ_CHECK(std::string_view(e.what()).substr(0, path.size()) == path);
        return false;
    }
}

Catalogue segments(const std::string& path) {
    Catalogue catalogue;
    attempt(path, [&] {
        NdjsonReader reader(path);
        Record record;
        while (reader.next(record)) catalogue.add(record.object, reader.where());
    });
    return catalogue;
}

void blocks(const std::string& path, const Catalogue& catalogue,
            const std::vector<segcore::experiments::ExperimentDef>* experiments) {
    attempt(path, [&] {
        NdjsonReader reader(path);
        BlockIndex index;
        VariantBlocks variants(experiments);
        Record record;
        while (reader.next(record)) {
            if (VariantBlocks::is_variant_line(record.object)) {
                variants.parse(record.object, catalogue, reader.where());
                continue;
            }
            BlockContent content = parse_block(record.object, catalogue, reader.where());
            index.add(content, catalogue, reader.where());
            variants.add_base(content);
        }
        variants.check(reader.path(), catalogue);
    });
}

template <typename Each>
void records(const std::string& path, Each each) {
    attempt(path, [&] {
        NdjsonReader reader(path);
        Record record;
        while (reader.next(record)) each(record.object, reader.where());
    });
}

// Applied to the fixture's snapshot, then rolled back.
template <typename Apply>
void in_place(const std::string& path, Apply apply) {
    segcore::Txn txn(fixture().env(), 0);
    ProfileEditor editor(txn);
    attempt(path, [&] { apply(editor); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Fixture& f = fixture();
    auto parts = sections(std::string_view(reinterpret_cast<const char*>(data), size));
    std::string paths[kSections];
    for (std::size_t i = 0; i < kSections; ++i) {
        paths[i] = f.in() + "/" + kFiles[i];
        if (i < parts.size()) write(paths[i], parts[i]);
        else unlink(paths[i].c_str());
    }
    auto present = [&](std::size_t i) { return i < parts.size(); };

    Catalogue catalogue = segments(paths[0]);
    std::optional<std::vector<segcore::experiments::ExperimentDef>> experiments;
    if (present(1)) attempt(paths[1], [&] {
        NdjsonReader reader(paths[1]);
        experiments = read_experiments(reader, catalogue);
    });
    if (present(2)) blocks(paths[2], catalogue, experiments ? &*experiments : nullptr);
    AttributeCatalogue attributes;
    if (present(3)) records(paths[3], [&](const nlohmann::json& object, const Location& where) {
        parse_profile(object, catalogue, attributes, where);
    });
    if (present(4)) records(paths[4], [&](const nlohmann::json& object, const Location& where) {
        parse_alias(object, where);
    });
    if (present(5)) in_place(paths[5], [&](ProfileEditor& editor) {
        NdjsonReader reader(paths[5]);
        apply_delta(reader, editor, {});
    });
    if (present(6)) in_place(paths[6], [&](ProfileEditor& editor) {
        apply_rfm(paths[6], RfmThresholds{}, kAsOf, editor, f.dir(), {});
    });
    if (present(7)) {
        f.source().drain();
        FetchedFeed feed;
        // Its errors name the manifest or the missing file.
        attempt("", [&] { fetch_feed(f.source(), kFiles[7], nullptr, feed); });
    }
    return 0;
}
