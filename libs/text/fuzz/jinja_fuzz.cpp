// libFuzzer target: arbitrary bytes as a template, compiled and rendered against a fixed
// chat-like context with tight limits. Any crash, sanitizer report, hang or unbounded
// allocation is a bug; syntax and render errors are expected outcomes.
//
//   cmake -S . -B build/fuzz-jinja -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
//       -DHELEXA_FUZZ=ON -DHELEXA_BENCHMARKS=OFF && ninja -C build/fuzz-jinja jinja_fuzz
//   build/fuzz-jinja/libs/text/jinja_fuzz -max_total_time=20 -max_len=4096
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/text/jinja.h"

namespace {

const nlohmann::ordered_json& context() {
    static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi <think>x</think> y"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [1, 2]}}}]},
            {"role": "tool", "content": "42"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
        "n": 3, "f": 1.5, "none": null, "list": [3, 1, 2], "dict": {"z": 1, "a": 2}
    })");
    return kContext;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view source(reinterpret_cast<const char*>(data), size);
    auto tmpl = helexa::text::jinja::Template::compile(source);
    if (!tmpl) {
        return 0;
    }
    helexa::text::jinja::RenderOptions opts;
    opts.max_output_bytes = 1 << 20;
    opts.max_loop_iterations = 20000;
    opts.max_call_depth = 20;
    opts.now = [] { return std::tm{}; };
    (void)tmpl->render(context(), opts);
    return 0;
}
