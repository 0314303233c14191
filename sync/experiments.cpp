#include "sync/experiments.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace segsync {
namespace {

namespace ex = segcore::experiments;
using nlohmann::json;

std::uint32_t basis_points(const json& value, std::string_view name, std::uint32_t max,
                           const Location& where) {
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > max)
        throw ImportError(where, "\"" + std::string(name) + "\" must be an integer 0.." +
                                     std::to_string(max) + " (basis points), got " + value.dump());
    return static_cast<std::uint32_t>(value.get<std::int64_t>());
}

// Experiment and layer ids are lowercase like segment names; variant names
// may also use upper case ("B").
std::string experiment_name(const json& object, std::string_view field, std::string_view kind,
                            const Location& where) {
    const std::string& name = as_string(required(object, field, where), field, where);
    bool variant = kind == "variant";
    if (!(variant ? ex::is_valid_variant_name(name) : ex::is_valid_name(name)))
        throw ImportError(where, "invalid " + std::string(kind) + " name " + quote(name) + ": use 1.." +
                                     std::to_string(ex::kMaxNameSize) + " characters of " +
                                     (variant ? "A-Z, " : "") + "a-z, 0-9, _ and -");
    return name;
}

std::vector<ex::Variant> parse_variants(const json& list, const Location& where) {
    if (!list.is_array() || list.empty() || list.size() > ex::kMaxVariants)
        throw ImportError(where, "\"variants\" must be an array of 1.." +
                                     std::to_string(ex::kMaxVariants) + " variants");
    std::vector<ex::Variant> variants;
    std::set<std::string> names;
    std::uint32_t sum = 0;
    for (const json& item : list) {
        if (!item.is_object()) throw ImportError(where, "each variant must be an object");
        check_fields(item, {"name", "weight"}, where);
        ex::Variant v{experiment_name(item, "name", "variant", where),
                      basis_points(required(item, "weight", where), "weight", ex::kBuckets, where)};
        if (v.name == ex::kHoldout)
            throw ImportError(where, "variant name \"holdout\" is reserved for the layer's holdout");
        if (!names.insert(v.name).second)
            throw ImportError(where, "duplicate variant " + quote(v.name));
        sum += v.weight;
        variants.push_back(std::move(v));
    }
    if (sum != ex::kBuckets)
        throw ImportError(where, "variant weights sum to " + std::to_string(sum) + ", not " +
                                     std::to_string(ex::kBuckets) + " basis points");
    return variants;
}

std::vector<std::uint32_t> parse_targets(const json& object, const Catalogue& catalogue,
                                         const Location& where) {
    auto it = object.find("segments");
    if (it == object.end()) return {};  // everyone
    if (!it->is_array()) throw ImportError(where, "\"segments\" must be an array of segment names");
    std::vector<std::uint32_t> ids;
    for (const json& name : *it) {
        const std::string& text = as_string(name, "segments[]", where);
        auto id = catalogue.find(text);
        if (!id) throw ImportError(where, "unknown segment " + quote(text));
        if (std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
    }
    if (ids.size() > 255) throw ImportError(where, "at most 255 segments per experiment");
    return ids;
}

ex::Status parse_status(const json& object, const Location& where) {
    const std::string& status = as_string(required(object, "status", where), "status", where);
    if (status == "running") return ex::Status::running;
    if (status == "paused") return ex::Status::paused;
    throw ImportError(where, "\"status\" must be \"running\" or \"paused\", got " + quote(status));
}

struct Layer {
    std::uint32_t holdout = 0;
    std::size_t line = 0;
};

// An experiment line as read, with what the cross-line checks need.
struct Parsed {
    ex::ExperimentDef def;
    std::size_t line = 0;
};

Parsed parse_experiment(const json& object, const Catalogue& catalogue, const Location& where) {
    check_fields(object, {"id", "segments", "status", "salt", "variants", "layer", "layer_range", "holdout"},
                 where);
    Parsed out;
    out.line = where.line;
    ex::ExperimentDef& def = out.def;
    def.id = experiment_name(object, "id", "experiment", where);
    def.status = parse_status(object, where);
    def.salt = as_string(required(object, "salt", where), "salt", where);
    if (def.salt.empty() || def.salt.size() > ex::kMaxSaltSize)
        throw ImportError(where, "\"salt\" must be 1.." + std::to_string(ex::kMaxSaltSize) + " bytes");
    def.segments = parse_targets(object, catalogue, where);
    def.variants = parse_variants(required(object, "variants", where), where);
    if (!object.contains("layer")) {
        if (object.contains("layer_range"))
            throw ImportError(where, "\"layer_range\" needs a \"layer\"");
        if (object.contains("holdout"))
            def.holdout = basis_points(object["holdout"], "holdout", ex::kBuckets - 1, where);
        def.range_begin = def.holdout;
        return out;
    }
    if (object.contains("holdout"))
        throw ImportError(where, "an experiment in a layer takes the layer's holdout; "
                                 "set \"holdout\" on the layer line");
    def.layer = experiment_name(object, "layer", "layer", where);
    const json& range = required(object, "layer_range", where);
    if (!range.is_array() || range.size() != 2)
        throw ImportError(where, "\"layer_range\" must be [begin, end] in basis points");
    def.range_begin = basis_points(range[0], "layer_range[0]", ex::kBuckets, where);
    def.range_end = basis_points(range[1], "layer_range[1]", ex::kBuckets, where);
    if (def.range_begin >= def.range_end)
        throw ImportError(where, "\"layer_range\" " + range.dump() + " is empty");
    return out;
}

void add_layer(const json& object, std::map<std::string, Layer>& layers, const Location& where) {
    check_fields(object, {"layer", "holdout"}, where);
    std::string name = experiment_name(object, "layer", "layer", where);
    Layer layer{object.contains("holdout")
                    ? basis_points(object["holdout"], "holdout", ex::kBuckets - 1, where)
                    : 0,
                where.line};
    auto [it, inserted] = layers.emplace(name, layer);
    if (!inserted)
        throw ImportError(where, "duplicate layer " + quote(name) + " (first on line " +
                                     std::to_string(it->second.line) + ")");
}

// Gives each layered experiment its layer's holdout and rejects ranges that
// overlap another experiment's or the holdout.
void check_layers(std::vector<Parsed>& parsed, const std::map<std::string, Layer>& layers,
                  std::string_view file) {
    std::map<std::string, std::vector<const Parsed*>> members;
    for (Parsed& p : parsed) {
        if (p.def.layer.empty()) continue;
        Location where{file, p.line};
        auto layer = layers.find(p.def.layer);
        if (layer == layers.end())
            throw ImportError(where, "unknown layer " + quote(p.def.layer) +
                                         " (define it with a line {\"layer\": ..., \"holdout\": ...})");
        p.def.holdout = layer->second.holdout;
        if (p.def.range_begin < p.def.holdout)
            throw ImportError(where, "\"layer_range\" starts at " + std::to_string(p.def.range_begin) +
                                         ", inside layer " + quote(p.def.layer) + "'s holdout [0, " +
                                         std::to_string(p.def.holdout) + ")");
        for (const Parsed* other : members[p.def.layer])
            if (p.def.range_begin < other->def.range_end && other->def.range_begin < p.def.range_end)
                throw ImportError(where, "\"layer_range\" of " + quote(p.def.id) + " overlaps " +
                                             quote(other->def.id) + "'s (line " +
                                             std::to_string(other->line) + ") in layer " +
                                             quote(p.def.layer));
        members[p.def.layer].push_back(&p);
    }
}

}  // namespace

BlockContent VariantBlocks::parse(const json& object, const Catalogue& catalogue, const Location& where) {
    json plain = object;
    plain.erase("experiment");
    plain.erase("variant");
    BlockContent content = parse_block(plain, catalogue, where);
    const std::string& id = as_string(required(object, "experiment", where), "experiment", where);
    const std::string& name = as_string(required(object, "variant", where), "variant", where);
    const ex::ExperimentDef* def = nullptr;
    if (experiments_)
        for (const auto& e : *experiments_)
            if (e.id == id) def = &e;
    if (!def) throw ImportError(where, "unknown experiment " + quote(id) + " (not in --experiments)");
    bool known = std::any_of(def->variants.begin(), def->variants.end(),
                             [&](const ex::Variant& v) { return v.name == name; });
    if (!known) throw ImportError(where, "experiment " + quote(id) + " has no variant " + quote(name));
    content.variant = id + ":" + name;
    auto [it, inserted] = lines_.emplace(std::make_tuple(content.block, content.segment, content.variant), where.line);
    if (!inserted)
        throw ImportError(where, "duplicate content for block " + quote(content.block) + " and variant " +
                                     quote(content.variant) + " (first on line " + std::to_string(it->second) + ")");
    return content;
}

void VariantBlocks::check(std::string_view file, const Catalogue& catalogue) const {
    for (const auto& [key, line] : lines_) {
        const auto& [block, segment, variant] = key;
        if (!bases_.count({block, segment}))
            throw ImportError(Location{file, line},
                              "content for variant " + quote(variant) + " of block " + quote(block) +
                                  " needs the block's content for segment " +
                                  quote(catalogue.segments()[segment - 1].name) + " too");
    }
}

std::vector<ex::ExperimentDef> read_experiments(NdjsonReader& reader, const Catalogue& catalogue) {
    std::vector<Parsed> parsed;
    std::map<std::string, std::size_t> lines;
    std::map<std::string, Layer> layers;
    Record record;
    while (reader.next(record)) {
        if (!record.object.contains("id")) {
            add_layer(record.object, layers, reader.where());
            continue;
        }
        Parsed p = parse_experiment(record.object, catalogue, reader.where());
        auto [it, inserted] = lines.emplace(p.def.id, p.line);
        if (!inserted)
            throw ImportError(reader.where(), "duplicate experiment " + quote(p.def.id) +
                                                  " (first on line " + std::to_string(it->second) + ")");
        if (parsed.size() == ex::kMaxExperiments)
            throw ImportError(reader.where(), "too many experiments: at most " +
                                                  std::to_string(ex::kMaxExperiments));
        parsed.push_back(std::move(p));
    }
    check_layers(parsed, layers, reader.path());
    std::vector<ex::ExperimentDef> defs;
    for (Parsed& p : parsed) defs.push_back(std::move(p.def));
    std::sort(defs.begin(), defs.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return defs;
}

}  // namespace segsync
