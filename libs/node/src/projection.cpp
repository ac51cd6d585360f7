#include "helexa/node/projection.h"

#include <fmt/format.h>

#include "helexa/common/error_envelope.h"

namespace helexa::node {

using nlohmann::json;
using engine::EngineEvent;
using Kind = engine::EngineEvent::Kind;

std::string_view finish_reason_name(engine::FinishReason reason) {
    switch (reason) {
        case engine::FinishReason::kLength:
            return "length";
        case engine::FinishReason::kToolCalls:
            return "tool_calls";
        case engine::FinishReason::kStop:
        case engine::FinishReason::kCancelled:
        case engine::FinishReason::kError:
            return "stop";
    }
    return "stop";
}

json chat_usage_json(const engine::Usage& u) {
    return json{{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.prompt_tokens + u.completion_tokens},
                {"completion_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}},
                {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json responses_usage_json(const engine::Usage& u) {
    return json{{"input_tokens", u.prompt_tokens},
                {"output_tokens", u.completion_tokens},
                {"total_tokens", u.prompt_tokens + u.completion_tokens},
                {"input_tokens_details", {{"cached_tokens", u.cached_tokens}}},
                {"output_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}}};
}

// ---- chat ----

json ChatProjector::chunk(json delta, const json& finish_reason) const {
    return json{{"id", config_.id},
                {"object", "chat.completion.chunk"},
                {"created", config_.created},
                {"model", config_.model},
                {"choices",
                 json::array({{{"index", 0}, {"delta", std::move(delta)},
                               {"finish_reason", finish_reason}}})}};
}

std::vector<json> ChatProjector::start() {
    if (started_) {
        return {};
    }
    started_ = true;
    return {chunk({{"role", "assistant"}, {"content", ""}}, nullptr)};
}

std::vector<json> ChatProjector::close_wrapped() {
    if (!in_wrapped_reasoning_) {
        return {};
    }
    in_wrapped_reasoning_ = false;
    content_ += config_.markers.close;
    return {chunk({{"content", config_.markers.close}}, nullptr)};
}

std::vector<json> ChatProjector::on_event(const EngineEvent& event) {
    if (finished_) {
        return {};
    }
    std::vector<json> out = start();
    switch (event.kind) {
        case Kind::kStarted:
            break;
        case Kind::kTextDelta: {
            if (event.text.empty()) {
                break;
            }
            auto closing = close_wrapped();
            out.insert(out.end(), closing.begin(), closing.end());
            content_ += event.text;
            out.push_back(chunk({{"content", event.text}}, nullptr));
            break;
        }
        case Kind::kReasoningDelta: {
            if (event.text.empty()) {
                break;
            }
            switch (config_.reasoning) {
                case ReasoningDisplay::kHidden:
                    break;
                case ReasoningDisplay::kWrapped: {
                    std::string text = event.text;
                    if (!in_wrapped_reasoning_) {
                        in_wrapped_reasoning_ = true;
                        text = config_.markers.open + text;
                    }
                    content_ += text;
                    out.push_back(chunk({{"content", text}}, nullptr));
                    break;
                }
                case ReasoningDisplay::kField:
                    reasoning_ += event.text;
                    out.push_back(chunk(
                        {{"reasoning_content", event.text}, {"reasoning", event.text}}, nullptr));
                    break;
            }
            break;
        }
        case Kind::kToolCall: {
            if (!event.tool_call) {
                break;
            }
            auto closing = close_wrapped();
            out.insert(out.end(), closing.begin(), closing.end());
            const auto& tc = *event.tool_call;
            json call{{"index", tool_calls_.size()},
                      {"id", tc.id},
                      {"type", "function"},
                      {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}};
            json stored = call;
            stored.erase("index");
            tool_calls_.push_back(std::move(stored));
            out.push_back(chunk({{"tool_calls", json::array({call})}}, nullptr));
            break;
        }
        case Kind::kFinish: {
            auto closing = close_wrapped();
            out.insert(out.end(), closing.begin(), closing.end());
            finish_reason_ = std::string(finish_reason_name(event.finish_reason));
            if (!tool_calls_.empty() && finish_reason_ == "stop") {
                finish_reason_ = "tool_calls";
            }
            usage_ = event.usage;
            finished_ = true;
            out.push_back(chunk(json::object(), finish_reason_));
            json usage_chunk{{"id", config_.id},
                             {"object", "chat.completion.chunk"},
                             {"created", config_.created},
                             {"model", config_.model},
                             {"choices", json::array()},
                             {"usage", chat_usage_json(usage_)}};
            out.push_back(std::move(usage_chunk));
            break;
        }
        case Kind::kError:
            finished_ = true;
            usage_ = event.usage;
            error_ = event.error.value_or(Error(ErrorCode::kInternal, "engine error"));
            break;
    }
    return out;
}

json ChatProjector::completion() const {
    json message{{"role", "assistant"}};
    if (content_.empty() && !tool_calls_.empty()) {
        message["content"] = nullptr;
    } else {
        message["content"] = content_;
    }
    if (!tool_calls_.empty()) {
        message["tool_calls"] = tool_calls_;
    }
    if (config_.reasoning == ReasoningDisplay::kField && !reasoning_.empty()) {
        message["reasoning_content"] = reasoning_;
        message["reasoning"] = reasoning_;
    }
    return json{{"id", config_.id},
                {"object", "chat.completion"},
                {"created", config_.created},
                {"model", config_.model},
                {"choices", json::array({{{"index", 0},
                                          {"message", std::move(message)},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason_}}})},
                {"usage", chat_usage_json(usage_)}};
}

// ---- completions ----

json CompletionProjector::chunk(const std::string& text, const json& finish_reason) const {
    return json{{"id", id_},
                {"object", "text_completion"},
                {"created", created_},
                {"model", model_},
                {"choices", json::array({{{"text", text},
                                          {"index", 0},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason}}})}};
}

std::vector<json> CompletionProjector::on_event(const EngineEvent& event) {
    std::vector<json> out;
    if (finished_) {
        return out;
    }
    auto emit = [&](const std::string& text) {
        text_ += text;
        out.push_back(chunk(text, nullptr));
    };
    switch (event.kind) {
        case Kind::kStarted:
            break;
        case Kind::kReasoningDelta:
            if (!event.text.empty()) {
                emit(in_reasoning_ ? event.text : markers_.open + event.text);
                in_reasoning_ = true;
            }
            break;
        case Kind::kTextDelta:
        case Kind::kToolCall: {
            std::string text = event.kind == Kind::kTextDelta
                                   ? event.text
                                   : (event.tool_call ? event.tool_call->arguments : "");
            if (in_reasoning_) {
                in_reasoning_ = false;
                text = markers_.close + text;
            }
            if (!text.empty()) {
                emit(text);
            }
            break;
        }
        case Kind::kFinish:
            if (in_reasoning_) {
                in_reasoning_ = false;
                emit(markers_.close);
            }
            finished_ = true;
            usage_ = event.usage;
            finish_reason_ = std::string(finish_reason_name(event.finish_reason));
            out.push_back(chunk("", finish_reason_));
            out.push_back(json{{"id", id_},
                               {"object", "text_completion"},
                               {"created", created_},
                               {"model", model_},
                               {"choices", json::array()},
                               {"usage", chat_usage_json(usage_)}});
            break;
        case Kind::kError:
            finished_ = true;
            error_ = event.error.value_or(Error(ErrorCode::kInternal, "engine error"));
            break;
    }
    return out;
}

json CompletionProjector::completion() const {
    return json{{"id", id_},
                {"object", "text_completion"},
                {"created", created_},
                {"model", model_},
                {"choices", json::array({{{"text", text_},
                                          {"index", 0},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason_}}})},
                {"usage", chat_usage_json(usage_)}};
}

// ---- responses ----

SseEvent ResponsesProjector::make(std::string name, json data) {
    data["type"] = name;
    data["sequence_number"] = sequence_++;
    return SseEvent{std::move(name), std::move(data)};
}

std::string ResponsesProjector::next_item_id(std::string_view prefix) {
    // Derived from the response id so the whole response is traceable from one id.
    auto base = config_.id.rfind("resp_", 0) == 0 ? config_.id.substr(5) : config_.id;
    return fmt::format("{}_{}_{}", prefix, base, n_items_++);
}

json ResponsesProjector::shell(std::string_view status) const {
    json r{{"id", config_.id},
           {"object", "response"},
           {"created_at", config_.created_at},
           {"status", status},
           {"model", config_.model},
           {"output", json::array()},
           {"usage", nullptr},
           {"error", nullptr},
           {"incomplete_details", nullptr}};
    for (const auto& [k, v] : config_.echo.items()) {
        r[k] = v;
    }
    return r;
}

std::vector<SseEvent> ResponsesProjector::start() {
    if (started_) {
        return {};
    }
    started_ = true;
    std::vector<SseEvent> out;
    out.push_back(make("response.created", {{"response", shell("in_progress")}}));
    out.push_back(make("response.in_progress", {{"response", shell("in_progress")}}));
    return out;
}

void ResponsesProjector::open_message(std::vector<SseEvent>& out) {
    json item{{"id", next_item_id("msg")},
              {"type", "message"},
              {"role", "assistant"},
              {"status", "in_progress"},
              {"content", json::array()}};
    auto index = static_cast<int64_t>(output_.size());
    output_.push_back(item);
    open_ = Open::kMessage;
    open_text_.clear();
    out.push_back(make("response.output_item.added", {{"output_index", index}, {"item", item}}));
    out.push_back(make("response.content_part.added",
                       {{"item_id", item["id"]},
                        {"output_index", index},
                        {"content_index", 0},
                        {"part", {{"type", "output_text"}, {"text", ""}, {"annotations",
                                                                           json::array()}}}}));
}

void ResponsesProjector::close_open(std::vector<SseEvent>& out) {
    if (open_ == Open::kNone) {
        return;
    }
    auto index = static_cast<int64_t>(output_.size()) - 1;
    json& item = output_[static_cast<size_t>(index)];
    item["status"] = "completed";
    if (open_ == Open::kMessage) {
        json part{{"type", "output_text"}, {"text", open_text_}, {"annotations", json::array()}};
        out.push_back(make("response.output_text.done", {{"item_id", item["id"]},
                                                          {"output_index", index},
                                                          {"content_index", 0},
                                                          {"text", open_text_}}));
        out.push_back(make("response.content_part.done", {{"item_id", item["id"]},
                                                           {"output_index", index},
                                                           {"content_index", 0},
                                                           {"part", part}}));
        item["content"] = json::array({part});
    } else {
        json part{{"type", "reasoning_text"}, {"text", open_text_}};
        out.push_back(make("response.reasoning_text.done", {{"item_id", item["id"]},
                                                             {"output_index", index},
                                                             {"content_index", 0},
                                                             {"text", open_text_}}));
        item["content"] = json::array({part});
    }
    out.push_back(make("response.output_item.done", {{"output_index", index}, {"item", item}}));
    open_ = Open::kNone;
    open_text_.clear();
}

std::vector<SseEvent> ResponsesProjector::on_event(const EngineEvent& event) {
    if (finished_) {
        return {};
    }
    std::vector<SseEvent> out = start();
    switch (event.kind) {
        case Kind::kStarted:
            break;
        case Kind::kTextDelta: {
            if (event.text.empty()) {
                break;
            }
            if (open_ != Open::kMessage) {
                close_open(out);
                open_message(out);
            }
            open_text_ += event.text;
            auto index = static_cast<int64_t>(output_.size()) - 1;
            out.push_back(make("response.output_text.delta",
                               {{"item_id", output_.back()["id"]},
                                {"output_index", index},
                                {"content_index", 0},
                                {"delta", event.text}}));
            break;
        }
        case Kind::kReasoningDelta: {
            if (!config_.show_reasoning || event.text.empty()) {
                break;
            }
            if (open_ != Open::kReasoning) {
                close_open(out);
                json item{{"id", next_item_id("rs")},
                          {"type", "reasoning"},
                          {"status", "in_progress"},
                          {"summary", json::array()},
                          {"content", json::array()}};
                output_.push_back(item);
                open_ = Open::kReasoning;
                open_text_.clear();
                out.push_back(make("response.output_item.added",
                                   {{"output_index", output_.size() - 1}, {"item", item}}));
            }
            open_text_ += event.text;
            out.push_back(make("response.reasoning_text.delta",
                               {{"item_id", output_.back()["id"]},
                                {"output_index", output_.size() - 1},
                                {"content_index", 0},
                                {"delta", event.text}}));
            break;
        }
        case Kind::kToolCall: {
            if (!event.tool_call) {
                break;
            }
            close_open(out);
            const auto& tc = *event.tool_call;
            json item{{"id", next_item_id("fc")}, {"type", "function_call"},
                      {"status", "in_progress"}, {"call_id", tc.id},
                      {"name", tc.name},          {"arguments", ""}};
            auto index = static_cast<int64_t>(output_.size());
            out.push_back(make("response.output_item.added",
                               {{"output_index", index}, {"item", item}}));
            out.push_back(make("response.function_call_arguments.delta",
                               {{"item_id", item["id"]},
                                {"output_index", index},
                                {"delta", tc.arguments}}));
            out.push_back(make("response.function_call_arguments.done",
                               {{"item_id", item["id"]},
                                {"output_index", index},
                                {"arguments", tc.arguments}}));
            item["arguments"] = tc.arguments;
            item["status"] = "completed";
            output_.push_back(item);
            out.push_back(make("response.output_item.done",
                               {{"output_index", index}, {"item", item}}));
            break;
        }
        case Kind::kFinish: {
            close_open(out);
            bool has_visible = false;
            for (const auto& item : output_) {
                has_visible = has_visible || item["type"] != "reasoning";
            }
            if (!has_visible) {  // one message item per response, even an empty one
                open_message(out);
                close_open(out);
            }
            usage_ = event.usage;
            have_usage_ = true;
            finished_ = true;
            status_ = event.finish_reason == engine::FinishReason::kLength ? "incomplete"
                                                                           : "completed";
            out.push_back(make("response.completed", {{"response", response()}}));
            break;
        }
        case Kind::kError: {
            close_open(out);
            finished_ = true;
            status_ = "failed";
            error_ = event.error.value_or(Error(ErrorCode::kInternal, "engine error"));
            out.push_back(make("response.failed", {{"response", response()}}));
            break;
        }
    }
    return out;
}

json ResponsesProjector::response() const {
    json r = shell(status_);
    r["output"] = output_;
    if (have_usage_) {
        r["usage"] = responses_usage_json(usage_);
    }
    if (status_ == "incomplete") {
        r["incomplete_details"] = {{"reason", "max_output_tokens"}};
    }
    if (error_) {
        auto env = openai_envelope(*error_);
        r["error"] = {{"code", env.body["error"]["code"]}, {"message", env.body["error"]["message"]}};
    }
    std::string text;
    for (const auto& item : output_) {
        if (item["type"] == "message") {
            for (const auto& part : item["content"]) {
                text += part.value("text", "");
            }
        }
    }
    r["output_text"] = text;
    return r;
}

}  // namespace helexa::node
