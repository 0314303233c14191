#include "sync/progress.h"

namespace segsync {
namespace {

constexpr std::chrono::milliseconds kInterval{500};

}  // namespace

Progress::Progress(std::ostream* out, std::string label, std::uint64_t total)
    : out_(out), label_(std::move(label)), total_(total),
      next_(std::chrono::steady_clock::now() + kInterval) {}

Progress::~Progress() {
    if (out_ && line_open_) *out_ << '\n' << std::flush;
}

void Progress::update(std::size_t lines, std::uint64_t offset) {
    if (!out_) return;
    auto now = std::chrono::steady_clock::now();
    if (now < next_) return;
    next_ = now + kInterval;
    print(lines, offset);
}

void Progress::finish(std::size_t lines, std::uint64_t offset) {
    if (!out_) return;
    print(lines, offset);
    *out_ << '\n' << std::flush;
    line_open_ = false;
}

void Progress::print(std::size_t lines, std::uint64_t offset) {
    *out_ << '\r' << label_ << ": " << lines << " lines";
    if (total_ > 0) *out_ << " (" << (offset >= total_ ? 100 : offset * 100 / total_) << "%)";
    *out_ << std::flush;
    line_open_ = true;
}

}  // namespace segsync
