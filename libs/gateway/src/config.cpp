// cortex.toml / models.toml parsing over toml++. Every error names the file and the dotted key.
#include "helexa/gateway/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

extern char** environ;  // NOLINT: POSIX

namespace helexa::gateway {
namespace {

// Reads typed values from one table, remembering which keys were consumed so that the rest can
// be reported as unknown (warnings, not errors: old and new configs must interoperate).
class TableReader {
public:
    TableReader(const toml::table& table, std::string origin, std::string prefix,
                std::vector<std::string>* warnings)
        : table_(table), origin_(std::move(origin)), prefix_(std::move(prefix)),
          warnings_(warnings) {}

    ~TableReader() {
        if (warnings_ == nullptr) {
            return;
        }
        for (const auto& [key, node] : table_) {
            if (!seen_.contains(std::string(key.str()))) {
                warnings_->push_back(fmt::format("{}: unknown key '{}' ignored", origin_,
                                                 path(key.str())));
            }
        }
    }
    TableReader(const TableReader&) = delete;
    TableReader& operator=(const TableReader&) = delete;

    std::string path(std::string_view key) const {
        return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
    }

    Error error(std::string_view key, std::string_view what) const {
        return Error(ErrorCode::kConfig, fmt::format("{}: {}: {}", origin_, path(key), what));
    }

    const toml::node* get(std::string_view key) {
        seen_.insert(std::string(key));
        return table_.get(key);
    }

    Result<std::optional<std::string>> string(std::string_view key) {
        const toml::node* node = get(key);
        if (node == nullptr) {
            return std::optional<std::string>{};
        }
        if (const auto* s = node->as_string()) {
            return std::optional<std::string>{s->get()};
        }
        return tl::unexpected(error(key, "expected a string"));
    }

    Result<std::optional<int64_t>> integer(std::string_view key, int64_t min_value) {
        const toml::node* node = get(key);
        if (node == nullptr) {
            return std::optional<int64_t>{};
        }
        if (const auto* i = node->as_integer()) {
            if (i->get() < min_value) {
                return tl::unexpected(error(key, fmt::format("must be >= {}", min_value)));
            }
            return std::optional<int64_t>{i->get()};
        }
        return tl::unexpected(error(key, "expected an integer"));
    }

    Result<std::optional<double>> number(std::string_view key) {
        const toml::node* node = get(key);
        if (node == nullptr) {
            return std::optional<double>{};
        }
        if (const auto* f = node->as_floating_point()) {
            return std::optional<double>{f->get()};
        }
        if (const auto* i = node->as_integer()) {
            return std::optional<double>{static_cast<double>(i->get())};
        }
        return tl::unexpected(error(key, "expected a number"));
    }

    Result<std::optional<bool>> boolean(std::string_view key) {
        const toml::node* node = get(key);
        if (node == nullptr) {
            return std::optional<bool>{};
        }
        if (const auto* b = node->as_boolean()) {
            return std::optional<bool>{b->get()};
        }
        return tl::unexpected(error(key, "expected true or false"));
    }

    Result<std::vector<std::string>> string_array(std::string_view key) {
        std::vector<std::string> out;
        const toml::node* node = get(key);
        if (node == nullptr) {
            return out;
        }
        const auto* arr = node->as_array();
        if (arr == nullptr) {
            return tl::unexpected(error(key, "expected an array of strings"));
        }
        for (const auto& item : *arr) {
            const auto* s = item.as_string();
            if (s == nullptr) {
                return tl::unexpected(error(key, "expected an array of strings"));
            }
            out.push_back(s->get());
        }
        return out;
    }

    Result<const toml::table*> table(std::string_view key) {
        const toml::node* node = get(key);
        if (node == nullptr) {
            return nullptr;
        }
        if (const auto* t = node->as_table()) {
            return t;
        }
        return tl::unexpected(error(key, "expected a table"));
    }

    Result<const toml::array*> array_of_tables(std::string_view key) {
        const toml::node* node = get(key);
        if (node == nullptr) {
            return nullptr;
        }
        const auto* arr = node->as_array();
        if (arr == nullptr || !arr->is_array_of_tables()) {
            if (arr != nullptr && arr->empty()) {
                return arr;
            }
            return tl::unexpected(error(key, fmt::format("expected [[{}]] entries", path(key))));
        }
        return arr;
    }

    const std::string& origin() const { return origin_; }

private:
    const toml::table& table_;
    std::string origin_;
    std::string prefix_;
    std::vector<std::string>* warnings_;
    std::set<std::string> seen_;
};

#define HELEXA_CFG_ASSIGN(target, expr)                             \
    do {                                                            \
        auto helexa_cfg_value_ = (expr);                            \
        if (!helexa_cfg_value_) {                                   \
            return tl::unexpected(std::move(helexa_cfg_value_).error()); \
        }                                                           \
        if (helexa_cfg_value_->has_value()) {                       \
            target = **helexa_cfg_value_;                           \
        }                                                           \
    } while (false)

Result<toml::table> parse_toml(std::string_view text, std::string_view origin) {
    try {
        return toml::parse(text, std::string(origin));
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        return fail(ErrorCode::kConfig, fmt::format("{}:{}:{}: invalid TOML: {}", origin,
                                                    where.line, where.column, e.description()));
    }
}

std::string strip_trailing_slash(std::string s) {
    while (!s.empty() && s.back() == '/') {
        s.pop_back();
    }
    return s;
}

// Applies CORTEX_SECTION__KEY=value overrides to scalar keys. The value's TOML type follows the
// key's current type when present (integer, boolean), else it is stored as a string.
Status apply_env(toml::table& root, const std::map<std::string, std::string>& env,
                 std::string_view origin) {
    constexpr std::string_view kPrefix = "CORTEX_";
    for (const auto& [name, value] : env) {
        if (name.rfind(kPrefix, 0) != 0 || name.size() == kPrefix.size()) {
            continue;
        }
        std::vector<std::string> parts;
        std::string rest = name.substr(kPrefix.size());
        size_t pos = 0;
        while (true) {
            size_t next = rest.find("__", pos);
            std::string part = rest.substr(pos, next == std::string::npos ? std::string::npos
                                                                          : next - pos);
            std::transform(part.begin(), part.end(), part.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            parts.push_back(part);
            if (next == std::string::npos) {
                break;
            }
            pos = next + 2;
        }
        toml::table* table = &root;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            toml::node* child = table->get(parts[i]);
            if (child == nullptr) {
                table->insert(parts[i], toml::table{});
                child = table->get(parts[i]);
            }
            table = child->as_table();
            if (table == nullptr) {
                break;
            }
        }
        if (table == nullptr) {
            continue;
        }
        const std::string& leaf = parts.back();
        const toml::node* existing = table->get(leaf);
        const bool want_int =
            (existing != nullptr && existing->is_integer()) ||
            leaf.ends_with("_secs") || leaf.ends_with("_cycles") || leaf.ends_with("_bytes");
        const bool want_bool = (existing != nullptr && existing->is_boolean()) ||
                               leaf == "require_auth";
        if (want_int) {
            char* end = nullptr;
            long long parsed = std::strtoll(value.c_str(), &end, 10);
            if (value.empty() || end == nullptr || *end != '\0') {
                return fail(ErrorCode::kConfig,
                            fmt::format("{}: environment {}: expected an integer", origin, name));
            }
            table->insert_or_assign(leaf, static_cast<int64_t>(parsed));
        } else if (want_bool) {
            std::string lower = value;
            std::transform(lower.begin(), lower.end(), lower.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (lower == "true" || lower == "1" || lower == "yes") {
                table->insert_or_assign(leaf, true);
            } else if (lower == "false" || lower == "0" || lower == "no") {
                table->insert_or_assign(leaf, false);
            } else {
                return fail(ErrorCode::kConfig,
                            fmt::format("{}: environment {}: expected true or false", origin,
                                        name));
            }
        } else {
            table->insert_or_assign(leaf, value);
        }
    }
    return ok();
}

Result<CapWindow> parse_window(const toml::node* node, const std::string& origin,
                               const std::string& prefix) {
    CapWindow window;
    if (node == nullptr) {
        return window;
    }
    const auto* table = node->as_table();
    if (table == nullptr) {
        return fail(ErrorCode::kConfig,
                    fmt::format("{}: {}.window: expected {{ kind = \"balance\" }} or "
                                "{{ kind = \"rolling\", seconds = N }}",
                                origin, prefix));
    }
    TableReader r(*table, origin, prefix + ".window", nullptr);
    std::string kind = "balance";
    HELEXA_CFG_ASSIGN(kind, r.string("kind"));
    std::optional<int64_t> seconds;
    HELEXA_CFG_ASSIGN(seconds, r.integer("seconds", 1));
    if (kind == "balance") {
        window.kind = CapWindow::Kind::kBalance;
    } else if (kind == "rolling") {
        if (!seconds) {
            return tl::unexpected(r.error("seconds", "required for a rolling window"));
        }
        window.kind = CapWindow::Kind::kRolling;
        window.seconds = *seconds;
    } else {
        return tl::unexpected(r.error("kind", "expected \"balance\" or \"rolling\""));
    }
    return window;
}

Result<EntitlementsConfig> parse_entitlements(const toml::table& table, const std::string& origin,
                                              std::vector<std::string>* warnings) {
    EntitlementsConfig out;
    TableReader r(table, origin, "entitlements", warnings);
    HELEXA_CFG_ASSIGN(out.require_auth, r.boolean("require_auth"));
    auto keys = r.array_of_tables("keys");
    if (!keys) {
        return tl::unexpected(keys.error());
    }
    std::set<std::string> seen_keys;
    std::set<std::string> seen_ids;
    if (*keys != nullptr) {
        size_t index = 0;
        for (const auto& node : **keys) {
            const std::string prefix = fmt::format("entitlements.keys[{}]", index++);
            TableReader k(*node.as_table(), origin, prefix, warnings);
            KeyConfig key;
            std::optional<std::string> value;
            HELEXA_CFG_ASSIGN(value, k.string("key"));
            if (!value || value->empty()) {
                return tl::unexpected(k.error("key", "required and must not be empty"));
            }
            key.key = *value;
            value.reset();
            HELEXA_CFG_ASSIGN(value, k.string("account_id"));
            if (!value || value->empty()) {
                return tl::unexpected(k.error("account_id", "required and must not be empty"));
            }
            key.account_id = *value;
            value.reset();
            HELEXA_CFG_ASSIGN(value, k.string("key_id"));
            key.key_id = (value && !value->empty()) ? *value : derive_key_id(key.key);
            HELEXA_CFG_ASSIGN(key.hard_cap, k.integer("hard_cap", 0));
            auto window = parse_window(k.get("window"), origin, prefix);
            if (!window) {
                return tl::unexpected(window.error());
            }
            key.window = *window;
            if (!seen_keys.insert(key.key).second) {
                return tl::unexpected(k.error("key", "duplicate key"));
            }
            if (!seen_ids.insert(key.key_id).second) {
                return tl::unexpected(k.error("key_id", "duplicate key_id " + key.key_id));
            }
            out.keys.push_back(std::move(key));
        }
    }
    return out;
}

Result<std::vector<NeuronConfig>> parse_neurons(TableReader& root, std::string_view section,
                                                std::vector<std::string>* warnings) {
    std::vector<NeuronConfig> out;
    auto arr = root.array_of_tables(section);
    if (!arr) {
        return tl::unexpected(arr.error());
    }
    if (*arr == nullptr) {
        return out;
    }
    size_t index = 0;
    for (const auto& node : **arr) {
        const std::string prefix = fmt::format("{}[{}]", section, index++);
        TableReader n(*node.as_table(), root.origin(), prefix, warnings);
        NeuronConfig neuron;
        std::optional<std::string> value;
        HELEXA_CFG_ASSIGN(value, n.string("name"));
        if (!value || value->empty()) {
            return tl::unexpected(n.error("name", "required and must not be empty"));
        }
        neuron.name = *value;
        value.reset();
        HELEXA_CFG_ASSIGN(value, n.string("endpoint"));
        if (!value || value->empty()) {
            return tl::unexpected(n.error("endpoint", "required and must not be empty"));
        }
        if (value->rfind("http://", 0) != 0 && value->rfind("https://", 0) != 0) {
            return tl::unexpected(n.error("endpoint", "expected an http:// or https:// URL"));
        }
        neuron.endpoint = strip_trailing_slash(*value);
        out.push_back(std::move(neuron));
    }
    return out;
}

}  // namespace

std::string_view to_string(EvictionStrategy strategy) {
    switch (strategy) {
        case EvictionStrategy::kLru:
            return "lru";
        case EvictionStrategy::kPriority:
            return "priority";
    }
    return "lru";
}

std::string derive_key_id(std::string_view key) {
    uint64_t hash = 14695981039346656037ULL;
    for (unsigned char c : key) {
        hash ^= c;
        hash *= 1099511628211ULL;
    }
    return fmt::format("k-{:016x}", hash);
}

std::map<std::string, std::string> environment_overrides() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        if (entry.rfind("CORTEX_", 0) != 0) {
            continue;
        }
        size_t eq = entry.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        out.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return out;
}

Result<CortexConfig> parse_cortex_config(std::string_view toml_text, std::string_view origin,
                                         const std::map<std::string, std::string>& env) {
    auto parsed = parse_toml(toml_text, origin);
    if (!parsed) {
        return tl::unexpected(parsed.error());
    }
    toml::table root_table = std::move(*parsed);
    HELEXA_TRY_STATUS(apply_env(root_table, env, origin));

    CortexConfig cfg;
    const std::string org(origin);
    {
        TableReader root(root_table, org, "", &cfg.warnings);
        HELEXA_CFG_ASSIGN(cfg.models_config, root.string("models_config"));

        auto gateway = root.table("gateway");
        if (!gateway) {
            return tl::unexpected(gateway.error());
        }
        if (*gateway != nullptr) {
            TableReader g(**gateway, org, "gateway", &cfg.warnings);
            auto& gw = cfg.gateway;
            HELEXA_CFG_ASSIGN(gw.listen, g.string("listen"));
            HELEXA_CFG_ASSIGN(gw.metrics_listen, g.string("metrics_listen"));
            HELEXA_CFG_ASSIGN(gw.poll_interval_secs, g.integer("poll_interval_secs", 1));
            HELEXA_CFG_ASSIGN(gw.state_dir, g.string("state_dir"));
            std::optional<std::string> default_model;
            HELEXA_CFG_ASSIGN(default_model, g.string("default_model"));
            if (default_model && !default_model->empty()) {
                gw.default_model = default_model;
            }
            HELEXA_CFG_ASSIGN(gw.cold_load_timeout_secs, g.integer("cold_load_timeout_secs", 1));
            HELEXA_CFG_ASSIGN(gw.max_request_body_bytes, g.integer("max_request_body_bytes", 1024));
            // Accepted here too, for operators who nest it under [gateway].
            HELEXA_CFG_ASSIGN(cfg.models_config, g.string("models_config"));
            if (gw.listen.empty()) {
                return tl::unexpected(g.error("listen", "must not be empty"));
            }
        }

        auto eviction = root.table("eviction");
        if (!eviction) {
            return tl::unexpected(eviction.error());
        }
        if (*eviction != nullptr) {
            TableReader e(**eviction, org, "eviction", &cfg.warnings);
            std::optional<std::string> strategy;
            HELEXA_CFG_ASSIGN(strategy, e.string("strategy"));
            if (strategy) {
                if (*strategy == "lru") {
                    cfg.eviction.strategy = EvictionStrategy::kLru;
                } else if (*strategy == "priority") {
                    cfg.eviction.strategy = EvictionStrategy::kPriority;
                } else {
                    return tl::unexpected(
                        e.error("strategy", "expected \"lru\" or \"priority\", got \"" +
                                                *strategy + "\""));
                }
            }
            HELEXA_CFG_ASSIGN(cfg.eviction.defrag_after_cycles,
                              e.integer("defrag_after_cycles", 0));
        }

        for (std::string_view section : {"neurons", "nodes"}) {
            auto neurons = parse_neurons(root, section, &cfg.warnings);
            if (!neurons) {
                return tl::unexpected(neurons.error());
            }
            for (auto& n : *neurons) {
                cfg.neurons.push_back(std::move(n));
            }
        }
        std::set<std::string> names;
        for (const auto& n : cfg.neurons) {
            if (!names.insert(n.name).second) {
                return fail(ErrorCode::kConfig,
                            fmt::format("{}: neurons: duplicate neuron name '{}'", org, n.name));
            }
        }

        auto entitlements = root.table("entitlements");
        if (!entitlements) {
            return tl::unexpected(entitlements.error());
        }
        if (*entitlements != nullptr) {
            auto parsed_ent = parse_entitlements(**entitlements, org, &cfg.warnings);
            if (!parsed_ent) {
                return tl::unexpected(parsed_ent.error());
            }
            cfg.entitlements = std::move(*parsed_ent);
        }
    }
    return cfg;
}

namespace {
Result<std::string> read_file(const std::string& path, bool* missing) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (missing != nullptr) {
            *missing = true;
        }
        return fail(ErrorCode::kConfig, fmt::format("{}: cannot open file", path));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        return fail(ErrorCode::kConfig, fmt::format("{}: read error", path));
    }
    return ss.str();
}
}  // namespace

Result<CortexConfig> load_cortex_config(const std::string& path) {
    auto text = read_file(path, nullptr);
    if (!text) {
        return tl::unexpected(text.error());
    }
    return parse_cortex_config(*text, path, environment_overrides());
}

Result<Catalogue> parse_catalogue(std::string_view toml_text, std::string_view origin) {
    auto parsed = parse_toml(toml_text, origin);
    if (!parsed) {
        return tl::unexpected(parsed.error());
    }
    const std::string org(origin);
    Catalogue cat;
    TableReader root(*parsed, org, "", nullptr);
    auto models = root.array_of_tables("models");
    if (!models) {
        return tl::unexpected(models.error());
    }
    std::set<std::string> ids;
    if (*models != nullptr) {
        int64_t index = 0;
        for (const auto& node : **models) {
            const std::string prefix = fmt::format("models[{}]", index);
            TableReader m(*node.as_table(), org, prefix, nullptr);
            ModelProfile p;
            p.position = index++;
            std::optional<std::string> id;
            HELEXA_CFG_ASSIGN(id, m.string("id"));
            if (!id || id->empty()) {
                return tl::unexpected(m.error("id", "required and must not be empty"));
            }
            p.id = *id;
            HELEXA_CFG_ASSIGN(p.harness, m.string("harness"));
            HELEXA_CFG_ASSIGN(p.quant, m.string("quant"));
            HELEXA_CFG_ASSIGN(p.vram_mb, m.integer("vram_mb", 0));
            HELEXA_CFG_ASSIGN(p.min_devices, m.integer("min_devices", 0));
            HELEXA_CFG_ASSIGN(p.min_device_vram_mb, m.integer("min_device_vram_mb", 0));
            auto pinned = m.string_array("pinned_on");
            if (!pinned) {
                return tl::unexpected(pinned.error());
            }
            p.pinned_on = std::move(*pinned);
            std::optional<std::string> source;
            HELEXA_CFG_ASSIGN(source, m.string("source"));
            if (source && !source->empty()) {
                p.source = source;
            }
            auto cost = m.table("cost");
            if (!cost) {
                return tl::unexpected(cost.error());
            }
            if (*cost != nullptr) {
                TableReader c(**cost, org, prefix + ".cost", nullptr);
                ModelCost mc;
                HELEXA_CFG_ASSIGN(mc.input, c.number("input"));
                HELEXA_CFG_ASSIGN(mc.output, c.number("output"));
                HELEXA_CFG_ASSIGN(mc.cache_read, c.number("cache_read"));
                HELEXA_CFG_ASSIGN(mc.cache_write, c.number("cache_write"));
                p.cost = mc;
            }
            // `limit` is accepted and ignored: neurons advertise the real limit (#67).
            (void)m.get("limit");
            if (!ids.insert(p.id).second) {
                return tl::unexpected(m.error("id", "duplicate model id " + p.id));
            }
            cat.models.push_back(std::move(p));
        }
    }
    auto aliases = root.table("aliases");
    if (!aliases) {
        return tl::unexpected(aliases.error());
    }
    if (*aliases != nullptr) {
        for (const auto& [key, value] : **aliases) {
            const auto* target = value.as_string();
            if (target == nullptr || target->get().empty()) {
                return fail(ErrorCode::kConfig,
                            fmt::format("{}: aliases.\"{}\": expected a model id string", org,
                                        key.str()));
            }
            cat.aliases.emplace(std::string(key.str()), target->get());
        }
    }
    return cat;
}

Result<Catalogue> load_catalogue(const std::string& path, bool* missing) {
    bool was_missing = false;
    auto text = read_file(path, &was_missing);
    if (missing != nullptr) {
        *missing = was_missing;
    }
    if (!text) {
        if (was_missing) {
            return Catalogue{};
        }
        return tl::unexpected(text.error());
    }
    return parse_catalogue(*text, path);
}

bool ModelProfile::is_pinned_on(std::string_view neuron) const {
    return std::find(pinned_on.begin(), pinned_on.end(), neuron) != pinned_on.end();
}

bool ModelProfile::is_feasible_on(std::string_view neuron,
                                  const std::vector<DeviceInfo>& devices) const {
    if (!pinned_on.empty() && !is_pinned_on(neuron)) {
        return false;
    }
    if (static_cast<int64_t>(devices.size()) < min_devices) {
        return false;
    }
    if (min_device_vram_mb) {
        auto big_enough = std::count_if(devices.begin(), devices.end(), [&](const DeviceInfo& d) {
            return d.vram_total_mb >= *min_device_vram_mb;
        });
        if (big_enough < min_devices) {
            return false;
        }
    }
    return true;
}

std::string ModelProfile::qualified_id() const {
    if (source && !source->empty()) {
        return *source + ":" + id;
    }
    return id;
}

const ModelProfile* Catalogue::find(std::string_view id) const {
    for (const auto& p : models) {
        if (p.id == id) {
            return &p;
        }
    }
    for (const auto& p : models) {
        if (p.source && p.qualified_id() == id) {
            return &p;
        }
    }
    return nullptr;
}

std::string Catalogue::resolve_alias(std::string_view id) const {
    auto it = aliases.find(id);
    return it == aliases.end() ? std::string(id) : it->second;
}

}  // namespace helexa::gateway
