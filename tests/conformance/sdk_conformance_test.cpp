// Conformance with the official SDKs (issue 6 "Tests"): cortex on 127.0.0.1:0 in front of a
// scripted in-process mock neuron, driven by `node tests/conformance/sdk_conformance.mjs` with
// the `openai` and `@anthropic-ai/sdk` npm clients. The script prints what the SDKs parsed; this
// test asserts exact texts, tool names and arguments, stop reasons and the mock's usage numbers.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "helexa/gateway/server.h"
#include "mock_neuron.h"

namespace helexa::gateway {
namespace {

using testing::json;
using testing::MockNeuron;
using testing::Script;
namespace fs = std::filesystem;

constexpr const char* kModel = "conf-model";
constexpr const char* kText = "Hello from the mock neuron.";
const std::vector<std::string> kWords = {"Hello", " from", " the", " stream", "."};
const json kToolArgs = {{"city", "Paris"}, {"unit", "celsius"}};

json usage_json(int prompt, int completion) {
    return {{"prompt_tokens", prompt},
            {"completion_tokens", completion},
            {"total_tokens", prompt + completion}};
}

json chunk_json(json delta, json finish = nullptr) {
    return {{"id", "chatcmpl-conf"},
            {"object", "chat.completion.chunk"},
            {"created", 1700000000},
            {"model", kModel},
            {"choices", {{{"index", 0}, {"delta", std::move(delta)},
                          {"finish_reason", std::move(finish)}}}}};
}

// SSE body for a list of chunk objects plus a trailing usage chunk and [DONE], cut into 9-byte
// pieces so event boundaries fall mid-line on the way through cortex.
std::vector<std::string> sse_pieces(const std::vector<json>& chunks, const json& usage) {
    std::string all;
    for (const auto& c : chunks) {
        all += "data: " + c.dump() + "\n\n";
    }
    json tail = {{"id", "chatcmpl-conf"}, {"object", "chat.completion.chunk"},
                 {"created", 1700000000}, {"model", kModel},
                 {"choices", json::array()}, {"usage", usage}};
    all += "data: " + tail.dump() + "\n\ndata: [DONE]\n\n";
    std::vector<std::string> out;
    for (size_t i = 0; i < all.size(); i += 9) {
        out.push_back(all.substr(i, 9));
    }
    return out;
}

Script sse(std::vector<std::string> pieces) {
    Script s;
    s.headers = net::Headers{{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}};
    s.chunks = std::move(pieces);
    return s;
}

Script json_reply(const json& message, const char* finish, const json& usage) {
    Script s;
    s.chunks = {json{{"id", "chatcmpl-conf"},
                     {"object", "chat.completion"},
                     {"created", 1700000000},
                     {"model", kModel},
                     {"choices", {{{"index", 0}, {"message", message},
                                   {"finish_reason", finish}}}},
                     {"usage", usage}}
                    .dump()};
    return s;
}

// What the mock neuron answers, chosen by the (translated) chat request: streaming or not, with
// tools or without. Both SDK surfaces arrive here as OpenAI chat requests.
Script respond(const json& body) {
    const bool stream = body.value("stream", false);
    const bool tools = body.contains("tools");
    if (!tools && !stream) {
        return json_reply({{"role", "assistant"}, {"content", kText}}, "stop", usage_json(11, 7));
    }
    if (!tools) {
        std::vector<json> chunks;
        for (size_t i = 0; i < kWords.size(); ++i) {
            chunks.push_back(chunk_json(i == 0 ? json{{"role", "assistant"}, {"content", kWords[i]}}
                                               : json{{"content", kWords[i]}}));
        }
        chunks.push_back(chunk_json(json::object(), "stop"));
        return sse(sse_pieces(chunks, usage_json(12, 5)));
    }
    const json call_head = {{"index", 0},
                            {"id", "call_c0ffee_0"},
                            {"type", "function"},
                            {"function", {{"name", "get_weather"}, {"arguments", ""}}}};
    if (!stream) {
        json call = call_head;
        call.erase("index");
        call["function"]["arguments"] = kToolArgs.dump();
        return json_reply({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}},
                          "tool_calls", usage_json(20, 9));
    }
    // The arguments arrive in three fragments, split inside a key and inside a value.
    std::vector<json> chunks{chunk_json({{"role", "assistant"}, {"content", nullptr},
                                         {"tool_calls", {call_head}}})};
    for (const char* frag : {R"({"ci)", R"(ty":"Paris","unit":"cel)", R"(sius"})"}) {
        chunks.push_back(chunk_json(
            {{"tool_calls", {{{"index", 0}, {"function", {{"arguments", frag}}}}}}}));
    }
    chunks.push_back(chunk_json(json::object(), "tool_calls"));
    return sse(sse_pieces(chunks, usage_json(21, 8)));
}

struct ProcessResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return q + "'";
}

ProcessResult run_node(const std::string& script, const std::string& base_url) {
    const fs::path err_file =
        fs::path(::testing::TempDir()) / ("sdk-conformance-" + std::to_string(::getpid()) + ".err");
    const std::string cmd = shell_quote(HELEXA_NODE_EXECUTABLE) + " " + shell_quote(script) + " " +
                            shell_quote(base_url) + " " + shell_quote(kModel) + " 2>" +
                            shell_quote(err_file.string());
    ProcessResult result;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
        result.err = "popen failed";
        return result;
    }
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        result.out.append(buf.data(), n);
    }
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    std::stringstream ss;
    ss << in.rdbuf();
    result.err = ss.str();
    std::error_code ec;
    fs::remove(err_file, ec);
    return result;
}

TEST(SdkConformance, OpenAiAndAnthropicClientsAgainstCortex) {
    const std::string node = HELEXA_NODE_EXECUTABLE;
    if (node.empty()) {
        GTEST_SKIP() << "node not found at configure time";
    }
    const fs::path root = HELEXA_SOURCE_DIR;
    for (const char* pkg : {"openai", "@anthropic-ai/sdk"}) {
        if (!fs::exists(root / "node_modules" / pkg / "package.json")) {
            GTEST_SKIP() << "npm package " << pkg << " missing (run scripts/bootstrap)";
        }
    }

    MockNeuron neuron;
    neuron.set_models(json::array({{{"id", kModel},
                                    {"status", "loaded"},
                                    {"capabilities", {"text"}},
                                    {"tool_call", true},
                                    {"limit", {{"context", 32768}, {"output", 4096}}}}}));
    neuron.set_responder(respond);

    CortexOptions options;
    options.config.gateway.listen = "127.0.0.1:0";
    options.config.gateway.metrics_listen = "127.0.0.1:0";
    options.config.gateway.poll_interval_secs = 3600;
    options.config.gateway.state_dir =
        (fs::path(::testing::TempDir()) / ("cortex-conf-" + std::to_string(::getpid()))).string();
    options.config.neurons.push_back({"node-a", neuron.endpoint()});
    options.catalogue = Catalogue{};
    CortexServer cortex;
    auto started = cortex.start(std::move(options));
    ASSERT_TRUE(started) << started.error().message();

    const std::string base = "http://127.0.0.1:" + std::to_string(cortex.port());
    const auto run = run_node((root / "tests/conformance/sdk_conformance.mjs").string(), base);
    ASSERT_EQ(run.exit_code, 0) << "stderr:\n" << run.err << "\nstdout:\n" << run.out;
    const json r = json::parse(run.out, nullptr, false);
    ASSERT_TRUE(r.is_object()) << run.out;

    // ---- OpenAI SDK ----
    const json& chat = r["openai_chat"];
    EXPECT_EQ(chat["text"], kText);
    EXPECT_EQ(chat["finish_reason"], "stop");
    EXPECT_EQ(chat["usage"]["prompt_tokens"], 11);
    EXPECT_EQ(chat["usage"]["completion_tokens"], 7);

    const json& chat_stream = r["openai_chat_stream"];
    EXPECT_EQ(chat_stream["text"], "Hello from the stream.");
    EXPECT_EQ(chat_stream["finish_reason"], "stop");
    EXPECT_EQ(chat_stream["usage"]["prompt_tokens"], 12);
    EXPECT_EQ(chat_stream["usage"]["completion_tokens"], 5);
    EXPECT_EQ(chat_stream["chunks"], 7);  // 5 words + finish + usage

    const json& tool = r["openai_tool"];
    EXPECT_EQ(tool["name"], "get_weather");
    EXPECT_EQ(tool["id"], "call_c0ffee_0");
    EXPECT_EQ(tool["arguments"], kToolArgs);
    EXPECT_EQ(tool["finish_reason"], "tool_calls");
    EXPECT_EQ(tool["usage"]["completion_tokens"], 9);

    const json& tool_stream = r["openai_tool_stream"];
    EXPECT_EQ(tool_stream["count"], 1);
    EXPECT_EQ(tool_stream["name"], "get_weather");
    EXPECT_EQ(tool_stream["id"], "call_c0ffee_0");
    EXPECT_EQ(tool_stream["arguments"], kToolArgs);
    EXPECT_EQ(tool_stream["finish_reason"], "tool_calls");
    EXPECT_EQ(tool_stream["usage"]["prompt_tokens"], 21);

    const json& openai_bad = r["openai_bad_model"];
    EXPECT_EQ(openai_bad["threw"], true);
    EXPECT_EQ(openai_bad["status"], 404);
    EXPECT_EQ(openai_bad["code"], "model_not_found");
    EXPECT_EQ(openai_bad["class"], "NotFoundError");

    // ---- Anthropic SDK ----
    const json& msg = r["anthropic_message"];
    EXPECT_EQ(msg["type"], "message");
    EXPECT_EQ(msg["role"], "assistant");
    EXPECT_EQ(msg["content"], json::array({{{"type", "text"}, {"text", kText}}}));
    EXPECT_EQ(msg["stop_reason"], "end_turn");
    EXPECT_EQ(msg["usage"]["input_tokens"], 11);
    EXPECT_EQ(msg["usage"]["output_tokens"], 7);

    const json& ms = r["anthropic_stream"];
    EXPECT_EQ(ms["text"], "Hello from the stream.");
    EXPECT_EQ(ms["stop_reason"], "end_turn");
    EXPECT_EQ(ms["output_tokens"], 5);
    ASSERT_TRUE(ms["events"].is_array() && !ms["events"].empty());
    EXPECT_EQ(ms["events"].front(), "message_start");
    EXPECT_EQ(ms["events"].back(), "message_stop");
    std::vector<std::string> kinds;
    for (const auto& e : ms["events"]) {
        if (e != "ping" && (kinds.empty() || kinds.back() != e)) {
            kinds.push_back(e);
        }
    }
    EXPECT_EQ(kinds, (std::vector<std::string>{"message_start", "content_block_start",
                                               "content_block_delta", "content_block_stop",
                                               "message_delta", "message_stop"}));

    const json& mt = r["anthropic_tool"];
    ASSERT_TRUE(mt["tool"].is_object()) << mt.dump();
    EXPECT_EQ(mt["tool"]["name"], "get_weather");
    EXPECT_EQ(mt["tool"]["input"], kToolArgs);
    EXPECT_EQ(mt["tool"]["id_present"], true);
    EXPECT_EQ(mt["stop_reason"], "tool_use");
    EXPECT_EQ(mt["usage"]["input_tokens"], 20);
    EXPECT_EQ(mt["usage"]["output_tokens"], 9);

    const json& mts = r["anthropic_tool_stream"];
    ASSERT_TRUE(mts["tool"].is_object()) << mts.dump();
    EXPECT_EQ(mts["tool"]["name"], "get_weather");
    EXPECT_EQ(mts["tool"]["input"], kToolArgs);  // accumulated by the SDK's MessageStream
    EXPECT_EQ(mts["manual_input"], kToolArgs);   // and by hand from partial_json
    EXPECT_GE(mts["input_json_deltas"], 1);
    EXPECT_EQ(mts["stop_reason"], "tool_use");
    EXPECT_EQ(mts["output_tokens"], 8);

    // count_tokens: the model is loaded, so the neuron's tokenizer count (the mock's 4242) wins.
    EXPECT_EQ(r["anthropic_count_tokens"]["input_tokens"], 4242);
    EXPECT_GE(neuron.tokenize_hits.load(), 1);

    const json& bad = r["anthropic_bad_model"];
    EXPECT_EQ(bad["threw"], true);
    EXPECT_EQ(bad["status"], 404);
    EXPECT_EQ(bad["class"], "NotFoundError");
    EXPECT_EQ(bad["body"]["type"], "error");
    EXPECT_EQ(bad["body"]["error"]["type"], "not_found_error");
    EXPECT_TRUE(bad["body"]["error"]["message"].is_string());

    // 4 OpenAI + 4 Anthropic inference calls reached the neuron; the bad-model ones did not.
    EXPECT_EQ(neuron.inference_hits.load(), 8);
}

}  // namespace
}  // namespace helexa::gateway
