#include "segcore/segment_rules.h"

#include <algorithm>
#include <cstring>

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
                  const SegmentRules::Visitor& visitor, rules::CachedInput* cache,
                  const std::uint8_t* matched)
        : rules_(rules), request_(request), visitor_(visitor), cache_(cache), matched_(matched) {}

    bool get(const rules::Input& input, rules::Value& out) override {
        if (input.kind != rules::InputKind::attribute) return request_.get(input, out);
        read_attributes();
        const rules::CachedInput& cached = cache_[input.slot];
        out = cached.value;
        return cached.state == rules::CachedInput::present;
    }

    bool member(std::uint32_t id) override {
        const std::uint32_t* ids = visitor_.ids;
        if (std::find(ids, ids + visitor_.n, id) != ids + visitor_.n) return true;
        // rules_ is in id order; rules after the current one are unmatched yet
        auto it = std::lower_bound(rules_.rules_.begin(), rules_.rules_.end(), id,
                                   [](const SegmentRules::Entry& e, std::uint32_t v) { return e.segment < v; });
        return it != rules_.rules_.end() && it->segment == id && matched_[it - rules_.rules_.begin()];
    }

private:
    // Every attribute slot at once, in one walk per profile: the known
    // profile first, so its values shadow the anonymous one's.
    void read_attributes() {
        const auto& slots = rules_.attribute_slots_;
        for (auto [id, slot] : slots) cache_[slot].state = rules::CachedInput::missing;
        for (std::size_t i = 0; i < visitor_.nprofiles; ++i) {
            schema::AttributeReader reader(visitor_.profiles[i]);
            schema::AttributeView value;
            std::uint16_t id = 0;
            auto wanted = slots.begin();
            while (wanted != slots.end() && reader.next(id, value)) {
                while (wanted != slots.end() && wanted->first < id) ++wanted;
                if (wanted == slots.end() || wanted->first != id) continue;
                rules::CachedInput& cached = cache_[wanted->second];
                if (cached.state == rules::CachedInput::present) continue;
                cached.state = rules::CachedInput::present;
                cached.value.is_number = value.type == schema::AttributeType::number;
                cached.value.number = value.number;
                cached.value.text = value.text;
            }
        }
    }

    const SegmentRules& rules_;
    rules::Inputs& request_;
    const SegmentRules::Visitor& visitor_;
    rules::CachedInput* cache_;
    const std::uint8_t* matched_;
};

SegmentRules::SegmentRules(const Snapshot& snapshot) : snapshot_(snapshot) {
    CatalogueNames names(snapshot);
    for (std::uint32_t id = 1; id <= snapshot.segment_count(); ++id) {
        const schema::SegmentDef* def = snapshot.segment(id);
        if (!def || def->rule.empty()) continue;
        try {
            rules_.push_back({id, def->priority, rules::Rule::compile(def->rule, names, inputs_)});
        } catch (const rules::RuleError& e) {
            throw rules::RuleError("segment \"" + def->name + "\": " + e.what());
        }
        uses_ |= rules_.back().rule.uses();
    }
    for (std::uint32_t i = 0; i < rules_.size(); ++i) order_.push_back(i);
    std::sort(order_.begin(), order_.end(), [this](std::uint32_t a, std::uint32_t b) {
        const Entry &x = rules_[a], &y = rules_[b];
        return x.priority != y.priority ? x.priority > y.priority : x.segment < y.segment;
    });
}

void SegmentRules::refresh_attributes(std::uint64_t generation) {
    if (!(uses_ & rules::uses_bit(rules::InputKind::attribute))) return;
    if (generation == attributes_generation_ && attributes_generation_ != 0) return;
    auto catalogue = snapshot_.attributes();
    attribute_slots_.clear();
    for (std::uint16_t slot = 0; slot < inputs_.size(); ++slot) {
        rules::Input input = inputs_.input(slot);
        if (input.kind != rules::InputKind::attribute) continue;
        for (const auto& def : catalogue)
            if (def.name == input.name) attribute_slots_.emplace_back(def.id, slot);
    }
    std::sort(attribute_slots_.begin(), attribute_slots_.end());
    attributes_generation_ = generation;
}

// [CachedInput per slot][matched rule ids, stored order][flag per rule]
std::size_t SegmentRules::scratch_size() const noexcept {
    return inputs_.size() * sizeof(rules::CachedInput) + rules_.size() * (sizeof(std::uint32_t) + 1);
}

std::size_t SegmentRules::evaluate(rules::Inputs& inputs, const Visitor& visitor, void* scratch,
                                   std::uint32_t* out) const noexcept {
    auto* cache = static_cast<rules::CachedInput*>(scratch);
    auto* matched = reinterpret_cast<std::uint32_t*>(cache + inputs_.size());
    auto* flags = reinterpret_cast<std::uint8_t*>(matched + rules_.size());
    for (std::size_t i = 0; i < inputs_.size(); ++i) cache[i].state = rules::CachedInput::unknown;
    std::memset(flags, 0, rules_.size());

    LayeredInputs layered(*this, inputs, visitor, cache, flags);
    for (std::size_t i = 0; i < rules_.size(); ++i) flags[i] = rules_[i].rule.evaluate(layered, cache);

    std::size_t n = 0;
    for (std::uint32_t i : order_)
        if (flags[i]) matched[n++] = rules_[i].segment;
    return merge_stored_order(snapshot_, visitor.ids, visitor.n, matched, n, out);
}

}  // namespace segcore
