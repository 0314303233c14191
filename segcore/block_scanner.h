// The streaming rewriter behind dynamic content blocks. Pages mark a block
// with a pair of HTML comments around its default markup:
//
//   <!--segedge:hero-->default markup<!--/segedge:hero-->
//
// (the name: 1..schema::kMaxBlockNameSize of [a-z0-9_-]). The scanner is fed
// the body in chunks of any size and hands its output, in order, to a
// BlockHandler as pieces that point into the input, into the replacement or
// (rarely) into bytes it held back. Across chunk boundaries it holds at most
// one marker's worth of bytes (kMaxMarkerSize) in a member array; it never
// allocates. The decision per block is the handler's, asked once per opening
// marker, so a replaced block's default content is dropped as it streams.
//
// Markup the scanner does not understand is never touched: a marker with a
// bad name is ordinary text, a block without a replacement passes through,
// a closing marker without an opening one passes through, and markers inside
// a block (nesting, a misspelt closing marker) pass through and leave the
// surrounding block as it is. Nothing is buffered to look ahead, so the one
// thing that cannot be undone is dropping: in a block being replaced, a
// foreign marker ends the dropping (the rest passes through untouched), and
// a page that ends without the closing marker loses the default content
// after the opening marker — which is what a replacement removes anyway.
// problem() reports both cases so the caller can log them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "segcore/schema.h"

namespace segcore {

enum class Piece : std::uint8_t {
    input,        // points into the chunk passed to feed(): valid as long as it is
    held,         // bytes held back from earlier chunks: valid only during the call
    replacement,  // the view BlockHandler::replacement() returned
};

class BlockHandler {
public:
    // The content for block `name`, or nullopt to keep its default. Views
    // must stay valid until the scanner is done with the body.
    virtual std::optional<std::string_view> replacement(std::string_view name) = 0;
    // The next piece of output (never empty).
    virtual void output(std::string_view bytes, Piece piece) = 0;

protected:
    ~BlockHandler() = default;
};

enum class BlockProblem : std::uint8_t {
    none,
    unterminated,  // the body ended inside a block
    nested,        // a marker inside a block: nesting or a misspelt closing marker
};

class BlockScanner {
public:
    enum class Markers : std::uint8_t { keep, remove };

    static constexpr std::string_view kOpenPrefix = "<!--segedge:";
    static constexpr std::string_view kClosePrefix = "<!--/segedge:";
    static constexpr std::string_view kSuffix = "-->";
    static constexpr std::size_t kMaxMarkerSize =
        kClosePrefix.size() + schema::kMaxBlockNameSize + kSuffix.size();

    explicit BlockScanner(Markers markers = Markers::keep) noexcept : markers_(markers) {}

    // Scans the next chunk of the body, in order.
    void feed(std::string_view chunk, BlockHandler& handler);
    // The body is complete: outputs what is still held back.
    void finish(BlockHandler& handler);

    // Bytes held back for the next feed() (at most kMaxMarkerSize).
    std::size_t held() const noexcept { return carried_; }
    BlockProblem problem() const noexcept { return problem_; }
    // The block the first problem was found in.
    std::string_view problem_block() const noexcept { return {problem_block_, problem_block_size_}; }

private:
    enum class Mode : std::uint8_t { outside, keeping, dropping };
    enum class Step : std::uint8_t { more, marker, not_marker };

    // Where a complete marker lies: its carried part is match_[0, carried_).
    struct Span {
        const char* chunk_begin;  // the marker's bytes in the current chunk
        const char* chunk_end;
    };

    const char* find_candidate(const char* from, const char* begin, const char* end,
                               const char*& candidate) noexcept;
    void start_candidate(const char* at, const char*& candidate) noexcept;
    Step step(char c) noexcept;
    Step complete() noexcept;
    void on_marker(const Span& span, BlockHandler& handler);
    void enter_block(std::string_view name, Mode mode) noexcept;
    void report(BlockProblem problem) noexcept;
    bool emitting() const noexcept { return mode_ != Mode::dropping; }
    void emit_pending(const char* upto, BlockHandler& handler);
    void emit_marker(const Span& span, BlockHandler& handler);
    void emit_carried(BlockHandler& handler);

    Markers markers_;
    Mode mode_ = Mode::outside;
    BlockProblem problem_ = BlockProblem::none;
    bool closing_ = false;          // the candidate marker has a '/'
    std::size_t match_size_ = 0;    // bytes of the candidate marker so far
    std::size_t carried_ = 0;       // of those, how many came from earlier chunks
    std::size_t name_begin_ = 0;    // a complete marker's name in match_
    std::size_t name_size_ = 0;
    std::size_t block_size_ = 0;
    std::size_t problem_block_size_ = 0;
    const char* emit_from_ = nullptr;  // start of the output not yet handed over
    char match_[kMaxMarkerSize];
    char block_[schema::kMaxBlockNameSize];  // the block we are in
    char problem_block_[schema::kMaxBlockNameSize];
};

}  // namespace segcore
