// Jinja2 template engine for chat templates, rendering as HuggingFace transformers does
// (jinja2 with trim_blocks and lstrip_blocks, its `tojson`, `raise_exception` and
// `strftime_now` globals, loop controls and the `generation` tag).
//
// When to use: compile a model's chat template once at load (ChatTemplate does this), then
// render per request. For anything else that needs Jinja, use it directly.
//
// Thread-safety: a compiled Template is immutable; render() is const and may run concurrently
// from any number of threads. Each render builds its own values from the context.
//
// Limits: every render is bounded in output size, loop iterations and macro call depth, and
// parsing bounds nesting, so no template can hang or exhaust memory; exceeding a limit is an
// ordinary render error.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::text::jinja {

namespace detail {
struct Program;
struct TemplateAccess;
}

struct RenderOptions {
    int64_t max_output_bytes = 16 * 1024 * 1024;  // also caps any single string or list built
    int64_t max_loop_iterations = 1'000'000;      // summed over every loop of the render
    int32_t max_call_depth = 100;                 // nested macro / caller() calls
    // Local time for strftime_now(); tests inject a fixed time. Default: localtime(now).
    std::function<std::tm()> now;
};

class Template {
public:
    // Parses `source`. Syntax errors come back as kTemplateRenderFailed with
    // "line N: cause" messages.
    static Result<Template> compile(std::string_view source);

    // Renders with `context` (a JSON object: every key becomes a template variable, JSON null
    // becomes None, absent keys are undefined). Errors (undefined attribute access, type
    // errors, raise_exception(), limits) come back as kTemplateRenderFailed with the line.
    Result<std::string> render(const nlohmann::ordered_json& context,
                               const RenderOptions& options = {}) const;

private:
    friend struct detail::TemplateAccess;
    explicit Template(std::shared_ptr<const detail::Program> program)
        : program_(std::move(program)) {}

    std::shared_ptr<const detail::Program> program_;
};

}  // namespace helexa::text::jinja
