#include "segcore/segment_rules.h"

#include <algorithm>

#include "segcore/identity.h"

namespace segcore {
namespace {

class CatalogueNames : public rules::SegmentNames {
public:
    explicit CatalogueNames(const Snapshot& snapshot) : snapshot_(snapshot) {}
    std::optional<std::uint32_t> find(std::string_view name) const override {
        for (const auto& [id, def] : snapshot_.segments())
            if (def.name == name) return id;
        return std::nullopt;
    }

private:
    const Snapshot& snapshot_;
};

// Membership so far: precomputed, or matched by an earlier rule.
class Layered : public rules::Inputs {
public:
    Layered(rules::Inputs& request, const std::uint32_t* ids, std::size_t n,
            const std::uint32_t* matched, const std::size_t& count)
        : request_(request), ids_(ids), n_(n), matched_(matched), count_(count) {}
    bool get(rules::InputKind kind, std::string_view name, rules::Value& out) override {
        return request_.get(kind, name, out);
    }
    bool member(std::uint32_t id) override {
        return std::find(ids_, ids_ + n_, id) != ids_ + n_ ||
               std::find(matched_, matched_ + count_, id) != matched_ + count_;
    }

private:
    rules::Inputs& request_;
    const std::uint32_t* ids_;
    std::size_t n_;
    const std::uint32_t* matched_;
    const std::size_t& count_;
};

}  // namespace

SegmentRules::SegmentRules(const Snapshot& snapshot) : snapshot_(snapshot) {
    CatalogueNames names(snapshot);
    for (std::uint32_t id = 1; id <= snapshot.segment_count(); ++id) {
        const schema::SegmentDef* def = snapshot.segment(id);
        if (!def || def->rule.empty()) continue;
        try {
            rules_.push_back({id, rules::Rule::compile(def->rule, names)});
        } catch (const rules::RuleError& e) {
            throw rules::RuleError("segment \"" + def->name + "\": " + e.what());
        }
        uses_ |= rules_.back().rule.uses();
    }
}

std::size_t SegmentRules::evaluate(rules::Inputs& inputs, const std::uint32_t* ids, std::size_t n,
                                   std::uint32_t* scratch, std::uint32_t* out) const noexcept {
    std::size_t matched = 0;
    Layered layered(inputs, ids, n, scratch, matched);
    for (const auto& entry : rules_)
        if (entry.rule.evaluate(layered)) scratch[matched++] = entry.segment;
    std::sort(scratch, scratch + matched, [this](std::uint32_t a, std::uint32_t b) {
        return comes_before(snapshot_, a, b);
    });
    return merge_stored_order(snapshot_, ids, n, scratch, matched, out);
}

}  // namespace segcore
