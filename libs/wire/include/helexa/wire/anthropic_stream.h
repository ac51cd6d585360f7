// Streaming OpenAI chat chunks -> Anthropic Messages SSE events, as a pure state machine.
//
// Use in cortex's streaming /v1/messages path: split the upstream body into SSE events, parse
// each `data:` payload (skip `[DONE]`), feed() the JSON, write every returned event with
// format_sse(); call finish() on [DONE], on upstream EOF and on truncation (it is idempotent);
// call fail() when the upstream dies mid-stream; send ping() while waiting (cold loads).
//
// Event order: message_start -> (content_block_start, content_block_delta*, content_block_stop)*
// -> message_delta (stop_reason, usage) -> message_stop. Blocks are strictly sequential (never
// two open at once), with indices 0,1,2... in emission order:
//   * text: text_delta;
//   * thinking (only when show_thinking; from delta.reasoning_content or delta.reasoning):
//     thinking_delta, then one signature_delta just before its content_block_stop;
//   * tool_use (from delta.tool_calls by upstream index): the block opens once the call's name
//     is known (arguments that arrive earlier are held back and sent right after the start);
//     arguments stream as input_json_delta{partial_json}. A new tool index closes the previous
//     block, as OpenAI/vLLM/neuron stream calls one after another; a fragment for a call whose
//     block is already closed cannot be delivered in order and is counted in
//     dropped_fragments() for the caller to log.
// output_tokens = the upstream usage's completion_tokens, else the number of chunks that carried
// text, reasoning or tool arguments (engine-exact for neuron's one-chunk-per-token streams).
// An upstream chunk carrying `error` ends the stream with an Anthropic `error` event, as fail().
//
// Thread-safety: one instance per stream, used from one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace helexa::wire {

struct SseEvent {
    std::string event;    // the `event:` name
    nlohmann::json data;  // the `data:` payload
};

// "event: <name>\ndata: <json>\n\n".
std::string format_sse(const SseEvent& event);

struct AnthropicStreamOptions {
    std::string model;       // echoed in message_start (the name the client asked for)
    std::string message_id;  // "msg_..."; when empty, derived from the first chunk's id
    bool show_thinking = false;
    int64_t input_tokens_hint = 0;  // message_start usage.input_tokens before usage is known
    std::vector<std::string> stop_sequences;
};

class AnthropicStreamTranslator {
public:
    explicit AnthropicStreamTranslator(AnthropicStreamOptions options);

    // message_start, if not sent yet (lets the caller open the stream before the upstream
    // answers, e.g. to interleave pings during a cold load). feed() calls it implicitly.
    std::vector<SseEvent> start();

    // One parsed upstream chunk (a `chat.completion.chunk` object).
    std::vector<SseEvent> feed(const nlohmann::json& chunk);

    // Closes the open block and emits message_delta + message_stop. Idempotent: later calls
    // (and feed()/fail() after it) return nothing.
    std::vector<SseEvent> finish();

    // Upstream failed mid-stream: an `error` event ({type:"error",error:{type,message}}) and the
    // stream is over (no message_stop follows, as with Anthropic's own API).
    std::vector<SseEvent> fail(const std::string& message, const std::string& type = "api_error");

    // A keep-alive `ping` event; valid at any point.
    static SseEvent ping();

    bool done() const { return done_; }
    bool saw_finish_reason() const { return finish_reason_.has_value(); }
    int64_t delta_count() const { return delta_count_; }
    int64_t dropped_fragments() const { return dropped_fragments_; }
    // The last `usage` object the upstream sent, if any.
    const std::optional<nlohmann::json>& upstream_usage() const { return usage_; }

private:
    enum class BlockKind { kNone, kText, kThinking, kTool };

    struct ToolState {
        std::string id;
        std::string name;
        std::string pending_arguments;  // held until the block opens
        bool opened = false;
        bool closed = false;
        int64_t block_index = -1;
    };

    void ensure_started(std::vector<SseEvent>& out, const nlohmann::json* first_chunk);
    void close_block(std::vector<SseEvent>& out);
    void open_block(std::vector<SseEvent>& out, BlockKind kind, nlohmann::json content_block);
    void open_tool(std::vector<SseEvent>& out, int64_t upstream_index, ToolState& tool);
    void on_tool_delta(std::vector<SseEvent>& out, const nlohmann::json& call, size_t position,
                       bool& carried);
    void emit_delta(std::vector<SseEvent>& out, nlohmann::json delta);

    AnthropicStreamOptions options_;
    bool started_ = false;
    bool done_ = false;
    BlockKind open_kind_ = BlockKind::kNone;
    int64_t open_index_ = -1;
    int64_t open_tool_ = -1;  // upstream index of the open tool block
    int64_t next_index_ = 0;
    std::map<int64_t, ToolState> tools_;  // by upstream tool_calls index
    bool any_tool_use_ = false;
    std::optional<std::string> finish_reason_;
    std::optional<std::string> matched_stop_;
    std::optional<nlohmann::json> usage_;
    int64_t delta_count_ = 0;
    int64_t dropped_fragments_ = 0;
};

}  // namespace helexa::wire
