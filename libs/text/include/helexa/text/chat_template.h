// A model's chat template, loaded the way HuggingFace does and rendered the way
// `tokenizer.apply_chat_template(..., tokenize=False)` does.
//
// Loading precedence (first found wins): `chat_template.jinja`, then `chat_template.json`
// ({"chat_template": ...}), then the `chat_template` field of `tokenizer_config.json` (a string,
// or a list of {name, template} where `tool_use` is used when tools are present, else
// `default`). bos/eos tokens come from tokenizer_config.json (string or AddedToken object).
//
// Render context: `messages`, `tools` (None when the request has none, as transformers passes),
// `add_generation_prompt`, `bos_token`, `eos_token`, and every key of chat_template_kwargs
// (e.g. `enable_thinking`). Tool-call `arguments` given as JSON strings are parsed to objects
// first (left as-is when they don't parse), because templates iterate them as mappings.
//
// Thread-safety: a loaded ChatTemplate is immutable; render() is const and safe to call
// concurrently. Load once per model and share it `const`.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/text/jinja.h"

namespace helexa::text {

struct ChatRenderContext {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    // nullopt (or JSON null) = no tools; the template then sees `tools` as None.
    std::optional<nlohmann::ordered_json> tools;
    bool add_generation_prompt = false;
    // Extra template variables; they override the defaults above on key collision, as
    // transformers' **kwargs do.
    nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();
};

class ChatTemplate {
public:
    // Reads the template and special tokens from a model directory. kNotFound-style errors are
    // reported as kConfig (no template found, unreadable files) or kTemplateRenderFailed
    // (template syntax errors), each naming the file.
    static Result<ChatTemplate> load(const std::filesystem::path& model_dir);

    // Builds from template sources directly: `templates` maps a name ("default", "tool_use")
    // to its source.
    static Result<ChatTemplate> from_sources(const std::map<std::string, std::string>& templates,
                                             std::optional<std::string> bos_token,
                                             std::optional<std::string> eos_token);

    // Renders a conversation; template errors are kTemplateRenderFailed.
    Result<std::string> render(const ChatRenderContext& ctx,
                               const jinja::RenderOptions& options = {}) const;

    const std::optional<std::string>& bos_token() const { return bos_token_; }
    const std::optional<std::string>& eos_token() const { return eos_token_; }
    // The source of the template used when tools are present (true) or absent (false).
    const std::string& source(bool with_tools) const;

private:
    struct Named {
        std::string source;
        jinja::Template compiled;
    };
    const Named* pick(bool with_tools) const;

    std::map<std::string, Named> templates_;
    std::optional<std::string> bos_token_;
    std::optional<std::string> eos_token_;
};

// Parses string-form tool_calls[].function.arguments (and tool_calls[].arguments) into JSON
// objects in every message; strings that don't parse as JSON are left unchanged.
nlohmann::ordered_json normalize_tool_call_arguments(nlohmann::ordered_json messages);

}  // namespace helexa::text
