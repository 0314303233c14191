#include "segcore/block_scanner.h"

#include <cstring>

namespace segcore {
namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

// Advances the candidate marker in match_ by one byte. Only its first byte
// is '<', so after a mismatch nothing held needs scanning again: the caller
// rescans just the mismatching byte.
BlockScanner::Step BlockScanner::step(char c) noexcept {
    std::size_t i = match_size_;
    std::size_t prefix = closing_ ? kClosePrefix.size() : kOpenPrefix.size();
    if (i == 4 && c == '/') {
        closing_ = true;
    } else if (i < prefix) {
        if (c != kOpenPrefix[closing_ ? i - 1 : i]) return Step::not_marker;
    } else if (c == '>') {
        return complete();
    } else if (!is_name_char(c) || i - prefix == schema::kMaxBlockNameSize + 2) {
        return Step::not_marker;
    }
    match_[match_size_++] = c;
    return Step::more;
}

// At the '>': "NAME--" must be all that follows the prefix. Names may
// contain '-', so the name is what precedes the final two dashes.
BlockScanner::Step BlockScanner::complete() noexcept {
    std::size_t prefix = closing_ ? kClosePrefix.size() : kOpenPrefix.size();
    std::size_t body = match_size_ - prefix;
    if (body < 3 || match_[match_size_ - 1] != '-' || match_[match_size_ - 2] != '-')
        return Step::not_marker;
    name_begin_ = prefix;
    name_size_ = body - 2;
    match_[match_size_++] = '>';
    return Step::marker;
}

void BlockScanner::feed(std::string_view chunk, BlockHandler& handler) {
    const char* p = chunk.data();
    const char* end = p + chunk.size();
    const char* candidate = p;  // where the candidate marker starts in this chunk
    emit_from_ = p;

    while (p < end) {
        if (match_size_ == 0) {
            p = find_candidate(p, chunk.data(), end, candidate);
            continue;
        }
        Step step_result = step(*p);
        if (step_result == Step::more) {
            ++p;
        } else if (step_result == Step::marker) {
            ++p;
            on_marker({candidate, p}, handler);
            match_size_ = 0;
            carried_ = 0;
        } else {
            // Ordinary bytes after all; *p is looked at again from scratch.
            if (emitting()) emit_carried(handler);
            match_size_ = 0;
            carried_ = 0;
        }
    }

    if (match_size_ > 0) {
        if (carried_ == 0) emit_pending(candidate, handler);
        carried_ = match_size_;
    } else {
        emit_pending(end, handler);
    }
}

// Looks for the next "<!" (in HTML, '!' is far rarer than '<', so memchr
// stops less often), or a '<' ending the chunk, which may be the start of a
// marker the next chunk completes. Starts the candidate and returns where
// scanning goes on. Bytes before `from` never pair with a '!' at `from`: a
// failed candidate's first byte is '<' only if its second is not '!'.
const char* BlockScanner::find_candidate(const char* from, const char* begin, const char* end,
                                         const char*& candidate) noexcept {
    const char* bang = static_cast<const char*>(std::memchr(from, '!', static_cast<std::size_t>(end - from)));
    if (!bang) {
        if (end[-1] == '<') start_candidate(end - 1, candidate);
        return end;
    }
    if (bang > begin && bang[-1] == '<') {
        start_candidate(bang - 1, candidate);
        match_[match_size_++] = '!';
    }
    return bang + 1;
}

void BlockScanner::start_candidate(const char* at, const char*& candidate) noexcept {
    candidate = at;
    match_[0] = '<';
    match_size_ = 1;
    closing_ = false;
}

void BlockScanner::finish(BlockHandler& handler) {
    if (match_size_ > 0 && emitting()) emit_carried(handler);
    if (mode_ != Mode::outside) report(BlockProblem::unterminated);
    match_size_ = 0;
    carried_ = 0;
    mode_ = Mode::outside;
}

void BlockScanner::on_marker(const Span& span, BlockHandler& handler) {
    std::string_view name(match_ + name_begin_, name_size_);
    bool ours = mode_ != Mode::outside && closing_ &&
                name == std::string_view(block_, block_size_);

    if (mode_ == Mode::outside && !closing_) {
        auto content = handler.replacement(name);
        if (content) {
            emit_pending(span.chunk_begin, handler);
            if (markers_ == Markers::keep) emit_marker(span, handler);
            if (!content->empty()) handler.output(*content, Piece::replacement);
            enter_block(name, Mode::dropping);
            return;
        }
        enter_block(name, Mode::keeping);
        if (markers_ == Markers::remove) {
            emit_pending(span.chunk_begin, handler);
            emit_from_ = span.chunk_end;
        } else {
            emit_carried(handler);
        }
        return;
    }

    if (ours) {
        bool was_dropping = mode_ == Mode::dropping;
        mode_ = Mode::outside;
        if (markers_ == Markers::remove) {
            if (!was_dropping) emit_pending(span.chunk_begin, handler);
            emit_from_ = span.chunk_end;
        } else if (was_dropping) {
            emit_carried(handler);
            emit_from_ = span.chunk_begin;
        } else {
            emit_carried(handler);
        }
        return;
    }

    // A stray closing marker outside blocks, or any marker inside a block
    // that is not its end: ordinary content. Inside a block being replaced
    // this stops the dropping for good, since the block is evidently broken.
    if (mode_ != Mode::outside) report(BlockProblem::nested);
    if (mode_ == Mode::dropping) {
        mode_ = Mode::keeping;
        emit_from_ = span.chunk_begin;
    }
    emit_carried(handler);
}

void BlockScanner::enter_block(std::string_view name, Mode mode) noexcept {
    mode_ = mode;
    block_size_ = name.size();
    std::memcpy(block_, name.data(), name.size());
}

void BlockScanner::report(BlockProblem problem) noexcept {
    if (problem_ != BlockProblem::none) return;
    problem_ = problem;
    problem_block_size_ = block_size_;
    std::memcpy(problem_block_, block_, block_size_);
}

void BlockScanner::emit_pending(const char* upto, BlockHandler& handler) {
    if (emitting() && upto > emit_from_)
        handler.output({emit_from_, static_cast<std::size_t>(upto - emit_from_)}, Piece::input);
    emit_from_ = upto;
}

void BlockScanner::emit_marker(const Span& span, BlockHandler& handler) {
    emit_carried(handler);
    if (span.chunk_end > span.chunk_begin)
        handler.output({span.chunk_begin, static_cast<std::size_t>(span.chunk_end - span.chunk_begin)},
                       Piece::input);
}

// The part of the candidate that came from earlier chunks; the pending
// range in this chunk starts right after it.
void BlockScanner::emit_carried(BlockHandler& handler) {
    if (carried_ > 0) handler.output({match_, carried_}, Piece::held);
}

}  // namespace segcore
