// Projections of the engine's event stream (started, text delta, reasoning delta, tool call,
// finish with usage, error) onto the wire: OpenAI chat chunks and the complete chat response,
// OpenAI text completions, and the Responses API event family and response object.
//
// Chat stream: role chunk, content deltas, tool_calls deltas (one chunk per call), finish chunk,
// then a trailing usage chunk (choices: [], usage with completion_tokens_details.reasoning_tokens
// and prompt_tokens_details.cached_tokens); the caller writes `data: [DONE]`.
// Reasoning display: hidden (dropped), wrapped (x-include-thinking: re-wrapped into content with
// its literal markers, the close marker emitted before the next non-reasoning output or the
// finish), or field (`reasoning_content` and `reasoning` delta fields).
// The non-streaming responses are built by the same state machines (D14), so both paths agree.
//
// Use: one projector per request; feed every EngineEvent in order.
// Thread-safety: a projector is a plain single-threaded state machine; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/error.h"
#include "helexa/engine/serving.h"

namespace helexa::node {

enum class ReasoningDisplay { kHidden, kWrapped, kField };

struct ReasoningMarkers {
    std::string open = "<think>";
    std::string close = "</think>";
};

// "stop" | "length" | "tool_calls" (cancelled and error map to "stop").
std::string_view finish_reason_name(engine::FinishReason reason);

// {prompt_tokens, completion_tokens, total_tokens, completion_tokens_details{reasoning_tokens},
//  prompt_tokens_details{cached_tokens}}
nlohmann::json chat_usage_json(const engine::Usage& usage);
// {input_tokens, output_tokens, total_tokens, input_tokens_details{cached_tokens},
//  output_tokens_details{reasoning_tokens}}
nlohmann::json responses_usage_json(const engine::Usage& usage);

struct ChatProjectionConfig {
    std::string id;  // "chatcmpl-<hex>"
    std::string model;
    int64_t created = 0;
    ReasoningDisplay reasoning = ReasoningDisplay::kHidden;
    ReasoningMarkers markers;
};

class ChatProjector {
public:
    explicit ChatProjector(ChatProjectionConfig config) : config_(std::move(config)) {}

    // The role chunk (only the first call returns it).
    std::vector<nlohmann::json> start();
    // Chunks for one event. kFinish yields the finish chunk then the usage chunk; kError yields
    // nothing (the caller sends the error) and marks the projector failed.
    std::vector<nlohmann::json> on_event(const engine::EngineEvent& event);

    bool finished() const { return finished_; }
    const std::optional<Error>& error() const { return error_; }
    // The complete `chat.completion` object from everything fed so far.
    nlohmann::json completion() const;

private:
    nlohmann::json chunk(nlohmann::json delta, const nlohmann::json& finish_reason) const;
    std::vector<nlohmann::json> close_wrapped();

    ChatProjectionConfig config_;
    bool started_ = false;
    bool finished_ = false;
    bool in_wrapped_reasoning_ = false;
    std::string content_;
    std::string reasoning_;
    nlohmann::json tool_calls_ = nlohmann::json::array();
    std::string finish_reason_ = "stop";
    engine::Usage usage_;
    std::optional<Error> error_;
};

// /v1/completions: `text_completion` chunks and object. Reasoning is kept in the text, wrapped in
// its markers (a raw completion has no other channel for it).
class CompletionProjector {
public:
    CompletionProjector(std::string id, std::string model, int64_t created,
                        ReasoningMarkers markers = {})
        : id_(std::move(id)), model_(std::move(model)), created_(created),
          markers_(std::move(markers)) {}

    std::vector<nlohmann::json> on_event(const engine::EngineEvent& event);
    bool finished() const { return finished_; }
    const std::optional<Error>& error() const { return error_; }
    nlohmann::json completion() const;

private:
    nlohmann::json chunk(const std::string& text, const nlohmann::json& finish_reason) const;

    std::string id_;
    std::string model_;
    int64_t created_;
    ReasoningMarkers markers_;
    bool in_reasoning_ = false;
    bool finished_ = false;
    std::string text_;
    std::string finish_reason_ = "stop";
    engine::Usage usage_;
    std::optional<Error> error_;
};

// One Responses SSE event: `event: <name>` and `data: <json>` (data.type == name).
struct SseEvent {
    std::string name;
    nlohmann::json data;
};

struct ResponsesProjectionConfig {
    std::string id;  // "resp_<hex>"
    std::string model;
    int64_t created_at = 0;
    bool show_reasoning = false;  // a `reasoning` output item with reasoning_text events
    // Request fields echoed in the response object (instructions, tools, temperature, ...).
    nlohmann::json echo = nlohmann::json::object();
};

class ResponsesProjector {
public:
    explicit ResponsesProjector(ResponsesProjectionConfig config) : config_(std::move(config)) {}

    // response.created + response.in_progress (only the first call returns them; on_event
    // synthesises them when the producer skipped kStarted).
    std::vector<SseEvent> start();
    std::vector<SseEvent> on_event(const engine::EngineEvent& event);

    bool finished() const { return finished_; }
    const std::optional<Error>& error() const { return error_; }
    // The response object as it stands (complete after kFinish).
    nlohmann::json response() const;

private:
    enum class Open { kNone, kMessage, kReasoning };
    SseEvent make(std::string name, nlohmann::json data);
    nlohmann::json shell(std::string_view status) const;
    void close_open(std::vector<SseEvent>& out);
    void open_message(std::vector<SseEvent>& out);
    std::string next_item_id(std::string_view prefix);

    ResponsesProjectionConfig config_;
    bool started_ = false;
    bool finished_ = false;
    int64_t sequence_ = 0;
    int64_t n_items_ = 0;
    Open open_ = Open::kNone;
    std::string open_text_;
    nlohmann::json output_ = nlohmann::json::array();
    std::string status_ = "in_progress";
    engine::Usage usage_;
    bool have_usage_ = false;
    std::optional<Error> error_;
};

}  // namespace helexa::node
