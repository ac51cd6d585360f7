#include "helexa/text/chat_template.h"

#include <fstream>
#include <sstream>

#include "jinja/template_access.h"

namespace helexa::text {
namespace {

Result<std::string> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return fail(ErrorCode::kConfig, "cannot read " + path.string());
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Result<nlohmann::ordered_json> read_json(const std::filesystem::path& path) {
    auto text = read_file(path);
    if (!text) {
        return fail(text.error());
    }
    auto j = nlohmann::ordered_json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
        return fail(ErrorCode::kConfig, "invalid JSON in " + path.string());
    }
    return j;
}

// A special token in tokenizer_config.json: a string or {"content": ...} (AddedToken).
std::optional<std::string> token_string(const nlohmann::ordered_json& cfg, const char* key) {
    auto it = cfg.find(key);
    if (it == cfg.end()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_object()) {
        auto c = it->find("content");
        if (c != it->end() && c->is_string()) {
            return c->get<std::string>();
        }
    }
    return std::nullopt;
}

Status add_templates(const nlohmann::ordered_json& field, std::map<std::string, std::string>& out,
                     const std::string& where) {
    if (field.is_string()) {
        out["default"] = field.get<std::string>();
        return ok();
    }
    if (field.is_array()) {
        for (const auto& t : field) {
            if (!t.is_object() || !t.contains("name") || !t.contains("template") ||
                !t["name"].is_string() || !t["template"].is_string()) {
                return fail(ErrorCode::kConfig,
                            where + ": chat_template list entries need string name and template");
            }
            out[t["name"].get<std::string>()] = t["template"].get<std::string>();
        }
        return ok();
    }
    return fail(ErrorCode::kConfig, where + ": chat_template must be a string or a list");
}

// Same rule as the public JSON version, applied to interpreter values.
void normalize_tool_call_arguments(jinja::detail::Value& messages) {
    using jinja::detail::Value;
    if (!messages.is_list()) {
        return;
    }
    auto fix = [](const Value& holder) {
        if (!holder.is_dict()) {
            return;
        }
        Value* args = holder.as_dict()->find("arguments");
        if (args == nullptr || !args->is_string()) {
            return;
        }
        auto parsed = nlohmann::ordered_json::parse(args->as_string(), nullptr, false);
        if (!parsed.is_discarded()) {
            *args = Value::from_json(parsed);
        }
    };
    for (const auto& m : messages.as_list()->items) {
        if (!m.is_dict()) {
            continue;
        }
        const Value* calls = m.as_dict()->find("tool_calls");
        if (calls == nullptr || !calls->is_list()) {
            continue;
        }
        for (const auto& call : calls->as_list()->items) {
            if (!call.is_dict()) {
                continue;
            }
            if (const Value* fn = call.as_dict()->find("function")) {
                fix(*fn);
            }
            fix(call);
        }
    }
}

}  // namespace

nlohmann::ordered_json normalize_tool_call_arguments(nlohmann::ordered_json messages) {
    if (!messages.is_array()) {
        return messages;
    }
    auto fix = [](nlohmann::ordered_json& holder) {
        auto it = holder.find("arguments");
        if (it == holder.end() || !it->is_string()) {
            return;
        }
        auto parsed = nlohmann::ordered_json::parse(it->get_ref<const std::string&>(), nullptr,
                                                    false);
        if (!parsed.is_discarded()) {
            *it = std::move(parsed);
        }
    };
    for (auto& m : messages) {
        if (!m.is_object()) {
            continue;
        }
        auto calls = m.find("tool_calls");
        if (calls == m.end() || !calls->is_array()) {
            continue;
        }
        for (auto& call : *calls) {
            if (!call.is_object()) {
                continue;
            }
            auto fn = call.find("function");
            if (fn != call.end() && fn->is_object()) {
                fix(*fn);
            }
            fix(call);
        }
    }
    return messages;
}

Result<ChatTemplate> ChatTemplate::from_sources(
    const std::map<std::string, std::string>& templates, std::optional<std::string> bos_token,
    std::optional<std::string> eos_token) {
    if (templates.empty()) {
        return fail(ErrorCode::kConfig, "no chat template given");
    }
    ChatTemplate t;
    for (const auto& [name, source] : templates) {
        auto compiled = jinja::Template::compile(source);
        if (!compiled) {
            return fail(std::move(compiled.error()).with_context("chat template '" + name + "'"));
        }
        t.templates_.emplace(name, Named{source, std::move(*compiled)});
    }
    t.bos_token_ = std::move(bos_token);
    t.eos_token_ = std::move(eos_token);
    return t;
}

Result<ChatTemplate> ChatTemplate::load(const std::filesystem::path& dir) {
    std::map<std::string, std::string> templates;
    nlohmann::ordered_json config = nlohmann::ordered_json::object();
    const auto config_path = dir / "tokenizer_config.json";
    if (std::filesystem::exists(config_path)) {
        auto cfg = read_json(config_path);
        if (!cfg) {
            return fail(cfg.error());
        }
        config = std::move(*cfg);
    }
    const auto jinja_path = dir / "chat_template.jinja";
    const auto json_path = dir / "chat_template.json";
    std::string where;
    if (std::filesystem::exists(jinja_path)) {
        auto src = read_file(jinja_path);
        if (!src) {
            return fail(src.error());
        }
        templates["default"] = std::move(*src);
        where = jinja_path.string();
    } else if (std::filesystem::exists(json_path)) {
        auto j = read_json(json_path);
        if (!j) {
            return fail(j.error());
        }
        where = json_path.string();
        if (!j->is_object() || !j->contains("chat_template")) {
            return fail(ErrorCode::kConfig, where + ": missing chat_template");
        }
        HELEXA_TRY_STATUS(add_templates((*j)["chat_template"], templates, where));
    } else if (config.is_object() && config.contains("chat_template") &&
               !config["chat_template"].is_null()) {
        where = config_path.string();
        HELEXA_TRY_STATUS(add_templates(config["chat_template"], templates, where));
    } else {
        return fail(ErrorCode::kConfig, "no chat template in " + dir.string());
    }
    auto t = from_sources(templates, token_string(config, "bos_token"),
                          token_string(config, "eos_token"));
    if (!t) {
        return fail(std::move(t.error()).with_context(where));
    }
    return t;
}

const ChatTemplate::Named* ChatTemplate::pick(bool with_tools) const {
    if (with_tools) {
        auto it = templates_.find("tool_use");
        if (it != templates_.end()) {
            return &it->second;
        }
    }
    auto it = templates_.find("default");
    if (it != templates_.end()) {
        return &it->second;
    }
    if (templates_.size() == 1) {
        return &templates_.begin()->second;
    }
    return nullptr;
}

const std::string& ChatTemplate::source(bool with_tools) const {
    static const std::string kEmpty;
    const Named* n = pick(with_tools);
    return n != nullptr ? n->source : kEmpty;
}

Result<std::string> ChatTemplate::render(const ChatRenderContext& ctx,
                                         const jinja::RenderOptions& options) const {
    bool has_tools = ctx.tools.has_value() && !ctx.tools->is_null();
    const Named* t = pick(has_tools);
    if (t == nullptr) {
        return fail(ErrorCode::kTemplateRenderFailed,
                    "no 'default' chat template (and no 'tool_use' one for this request)");
    }
    // Built straight into interpreter values: copying the conversation through another JSON
    // document first cost more than rendering it.
    using jinja::detail::Value;
    auto globals = std::make_shared<jinja::detail::Dict>();
    try {
        Value messages = Value::from_json(ctx.messages);
        normalize_tool_call_arguments(messages);
        globals->set("messages", std::move(messages));
        globals->set("tools", has_tools ? Value::from_json(*ctx.tools) : Value::none());
        globals->set("documents", Value::none());
        globals->set("add_generation_prompt", Value(ctx.add_generation_prompt));
        if (bos_token_) {
            globals->set("bos_token", Value(*bos_token_));
        }
        if (eos_token_) {
            globals->set("eos_token", Value(*eos_token_));
        }
        if (ctx.chat_template_kwargs.is_object()) {
            for (auto it = ctx.chat_template_kwargs.begin(); it != ctx.chat_template_kwargs.end();
                 ++it) {
                globals->set(it.key(), Value::from_json(it.value()));
            }
        }
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::kTemplateRenderFailed, "template render error: out of memory");
    } catch (const jinja::detail::TemplateError& e) {
        return fail(ErrorCode::kTemplateRenderFailed, "template render error: " + e.message);
    }
    return jinja::detail::TemplateAccess::render(t->compiled, std::move(globals), options);
}

}  // namespace helexa::text
