#include "segcore/rules.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace segcore::rules {

enum class Op : std::uint8_t {
    eq, ne, in, not_in, prefix, suffix, contains, regex, gt, gte, lt, lte, between, exists
};

enum class NodeType : std::uint8_t { all, any, negate, condition, segment };

// A rule's value, prepared at compile time: `number` is also set for text
// that reads as a number ("5"), and `text` is lower-cased when the
// condition ignores case, so evaluation parses and folds only the input.
struct Operand {
    bool is_number = false;
    bool has_number = false;
    double number = 0;
    std::string text;
};

struct Node {
    NodeType type = NodeType::condition;
    std::vector<std::unique_ptr<Node>> children;
    InputKind input = InputKind::path;
    std::uint16_t slot = 0;
    std::string name;
    Op op = Op::eq;
    bool ignore_case = false;
    std::vector<Operand> operands;
    std::unique_ptr<RE2> regex;
    std::uint32_t segment = 0;
};

namespace {

using nlohmann::json;

std::string join(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
}

[[noreturn]] void fail(const std::string& where, const std::string& message) {
    throw RuleError((where.empty() ? std::string("rule") : "rule." + where) + ": " + message);
}

struct InputName {
    std::string_view word;
    InputKind kind;
    bool named;
};

constexpr InputName kInputs[] = {
    {"path", InputKind::path, false},       {"query", InputKind::query, true},
    {"referrer_host", InputKind::referrer_host, false},
    {"header", InputKind::header, true},    {"cookie", InputKind::cookie, true},
    {"context", InputKind::context, true},  {"device", InputKind::device, false},
    {"hour", InputKind::hour, false},       {"weekday", InputKind::weekday, false},
    {"visitor", InputKind::visitor, false}, {"attribute", InputKind::attribute, true},
    {"first_seen_days", InputKind::first_seen_days, false},
};

struct OpName {
    std::string_view word;
    Op op;
};

constexpr OpName kOps[] = {
    {"eq", Op::eq},           {"ne", Op::ne},         {"in", Op::in},
    {"not-in", Op::not_in},   {"prefix", Op::prefix}, {"suffix", Op::suffix},
    {"contains", Op::contains}, {"regex", Op::regex}, {"gt", Op::gt},
    {"gte", Op::gte},         {"lt", Op::lt},         {"lte", Op::lte},
    {"between", Op::between}, {"exists", Op::exists},
};

bool is_numeric_op(Op op) {
    return op == Op::gt || op == Op::gte || op == Op::lt || op == Op::lte || op == Op::between;
}

// "query.utm_source" -> query, "utm_source"
void parse_input(const std::string& text, const std::string& where, Node& node) {
    auto dot = text.find('.');
    std::string_view word = std::string_view(text).substr(0, dot);
    for (const auto& candidate : kInputs) {
        if (candidate.word != word) continue;
        std::string name = dot == std::string::npos ? std::string() : text.substr(dot + 1);
        if (candidate.named && name.empty())
            fail(where, "input \"" + text + "\" needs a name: \"" + std::string(word) + ".NAME\"");
        if (!candidate.named && dot != std::string::npos)
            fail(where, "input \"" + std::string(word) + "\" takes no name");
        if (candidate.kind == InputKind::context && !is_valid_context_name(name))
            fail(where, "invalid context name \"" + name + "\" (use [a-z0-9_-])");
        node.input = candidate.kind;
        node.name = std::move(name);
        return;
    }
    fail(where, "unknown input \"" + text +
                    "\" (path, query.NAME, referrer_host, header.NAME, cookie.NAME, context.NAME, "
                    "device, hour, weekday, visitor, first_seen_days, attribute.NAME)");
}

constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Text that holds a number ("42", " 3.5", "+1") compares as a number.
bool parse_number(std::string_view text, double& out) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    if (text.empty()) return false;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
}

Operand operand(const json& value, const std::string& where, bool numeric) {
    Operand out;
    if (value.is_number()) {
        out.is_number = out.has_number = true;
        out.number = value.get<double>();
        out.text = value.dump();
    } else if (value.is_string()) {
        if (numeric) fail(where, "must be a number");
        out.text = value.get<std::string>();
        out.has_number = parse_number(out.text, out.number);
    } else {
        fail(where, "must be a string or a number");
    }
    return out;
}

std::unique_ptr<RE2> compile_regex(const std::string& pattern, bool ignore_case,
                                   const std::string& where) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(!ignore_case);
    auto re = std::make_unique<RE2>(pattern, options);
    if (!re->ok()) fail(where, "bad regex: " + re->error());
    return re;
}

void parse_value(const json& object, const std::string& where, Node& node) {
    auto it = object.find("value");
    if (node.op == Op::exists) {
        if (it != object.end()) fail(join(where, "value"), "\"exists\" takes no value");
        return;
    }
    if (it == object.end()) fail(where, "missing \"value\"");
    std::string at = join(where, "value");
    bool list = node.op == Op::in || node.op == Op::not_in || node.op == Op::between;
    if (list) {
        if (!it->is_array() || it->empty()) fail(at, "must be a non-empty array");
        if (node.op == Op::between && it->size() != 2) fail(at, "\"between\" takes [low, high]");
        for (std::size_t i = 0; i < it->size(); ++i)
            node.operands.push_back(
                operand((*it)[i], at + "[" + std::to_string(i) + "]", node.op == Op::between));
        return;
    }
    node.operands.push_back(operand(*it, at, is_numeric_op(node.op)));
    if (node.op == Op::regex) {
        if (node.operands[0].is_number) fail(at, "a regex must be a string");
        node.regex = compile_regex(node.operands[0].text, node.ignore_case, at);
    }
}

// Case-insensitive comparisons fold the input only: the operands are folded
// here, once (a regex folds by itself).
void fold_operands(Node& node) {
    if (!node.ignore_case || node.op == Op::regex) return;
    for (auto& operand : node.operands)
        for (char& c : operand.text) c = lower(c);
}

class Compiler {
public:
    Compiler(const SegmentNames& names, InputTable& table) : names_(names), table_(table) {}

    std::unique_ptr<Node> node(const json& value, const std::string& where) {
        if (++depth_ > kMaxRuleDepth)
            fail(where, "nested deeper than " + std::to_string(kMaxRuleDepth) + " levels");
        auto out = unbounded_node(value, where);
        --depth_;
        return out;
    }

    std::uint32_t uses = 0;
    std::vector<std::uint32_t> references;

private:
    std::unique_ptr<Node> unbounded_node(const json& value, const std::string& where) {
        if (!value.is_object() || value.size() == 0) fail(where, "must be a non-empty object");
        if (value.contains("all")) return group(value, "all", NodeType::all, where);
        if (value.contains("any")) return group(value, "any", NodeType::any, where);
        if (value.contains("not")) {
            only(value, {"not"}, where);
            auto out = std::make_unique<Node>();
            out->type = NodeType::negate;
            out->children.push_back(node(value["not"], join(where, "not")));
            return out;
        }
        if (value.contains("segment")) return segment(value, where);
        return condition(value, where);
    }

    static void only(const json& object, std::initializer_list<std::string_view> keys,
                     const std::string& where) {
        for (const auto& item : object.items())
            if (std::find(keys.begin(), keys.end(), item.key()) == keys.end())
                fail(join(where, item.key()), "unknown field");
    }

    std::unique_ptr<Node> group(const json& value, const char* key, NodeType type,
                                const std::string& where) {
        only(value, {key}, where);
        const json& list = value[key];
        std::string at = join(where, key);
        if (!list.is_array() || list.empty()) fail(at, "must be a non-empty array");
        auto out = std::make_unique<Node>();
        out->type = type;
        for (std::size_t i = 0; i < list.size(); ++i)
            out->children.push_back(node(list[i], at + "[" + std::to_string(i) + "]"));
        return out;
    }

    std::unique_ptr<Node> segment(const json& value, const std::string& where) {
        only(value, {"segment"}, where);
        std::string at = join(where, "segment");
        if (!value["segment"].is_string()) fail(at, "must be a segment name");
        auto name = value["segment"].get<std::string>();
        auto id = names_.find(name);
        if (!id) fail(at, "unknown segment \"" + name + "\"");
        auto out = std::make_unique<Node>();
        out->type = NodeType::segment;
        out->segment = *id;
        references.push_back(*id);
        return out;
    }

    std::unique_ptr<Node> condition(const json& value, const std::string& where) {
        only(value, {"input", "op", "value", "ignore_case"}, where);
        auto out = std::make_unique<Node>();
        auto input = value.find("input");
        if (input == value.end() || !input->is_string())
            fail(where, "a condition needs \"input\" (a string), or use all/any/not/segment");
        parse_input(input->get<std::string>(), join(where, "input"), *out);
        auto op = value.find("op");
        if (op == value.end() || !op->is_string()) fail(where, "missing \"op\" (a string)");
        auto word = op->get<std::string>();
        auto known = std::find_if(std::begin(kOps), std::end(kOps),
                                  [&](const OpName& o) { return o.word == word; });
        if (known == std::end(kOps)) fail(join(where, "op"), "unknown operator \"" + word + "\"");
        out->op = known->op;
        if (auto ci = value.find("ignore_case"); ci != value.end()) {
            if (!ci->is_boolean()) fail(join(where, "ignore_case"), "must be true or false");
            out->ignore_case = ci->get<bool>();
        }
        parse_value(value, where, *out);
        fold_operands(*out);
        out->slot = table_.slot(out->input, out->name);
        uses |= uses_bit(out->input);
        return out;
    }

    const SegmentNames& names_;
    InputTable& table_;
    int depth_ = 0;
};

// ---- evaluation: no allocation, no exceptions ----

// `folded` is already lower case (see fold_operands).
inline bool equal(std::string_view text, std::string_view folded, bool ignore_case) {
    if (text.size() != folded.size()) return false;
    if (!ignore_case) return text == folded;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (lower(text[i]) != folded[i]) return false;
    return true;
}

bool find(std::string_view haystack, std::string_view folded, bool ignore_case) {
    if (!ignore_case) return haystack.find(folded) != std::string_view::npos;
    if (folded.empty()) return true;
    if (folded.size() > haystack.size()) return false;
    char first = folded[0];
    for (std::size_t i = 0; i + folded.size() <= haystack.size(); ++i)
        if (lower(haystack[i]) == first && equal(haystack.substr(i, folded.size()), folded, true))
            return true;
    return false;
}

bool as_number(const Value& value, double& out) {
    if (value.is_number) {
        out = value.number;
        return true;
    }
    return parse_number(value.text, out);
}

// eq/in: numbers compare numerically when both sides are numbers, so the
// attribute 5 equals the rule's "5" and the query "5.0" equals the rule's 5.
inline bool equals(const Value& value, const Operand& operand, bool ignore_case) {
    if (!operand.is_number && !value.is_number) return equal(value.text, operand.text, ignore_case);
    double number = 0;
    if (operand.has_number && as_number(value, number)) return number == operand.number;
    return !value.is_number && equal(value.text, operand.text, ignore_case);
}

bool compare(const Node& node, const Value& value) {
    if (node.op == Op::exists) return true;
    const Operand& first = node.operands[0];  // every other operator has one
    std::string_view text = value.text;
    switch (node.op) {
    case Op::eq: return equals(value, first, node.ignore_case);
    case Op::ne: return !equals(value, first, node.ignore_case);
    case Op::in:
    case Op::not_in: {
        bool found = std::any_of(node.operands.begin(), node.operands.end(), [&](const Operand& o) {
            return equals(value, o, node.ignore_case);
        });
        return node.op == Op::in ? found : !found;
    }
    case Op::prefix:
        return !value.is_number && text.size() >= first.text.size() &&
               equal(text.substr(0, first.text.size()), first.text, node.ignore_case);
    case Op::suffix:
        return !value.is_number && text.size() >= first.text.size() &&
               equal(text.substr(text.size() - first.text.size()), first.text, node.ignore_case);
    case Op::contains: return !value.is_number && find(text, first.text, node.ignore_case);
    case Op::regex:
        return !value.is_number && node.regex->Match(re2::StringPiece(text.data(), text.size()), 0,
                                                     text.size(), RE2::UNANCHORED, nullptr, 0);
    default: break;
    }
    double number = 0;
    if (!as_number(value, number)) return false;
    switch (node.op) {
    case Op::gt: return number > first.number;
    case Op::gte: return number >= first.number;
    case Op::lt: return number < first.number;
    case Op::lte: return number <= first.number;
    case Op::between: return number >= node.operands[0].number && number <= node.operands[1].number;
    default: return false;
    }
}

bool evaluate(const Node& node, Inputs& inputs, CachedInput* cache) {
    switch (node.type) {
    case NodeType::all:
        for (const auto& child : node.children)
            if (!evaluate(*child, inputs, cache)) return false;
        return true;
    case NodeType::any:
        for (const auto& child : node.children)
            if (evaluate(*child, inputs, cache)) return true;
        return false;
    case NodeType::negate: return !evaluate(*node.children[0], inputs, cache);
    case NodeType::segment: return inputs.member(node.segment);
    case NodeType::condition: break;
    }
    // A missing input fails every operator; "ne"/"not-in" included, so a
    // rule never matches on data the request does not have.
    Input input{node.input, node.slot, node.name};
    if (!cache) {
        Value value;
        return inputs.get(input, value) && compare(node, value);
    }
    CachedInput& cached = cache[node.slot];
    if (cached.state == CachedInput::unknown)
        cached.state = inputs.get(input, cached.value) ? CachedInput::present : CachedInput::missing;
    return cached.state == CachedInput::present && compare(node, cached.value);
}

}  // namespace

Rule::Rule() = default;
Rule::Rule(Rule&&) noexcept = default;
Rule& Rule::operator=(Rule&&) noexcept = default;
Rule::~Rule() = default;

std::uint16_t InputTable::slot(InputKind kind, std::string_view name) {
    std::pair<InputKind, std::string> key(kind, name);
    if (auto it = slots_.find(key); it != slots_.end()) return it->second;
    if (inputs_.size() == kMaxSlots)
        throw RuleError("rule: more than " + std::to_string(kMaxSlots) + " distinct inputs");
    auto slot = static_cast<std::uint16_t>(inputs_.size());
    inputs_.push_back(key);
    slots_.emplace(std::move(key), slot);
    return slot;
}

Input InputTable::input(std::uint16_t slot) const noexcept {
    return Input{inputs_[slot].first, slot, inputs_[slot].second};
}

Rule Rule::compile(std::string_view text, const SegmentNames& names) {
    InputTable own;
    return compile(text, names, own);
}

Rule Rule::compile(std::string_view text, const SegmentNames& names, InputTable& table) {
    // nlohmann takes a NUL byte for the end of the text, ignoring the rest.
    if (auto nul = text.find('\0'); nul != std::string_view::npos)
        throw RuleError("rule: malformed JSON at byte " + std::to_string(nul + 1));
    json parsed;
    try {
        parsed = json::parse(text);
    } catch (const json::parse_error& e) {
        throw RuleError("rule: malformed JSON at byte " + std::to_string(e.byte));
    } catch (const json::out_of_range&) {  // 1e999: no double holds it
        throw RuleError("rule: a number is out of range");
    }
    Compiler compiler(names, table);
    Rule rule;
    rule.root_ = compiler.node(parsed, "");
    rule.uses_ = compiler.uses;
    rule.references_ = std::move(compiler.references);
    return rule;
}

bool Rule::evaluate(Inputs& inputs, CachedInput* cache) const noexcept {
    if (!root_) return false;
    try {
        return rules::evaluate(*root_, inputs, cache);
    } catch (...) {  // an Inputs implementation that throws: the rule is false
        return false;
    }
}

bool is_valid_context_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

namespace {

// Each byte lower-cased (ASCII letters only), and the letters that start a
// tell-tale word of classify_device (0 for every other byte).
struct DeviceTables {
    char lower[256];
    char first[256];
    constexpr DeviceTables() : lower(), first() {
        for (int c = 0; c < 256; ++c) lower[c] = rules::lower(static_cast<char>(c));
        for (char c : std::string_view("abcfhikmopstw")) {
            first[static_cast<unsigned char>(c)] = c;
            first[static_cast<unsigned char>(c - 'a' + 'A')] = c;
        }
    }
};

constexpr DeviceTables kDevice;

// Whether `text` has `word` (lower case) at `i`, ASCII case folded; the
// caller has matched the first letter.
inline bool word_at(std::string_view text, std::size_t i, std::string_view word) {
    if (text.size() - i < word.size()) return false;
    for (std::size_t k = 1; k < word.size(); ++k)
        if (kDevice.lower[static_cast<unsigned char>(text[i + k])] != word[k]) return false;
    return true;
}

constexpr unsigned kTabletWord = 1, kMobileWord = 2, kAndroid = 4, kMobile = 8;

}  // namespace

// One pass over the first 512 bytes, stopping only at letters that start a
// tell-tale word; a bot word decides at once (bot ranks first).
std::string_view classify_device(std::string_view ua) noexcept {
    if (ua.empty()) return "bot";
    std::string_view text = ua.substr(0, 512);
    unsigned seen = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char first = kDevice.first[static_cast<unsigned char>(text[i])];
        if (first == 0) continue;
        auto at = [&](std::string_view word) { return word_at(text, i, word); };
        switch (first) {
        case 'a': if (at("android")) seen |= kAndroid; break;
        case 'b':
            if (at("bot")) return "bot";
            if (at("blackberry")) seen |= kMobileWord;
            break;
        case 'c': if (at("crawler") || at("curl/")) return "bot"; break;
        case 'f': if (at("facebookexternalhit")) return "bot"; break;
        case 'h': if (at("headless")) return "bot"; break;
        case 'i':
            if (at("ipad")) seen |= kTabletWord;
            else if (at("iphone") || at("ipod") || at("iemobile")) seen |= kMobileWord;
            break;
        case 'k': if (at("kindle")) seen |= kTabletWord; break;
        case 'm': if (at("mobi")) seen |= kMobileWord | (at("mobile") ? kMobile : 0u); break;
        case 'o': if (at("opera mini")) seen |= kMobileWord; break;
        case 'p':
            if (at("python-requests") || at("preview")) return "bot";
            if (at("playbook")) seen |= kTabletWord;
            break;
        case 's':
            if (at("spider") || at("slurp")) return "bot";
            if (at("silk/")) seen |= kTabletWord;
            break;
        case 't': if (at("tablet")) seen |= kTabletWord; break;
        case 'w':
            if (at("wget/")) return "bot";
            if (at("windows phone")) seen |= kMobileWord;
            break;
        default: break;
        }
    }
    if ((seen & kTabletWord) || ((seen & kAndroid) && !(seen & kMobile))) return "tablet";
    if (seen & (kMobileWord | kAndroid)) return "mobile";
    return "desktop";
}

std::string_view referrer_host(std::string_view referer) noexcept {
    auto scheme = referer.find("://");
    if (scheme == std::string_view::npos) return {};
    referer.remove_prefix(scheme + 3);
    auto end = referer.find_first_of("/?#");
    std::string_view authority = referer.substr(0, end);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    if (!authority.empty() && authority.front() == '[') {  // IPv6 literal
        auto close = authority.find(']');
        return close == std::string_view::npos ? std::string_view() : authority.substr(0, close + 1);
    }
    return authority.substr(0, authority.find(':'));
}

}  // namespace segcore::rules
