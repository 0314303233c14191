// The streaming block scanner. The input is a page body; it is scanned in
// one chunk, byte by byte and in pseudo-random splits (seeded by the input,
// so a crash reproduces), in both marker modes, and every way must give the
// same output and problem. Each chunk lives in its own heap buffer, freed
// after feed(), so ASan catches a piece that points at an old chunk.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "segcore/block_scanner.h"
#include "tests/fuzz/fuzz.h"

namespace {

using segcore::BlockProblem;
using segcore::BlockScanner;
using segcore::Piece;

// Blocks whose name starts with a..m have content (which itself looks like
// markup, to tempt the scanner); the rest keep their default.
class Collector : public segcore::BlockHandler {
public:
    std::optional<std::string_view> replacement(std::string_view name) override {
        FUZZ_CHECK(!name.empty() && name.size() <= segcore::schema::kMaxBlockNameSize);
        if (name[0] < 'a' || name[0] > 'm') return std::nullopt;
        return std::string_view(kContent);
    }

    void output(std::string_view bytes, Piece piece) override {
        FUZZ_CHECK(!bytes.empty());
        if (piece == Piece::input)
            FUZZ_CHECK(bytes.data() >= chunk.data() &&
                       bytes.data() + bytes.size() <= chunk.data() + chunk.size());
        else if (piece == Piece::replacement)
            FUZZ_CHECK(bytes == kContent);
        else
            FUZZ_CHECK(bytes.size() <= BlockScanner::kMaxMarkerSize);
        out.append(bytes);
    }

    static constexpr std::string_view kContent = "<p><!--segedge:x-->swapped<!--/segedge:";
    std::string_view chunk;
    std::string out;
};

struct Result {
    std::string out;
    BlockProblem problem;
    std::string problem_block;
};

Result scan(std::string_view body, const std::vector<std::size_t>& cuts, BlockScanner::Markers markers) {
    Collector collector;
    BlockScanner scanner(markers);
    std::size_t from = 0;
    auto feed = [&](std::size_t to) {
        std::unique_ptr<char[]> chunk(new char[to - from + 1]);
        std::copy(body.begin() + from, body.begin() + to, chunk.get());
        collector.chunk = std::string_view(chunk.get(), to - from);
        scanner.feed(collector.chunk, collector);
        FUZZ_CHECK(scanner.held() <= BlockScanner::kMaxMarkerSize);
        from = to;
    };
    for (std::size_t cut : cuts) feed(cut);
    feed(body.size());
    collector.chunk = {};
    scanner.finish(collector);
    return {collector.out, scanner.problem(), std::string(scanner.problem_block())};
}

void check_same(const Result& a, const Result& b) {
    FUZZ_CHECK(a.out == b.out);
    FUZZ_CHECK(a.problem == b.problem);
    FUZZ_CHECK(a.problem_block == b.problem_block);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    std::vector<std::size_t> every_byte(size);
    for (std::size_t i = 0; i < size; ++i) every_byte[i] = i;
    std::seed_seq seed(body.begin(), body.end());
    std::mt19937 random(seed);

    for (auto markers : {BlockScanner::Markers::keep, BlockScanner::Markers::remove}) {
        Result whole = scan(body, {}, markers);
        if (whole.out.find(Collector::kContent) == std::string::npos &&
            markers == BlockScanner::Markers::keep)
            FUZZ_CHECK(whole.out == body);  // nothing replaced: nothing changed
        check_same(whole, scan(body, every_byte, markers));
        for (int round = 0; round < 4; ++round) {
            std::vector<std::size_t> cuts;
            std::size_t at = 0;
            while (size > 0 && at < size) {
                at += 1 + random() % (round == 0 ? 4 : 64);
                if (at < size) cuts.push_back(at);
            }
            check_same(whole, scan(body, cuts, markers));
        }
    }
    return 0;
}
