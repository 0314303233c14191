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

}  // namespace

// The request's inputs plus what the snapshot knows: membership so far
// (precomputed, or matched by an earlier rule) and profile attributes.
class LayeredInputs : public rules::Inputs {
public:
    LayeredInputs(const SegmentRules& rules, rules::Inputs& request,
                  const SegmentRules::Visitor& visitor, const std::uint32_t* matched,
                  const std::size_t& count)
        : rules_(rules), request_(request), visitor_(visitor), matched_(matched), count_(count) {}

    bool get(rules::InputKind kind, std::string_view name, rules::Value& out) override {
        if (kind != rules::InputKind::attribute) return request_.get(kind, name, out);
        auto id = rules_.attribute_id(name);
        if (!id) return false;
        schema::AttributeView value;
        for (std::size_t i = 0; i < visitor_.nprofiles; ++i) {
            if (!schema::find_profile_attribute(visitor_.profiles[i], *id, value)) continue;
            out.is_number = value.type == schema::AttributeType::number;
            out.number = value.number;
            out.text = value.text;
            return true;
        }
        return false;
    }

    bool member(std::uint32_t id) override {
        const std::uint32_t* ids = visitor_.ids;
        return std::find(ids, ids + visitor_.n, id) != ids + visitor_.n ||
               std::find(matched_, matched_ + count_, id) != matched_ + count_;
    }

private:
    const SegmentRules& rules_;
    rules::Inputs& request_;
    const SegmentRules::Visitor& visitor_;
    const std::uint32_t* matched_;
    const std::size_t& count_;
};

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

void SegmentRules::refresh_attributes(std::uint64_t generation) {
    if (!(uses_ & rules::uses_bit(rules::InputKind::attribute))) return;
    if (generation == attributes_generation_ && attributes_generation_ != 0) return;
    attributes_.clear();
    for (auto& def : snapshot_.attributes()) attributes_.emplace_back(std::move(def.name), def.id);
    std::sort(attributes_.begin(), attributes_.end());
    attributes_generation_ = generation;
}

std::optional<std::uint16_t> SegmentRules::attribute_id(std::string_view name) const noexcept {
    auto it = std::lower_bound(attributes_.begin(), attributes_.end(), name,
                               [](const auto& entry, std::string_view wanted) {
                                   return std::string_view(entry.first) < wanted;
                               });
    if (it == attributes_.end() || it->first != name) return std::nullopt;
    return it->second;
}

std::size_t SegmentRules::evaluate(rules::Inputs& inputs, const Visitor& visitor,
                                   std::uint32_t* scratch, std::uint32_t* out) const noexcept {
    std::size_t matched = 0;
    LayeredInputs layered(*this, inputs, visitor, scratch, matched);
    for (const auto& entry : rules_)
        if (entry.rule.evaluate(layered)) scratch[matched++] = entry.segment;
    std::sort(scratch, scratch + matched, [this](std::uint32_t a, std::uint32_t b) {
        return comes_before(snapshot_, a, b);
    });
    return merge_stored_order(snapshot_, visitor.ids, visitor.n, scratch, matched, out);
}

}  // namespace segcore
