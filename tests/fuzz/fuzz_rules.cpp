// The rule compiler and evaluator. Input: the rule JSON on the first line,
// then the request, one "input=value" per line ("query.utm_source=x",
// "header.user-agent=...", "attribute.ltv=#12.5" for a number,
// "member=vip" for a precomputed segment). Compiling arbitrary JSON either
// gives a rule or throws RuleError; evaluating reads only the inputs and
// segments the rule declares, is repeatable, gives the same answer with
// the per-request input cache as without, and {"not": rule} is its
// negation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "segcore/rules.h"
#include "tests/fuzz/fuzz.h"

namespace {

namespace rules = segcore::rules;
using rules::InputKind;

struct Names : rules::SegmentNames {
    std::optional<std::uint32_t> find(std::string_view name) const override {
        if (name == "vip") return 1;
        if (name == "lapsed") return 2;
        if (name == "new_visitor") return 3;
        return std::nullopt;
    }
};

constexpr std::string_view kWords[rules::kInputKinds] = {
    "path", "query", "referrer_host", "header", "cookie", "context",
    "device", "hour", "weekday", "visitor", "attribute", "first_seen_days"};

// The request, looked up the way the module does: device and referrer_host
// derive from the User-Agent and Referer headers.
class Request : public rules::Inputs {
public:
    explicit Request(std::string_view lines) {
        while (!lines.empty()) {
            std::string_view line = lines.substr(0, lines.find('\n'));
            lines.remove_prefix(std::min(lines.size(), line.size() + 1));
            auto eq = line.find('=');
            if (eq == std::string_view::npos) continue;
            std::string key(line.substr(0, eq));
            std::string_view value = line.substr(eq + 1);
            if (key == "member") {
                if (auto id = Names().find(value)) members_.insert(*id);
            } else {
                values_.emplace(key, std::string(value));
            }
        }
    }

    bool get(const rules::Input& input, rules::Value& out) override {
        InputKind kind = input.kind;
        std::string_view name = input.name;
        FUZZ_CHECK(uses & rules::uses_bit(kind));
        if (kind == InputKind::device) {
            auto ua = find("header.user-agent");
            out.text = rules::classify_device(ua ? *ua : "");
            return true;
        }
        if (kind == InputKind::referrer_host) {
            auto referer = find("header.referer");
            if (!referer) return false;
            out.text = rules::referrer_host(*referer);
            if (out.text.empty()) return false;
            FUZZ_CHECK(out.text.data() >= referer->data() &&
                       out.text.data() + out.text.size() <= referer->data() + referer->size());
            return true;
        }
        std::string key(kWords[static_cast<unsigned>(kind)]);
        if (!name.empty()) key += "." + std::string(name);
        auto value = find(key);
        if (!value) return false;
        if (!value->empty() && value->front() == '#') {
            out.is_number = true;
            out.number = std::strtod(std::string(value->substr(1)).c_str(), nullptr);
        } else {
            out.text = *value;
        }
        return true;
    }

    bool member(std::uint32_t id) override {
        FUZZ_CHECK(references.count(id));
        return members_.count(id) != 0;
    }

    std::uint32_t uses = 0;
    std::set<std::uint32_t> references;

private:
    std::optional<std::string_view> find(const std::string& key) const {
        auto it = values_.find(key);
        if (it == values_.end()) return std::nullopt;
        return std::string_view(it->second);
    }

    std::map<std::string, std::string> values_;
    std::set<std::uint32_t> members_;
};

std::optional<rules::Rule> compile(std::string_view json, rules::InputTable& table,
                                   std::string* error = nullptr) {
    try {
        return rules::Rule::compile(json, Names(), table);
    } catch (const rules::RuleError& e) {  // anything else escapes: a crash
        if (error) *error = e.what();
        return std::nullopt;
    }
}

bool evaluate(const rules::Rule& rule, const rules::InputTable& table, Request& request) {
    request.uses = rule.uses();
    request.references = {rule.references().begin(), rule.references().end()};
    bool matches = rule.evaluate(request);
    std::vector<rules::CachedInput> cache(table.size());
    FUZZ_CHECK(rule.evaluate(request, cache.data()) == matches);
    return matches;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view json = input.substr(0, input.find('\n'));
    rules::InputTable table;
    auto rule = compile(json, table);
    if (!rule) return 0;

    Request request(input.substr(std::min(input.size(), json.size() + 1)));
    bool matches = evaluate(*rule, table, request);
    FUZZ_CHECK(evaluate(*rule, table, request) == matches);

    std::string error;
    rules::InputTable negated_table;
    auto negated = compile("{\"not\":" + std::string(json) + "}", negated_table, &error);
    if (!negated) {  // only one level more than the most a rule may nest
        FUZZ_CHECK(error.find("nested deeper than") != std::string::npos);
        return 0;
    }
    FUZZ_CHECK(negated->uses() == rule->uses());
    FUZZ_CHECK(evaluate(*negated, negated_table, request) == !matches);
    return 0;
}
