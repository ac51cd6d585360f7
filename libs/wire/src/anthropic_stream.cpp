// OpenAI chunk stream -> Anthropic SSE events. See the header for the contract.
#include "helexa/wire/anthropic_stream.h"

#include <algorithm>
#include <utility>

#include "helexa/wire/anthropic_response.h"
#include "internal/json_util.h"

namespace helexa::wire {
namespace {

using detail::member;
using nlohmann::json;

// A delta field that is text: a string (possibly empty) or absent.
std::string delta_text(const json& delta, const char* key) {
    if (auto text = detail::string_member(delta, key); text) {
        return *text;
    }
    return {};
}

}  // namespace

std::string format_sse(const SseEvent& event) {
    std::string out = "event: ";
    out += event.event;
    out += "\ndata: ";
    out += detail::safe_dump(event.data);
    out += "\n\n";
    return out;
}

AnthropicStreamTranslator::AnthropicStreamTranslator(AnthropicStreamOptions options)
    : options_(std::move(options)) {}

SseEvent AnthropicStreamTranslator::ping() {
    return {"ping", {{"type", "ping"}}};
}

std::vector<SseEvent> AnthropicStreamTranslator::start() {
    std::vector<SseEvent> out;
    if (!done_) {
        ensure_started(out, nullptr);
    }
    return out;
}

void AnthropicStreamTranslator::ensure_started(std::vector<SseEvent>& out,
                                               const json* first_chunk) {
    if (started_) {
        return;
    }
    started_ = true;
    if (options_.message_id.empty()) {
        std::string upstream_id;
        if (first_chunk != nullptr) {
            upstream_id = detail::string_member(*first_chunk, "id").value_or("");
        }
        options_.message_id = message_id_from_upstream(upstream_id);
    }
    json message = {{"id", options_.message_id},
                    {"type", "message"},
                    {"role", "assistant"},
                    {"model", options_.model},
                    {"content", json::array()},
                    {"stop_reason", nullptr},
                    {"stop_sequence", nullptr},
                    {"usage",
                     {{"input_tokens", options_.input_tokens_hint},
                      {"cache_creation_input_tokens", 0},
                      {"cache_read_input_tokens", 0},
                      {"output_tokens", 0}}}};
    out.push_back({"message_start", {{"type", "message_start"}, {"message", std::move(message)}}});
}

void AnthropicStreamTranslator::emit_delta(std::vector<SseEvent>& out, json delta) {
    out.push_back({"content_block_delta",
                   {{"type", "content_block_delta"},
                    {"index", open_index_},
                    {"delta", std::move(delta)}}});
}

void AnthropicStreamTranslator::close_block(std::vector<SseEvent>& out) {
    if (open_kind_ == BlockKind::kNone) {
        return;
    }
    if (open_kind_ == BlockKind::kThinking) {
        emit_delta(out, {{"type", "signature_delta"}, {"signature", kThinkingSignature}});
    }
    if (open_kind_ == BlockKind::kTool) {
        auto it = tools_.find(open_tool_);
        if (it != tools_.end()) {
            it->second.closed = true;
        }
        open_tool_ = -1;
    }
    out.push_back({"content_block_stop", {{"type", "content_block_stop"}, {"index", open_index_}}});
    open_kind_ = BlockKind::kNone;
    open_index_ = -1;
}

void AnthropicStreamTranslator::open_block(std::vector<SseEvent>& out, BlockKind kind,
                                           json content_block) {
    close_block(out);
    open_kind_ = kind;
    open_index_ = next_index_++;
    out.push_back({"content_block_start",
                   {{"type", "content_block_start"},
                    {"index", open_index_},
                    {"content_block", std::move(content_block)}}});
}

void AnthropicStreamTranslator::open_tool(std::vector<SseEvent>& out, int64_t upstream_index,
                                          ToolState& tool) {
    if (tool.id.empty()) {
        const std::string& message_id = options_.message_id;
        tool.id = "toolu_" + message_id.substr(std::min<size_t>(4, message_id.size())) +
                  "_" + std::to_string(upstream_index);
    }
    open_block(out, BlockKind::kTool,
               {{"type", "tool_use"}, {"id", tool.id}, {"name", tool.name},
                {"input", json::object()}});
    open_tool_ = upstream_index;
    tool.opened = true;
    tool.block_index = open_index_;
    any_tool_use_ = true;
    if (!tool.pending_arguments.empty()) {
        emit_delta(out, {{"type", "input_json_delta"}, {"partial_json", tool.pending_arguments}});
        tool.pending_arguments.clear();
    }
}

void AnthropicStreamTranslator::on_tool_delta(std::vector<SseEvent>& out, const json& call,
                                              size_t position, bool& carried) {
    if (!call.is_object()) {
        return;
    }
    int64_t index = detail::int_member(call, "index").value_or(static_cast<int64_t>(position));
    ToolState& tool = tools_[index];
    if (auto id = detail::string_member(call, "id"); id && !id->empty() && !tool.opened) {
        tool.id = *id;
    }
    std::string fragment;
    if (const json* function = member(call, "function"); function != nullptr) {
        if (auto name = detail::string_member(*function, "name"); name && !tool.opened) {
            tool.name += *name;
        }
        if (const json* arguments = member(*function, "arguments"); arguments != nullptr) {
            fragment = arguments->is_string() ? arguments->get<std::string>()
                                              : detail::safe_dump(*arguments);
        }
    }
    if (!fragment.empty()) {
        carried = true;
    }
    if (tool.closed) {
        if (!fragment.empty()) {
            ++dropped_fragments_;
        }
        return;
    }
    if (!tool.opened) {
        tool.pending_arguments += fragment;
        if (!tool.name.empty()) {
            open_tool(out, index, tool);
        }
        return;
    }
    if (!fragment.empty()) {
        // The open tool is always this one: opening another closes it, and closed is handled
        // above.
        emit_delta(out, {{"type", "input_json_delta"}, {"partial_json", fragment}});
    }
}

std::vector<SseEvent> AnthropicStreamTranslator::feed(const json& chunk) {
    std::vector<SseEvent> out;
    if (done_) {
        return out;
    }
    if (const json* error = member(chunk, "error"); error != nullptr) {
        std::string message = error->is_string()
                                  ? error->get<std::string>()
                                  : detail::string_member(*error, "message").value_or("");
        return fail(message.empty() ? "upstream error" : "upstream error: " + message);
    }
    ensure_started(out, &chunk);
    if (const json* usage = member(chunk, "usage"); usage != nullptr && usage->is_object()) {
        usage_ = *usage;
    }
    const json* choices = member(chunk, "choices");
    if (choices == nullptr || !choices->is_array() || choices->empty()) {
        return out;
    }
    const json& choice = (*choices)[0];
    bool carried = false;
    if (const json* delta = member(choice, "delta"); delta != nullptr && delta->is_object()) {
        std::string reasoning = delta_text(*delta, "reasoning_content");
        if (reasoning.empty()) {
            reasoning = delta_text(*delta, "reasoning");
        }
        if (!reasoning.empty()) {
            carried = true;
            if (options_.show_thinking) {
                if (open_kind_ != BlockKind::kThinking) {
                    open_block(out, BlockKind::kThinking,
                               {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
                }
                emit_delta(out, {{"type", "thinking_delta"}, {"thinking", reasoning}});
            }
        }
        std::string text = delta_text(*delta, "content");
        if (!text.empty()) {
            carried = true;
            if (open_kind_ != BlockKind::kText) {
                open_block(out, BlockKind::kText, {{"type", "text"}, {"text", ""}});
            }
            emit_delta(out, {{"type", "text_delta"}, {"text", text}});
        }
        const json* calls = member(*delta, "tool_calls");
        if (calls != nullptr && calls->is_array()) {
            for (size_t i = 0; i < calls->size(); ++i) {
                on_tool_delta(out, (*calls)[i], i, carried);
            }
        }
    }
    if (carried) {
        ++delta_count_;
    }
    if (auto finish = detail::string_member(choice, "finish_reason"); finish) {
        finish_reason_ = *finish;
        matched_stop_ = detail::string_member(choice, "stop_reason");
    }
    return out;
}

std::vector<SseEvent> AnthropicStreamTranslator::finish() {
    std::vector<SseEvent> out;
    if (done_) {
        return out;
    }
    ensure_started(out, nullptr);
    // Calls whose name never arrived still reach the client rather than vanishing.
    for (auto& [index, tool] : tools_) {
        if (!tool.opened) {
            open_tool(out, index, tool);
        }
    }
    close_block(out);

    std::string stop_reason = map_stop_reason(finish_reason_);
    json stop_sequence = nullptr;
    if (finish_reason_ == "stop" && matched_stop_ &&
        std::find(options_.stop_sequences.begin(), options_.stop_sequences.end(),
                  *matched_stop_) != options_.stop_sequences.end()) {
        stop_reason = "stop_sequence";
        stop_sequence = *matched_stop_;
    }
    if (any_tool_use_ && stop_reason == "end_turn") {
        stop_reason = "tool_use";
    }
    json usage;
    if (usage_) {
        usage = anthropic_usage(*usage_);
        if (!detail::int_member(*usage_, "completion_tokens")) {
            usage["output_tokens"] = delta_count_;
        }
    } else {
        usage = {{"input_tokens", options_.input_tokens_hint},
                 {"cache_creation_input_tokens", 0},
                 {"cache_read_input_tokens", 0},
                 {"output_tokens", delta_count_}};
    }
    out.push_back({"message_delta",
                   {{"type", "message_delta"},
                    {"delta", {{"stop_reason", stop_reason}, {"stop_sequence", stop_sequence}}},
                    {"usage", std::move(usage)}}});
    out.push_back({"message_stop", {{"type", "message_stop"}}});
    done_ = true;
    return out;
}

std::vector<SseEvent> AnthropicStreamTranslator::fail(const std::string& message,
                                                      const std::string& type) {
    std::vector<SseEvent> out;
    if (done_) {
        return out;
    }
    done_ = true;
    out.push_back(
        {"error", {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}});
    return out;
}

}  // namespace helexa::wire
