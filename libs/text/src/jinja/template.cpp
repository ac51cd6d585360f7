// Public entry points. The interpreter reports errors by throwing detail::TemplateError (the
// evaluator is deeply recursive and nearly every node can fail; threading Result through each
// one would double its size). The exception never leaves this file: compile() and render()
// catch it, and std::bad_alloc, and return a Result like every other library call.
#include <new>

#include "helexa/text/jinja.h"
#include "jinja/interpreter.h"
#include "jinja/parser.h"
#include "jinja/template_access.h"

namespace helexa::text::jinja {
namespace {

Error template_error(const char* what, const detail::TemplateError& e) {
    std::string msg = std::string(what);
    if (e.line > 0) {
        msg += " at line " + std::to_string(e.line);
    }
    msg += ": " + e.message;
    return Error(ErrorCode::kTemplateRenderFailed, std::move(msg));
}

std::tm local_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    return tm;
}

}  // namespace

Result<Template> Template::compile(std::string_view source) {
    try {
        std::shared_ptr<const detail::Program> program = detail::parse(source);
        return Template(std::move(program));
    } catch (const detail::TemplateError& e) {
        return fail(template_error("template syntax error", e));
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::kTemplateRenderFailed, "template syntax error: out of memory");
    }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context,
                                     const RenderOptions& options) const {
    if (!context.is_object() && !context.is_null()) {
        return fail(ErrorCode::kTemplateRenderFailed, "template context must be a JSON object");
    }
    auto globals = std::make_shared<detail::Dict>();
    try {
        if (context.is_object()) {
            globals->items.reserve(context.size());
            for (auto it = context.begin(); it != context.end(); ++it) {
                globals->items.emplace_back(it.key(), detail::Value::from_json(it.value()));
            }
        }
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::kTemplateRenderFailed, "template render error: out of memory");
    } catch (const jinja::detail::TemplateError& e) {
        return fail(ErrorCode::kTemplateRenderFailed, "template render error: " + e.message);
    }
    return detail::TemplateAccess::render(*this, std::move(globals), options);
}

namespace detail {

Result<std::string> TemplateAccess::render(const Template& t, DictPtr globals,
                                           const RenderOptions& options) {
    RenderLimits limits;
    limits.max_output_bytes = options.max_output_bytes;
    limits.max_loop_iterations = options.max_loop_iterations;
    limits.max_call_depth = options.max_call_depth;
    try {
        Interpreter interp(limits, options.now ? options.now : local_now);
        return interp.render(*t.program_, std::move(globals));
    } catch (const TemplateError& e) {
        return fail(template_error("template render error", e));
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::kTemplateRenderFailed, "template render error: out of memory");
    }
}

}  // namespace detail
}  // namespace helexa::text::jinja
