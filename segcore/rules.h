// Real-time rule segments: a segment's rule (JSON, from marketing data) is
// compiled once — by segsync at import to validate it, and by each worker
// once per snapshot generation — into a RuleSet that is evaluated per
// request against an Inputs object the caller implements lazily over its
// request. Evaluation never allocates: it reads views the Inputs hands out
// and writes segment ids into caller memory.
//
// Rule JSON (see README "Rule segments"):
//   {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
//   {"input": "query.utm_source", "op": "in", "value": ["facebook", "tiktok"],
//    "ignore_case": true}
//   {"segment": "vip"}   (membership of another segment, precomputed or rule)
// Regular expressions use RE2, whose matching is linear in the input, so a
// pathological pattern cannot stall a worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace segcore::rules {

// What a condition reads. Named inputs carry a name (header, cookie, ...).
enum class InputKind : std::uint8_t {
    path,           // request path, without the query string
    query,          // query argument by name (raw, not unescaped)
    referrer_host,  // host of the Referer header, lower case
    header,         // any request header by name (case-insensitive)
    cookie,         // any cookie by name
    context,        // segedge_context NAME $variable;
    device,         // bot / mobile / tablet / desktop (see classify_device)
    hour,           // 0..23, local time in the configured time zone
    weekday,        // 1..7, Monday = 1 (ISO 8601)
    visitor,        // "new" (id issued by this request) or "returning"
    attribute,      // profile attribute from the snapshot
    first_seen_days,  // days since the anonymous id was issued (visitor_id.h)
};

inline constexpr std::size_t kInputKinds = 12;

// A value as the Inputs hand it out: text, or a number (hour, numeric
// profile attributes). Views stay valid for the evaluation.
struct Value {
    bool is_number = false;
    double number = 0;
    std::string_view text;
};

// One input a condition reads: "query.utm_source" is {query, "utm_source"}.
// `slot` numbers the distinct (kind, name) pairs of the rules compiled with
// one InputTable, so a caller can compute each of them once per request
// however many rules read it.
struct Input {
    InputKind kind = InputKind::path;
    std::uint16_t slot = 0;
    std::string_view name;
};

class InputTable {
public:
    // The slot of (kind, name), added when new. Throws RuleError past
    // kMaxSlots distinct inputs.
    std::uint16_t slot(InputKind kind, std::string_view name);
    std::size_t size() const noexcept { return inputs_.size(); }
    // Slot i's input (its name views this table).
    Input input(std::uint16_t slot) const noexcept;

    static constexpr std::size_t kMaxSlots = 65535;

private:
    std::vector<std::pair<InputKind, std::string>> inputs_;  // by slot
    std::map<std::pair<InputKind, std::string>, std::uint16_t> slots_;
};

// A request's value of one input slot, asked for on first use; see
// Rule::evaluate. The caller sets every `state` to unknown per request.
struct CachedInput {
    enum State : std::uint8_t { unknown, missing, present };
    State state = unknown;
    Value value;
};

class Inputs {
public:
    virtual ~Inputs() = default;
    // The input's value, or false when the request has none (missing header,
    // no profile, ...). Called only for inputs some rule uses.
    virtual bool get(const Input& input, Value& out) = 0;
    // Whether the request is already a member of segment `id` (precomputed
    // membership, or a rule evaluated before this one).
    virtual bool member(std::uint32_t id) = 0;
};

// Levels a rule may nest (each all, any, not, condition and segment counts
// one): compiling and evaluating recurse that deep, and a hostile rule must
// not overflow a worker's stack.
inline constexpr int kMaxRuleDepth = 32;

// Compile error; `where` is a JSON path into the rule ("all[2].op") and,
// for malformed JSON, the byte offset.
class RuleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Resolves `{"segment": NAME}` to an id at compile time.
class SegmentNames {
public:
    virtual ~SegmentNames() = default;
    virtual std::optional<std::uint32_t> find(std::string_view name) const = 0;
};

struct Node;

// One compiled rule. Movable, not copyable (owns RE2 objects).
class Rule {
public:
    Rule();
    Rule(Rule&&) noexcept;
    Rule& operator=(Rule&&) noexcept;
    ~Rule();

    // Throws RuleError naming the position of the first problem. Inputs get
    // slots in `table` (rules compiled together share it), else in a table
    // of the rule's own.
    static Rule compile(std::string_view json, const SegmentNames& names);
    static Rule compile(std::string_view json, const SegmentNames& names, InputTable& table);

    // False when an input is missing or not comparable; never throws.
    // With `cache` (an entry per slot of the InputTable the rule was
    // compiled with), each slot is asked from `inputs` at most once.
    bool evaluate(Inputs& inputs, CachedInput* cache = nullptr) const noexcept;
    // Bit i set: the rule reads InputKind i somewhere.
    std::uint32_t uses() const noexcept { return uses_; }
    // Segment ids the rule refers to (for ordering and cycle checks).
    const std::vector<std::uint32_t>& references() const noexcept { return references_; }

private:
    std::unique_ptr<Node> root_;
    std::uint32_t uses_ = 0;
    std::vector<std::uint32_t> references_;
};

inline constexpr std::uint32_t uses_bit(InputKind kind) { return 1u << static_cast<unsigned>(kind); }

// Names of segedge_context values: [a-z0-9_-], 1..64.
bool is_valid_context_name(std::string_view name) noexcept;

// Device class from a User-Agent, by documented substring heuristics
// (README "Device class"): bot first, then tablet, then mobile, else desktop.
// An empty User-Agent counts as a bot. One pass over the User-Agent.
std::string_view classify_device(std::string_view user_agent) noexcept;

// The host of a Referer value, or empty: "https://Shop.EXAMPLE.com:8443/x"
// -> "Shop.EXAMPLE.com" (comparisons can ignore case).
std::string_view referrer_host(std::string_view referer) noexcept;

}  // namespace segcore::rules
