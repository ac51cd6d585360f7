#include "helexa/gateway/metering.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "helexa/common/error_envelope.h"

namespace helexa::gateway {
namespace {

std::optional<int64_t> positive_int(const nlohmann::json& body, const char* key) {
    auto it = body.find(key);
    if (it == body.end() || !it->is_number_integer()) {
        return std::nullopt;
    }
    int64_t v = it->get<int64_t>();
    return v > 0 ? std::optional<int64_t>(v) : std::nullopt;
}

int64_t ceil_tokens(uint64_t bytes) {
    return static_cast<int64_t>((bytes + kBytesPerToken - 1) / kBytesPerToken);
}

// Bytes of text in a content value: a string, or an array of parts carrying "text".
uint64_t content_bytes(const nlohmann::json& content, int depth = 0) {
    if (depth > 8) {
        return 0;
    }
    if (content.is_string()) {
        return content.get_ref<const std::string&>().size();
    }
    uint64_t total = 0;
    if (content.is_array()) {
        for (const auto& part : content) {
            total += content_bytes(part, depth + 1);
        }
    } else if (content.is_object()) {
        if (auto t = content.find("text"); t != content.end() && t->is_string()) {
            total += t->get_ref<const std::string&>().size();
        }
        if (auto c = content.find("content"); c != content.end()) {
            total += content_bytes(*c, depth + 1);
        }
    }
    return total;
}

// The tokens of a completions prompt given as ids ([ids] or [[ids]]), else nullopt.
std::optional<int64_t> token_id_count(const nlohmann::json& prompt) {
    const nlohmann::json& ids =
        prompt.is_array() && prompt.size() == 1 && prompt[0].is_array() ? prompt[0] : prompt;
    if (!ids.is_array() || ids.empty() ||
        !std::all_of(ids.begin(), ids.end(),
                     [](const nlohmann::json& v) { return v.is_number_integer(); })) {
        return std::nullopt;
    }
    return static_cast<int64_t>(ids.size());
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

int64_t max_output_tokens(const nlohmann::json& body, std::optional<int64_t> advertised_output) {
    if (body.is_object()) {
        for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
            if (auto v = positive_int(body, key)) {
                return *v;
            }
        }
    }
    if (advertised_output && *advertised_output > 0) {
        return *advertised_output;
    }
    return kFallbackMaxOutput;
}

int64_t reservation_estimate(const nlohmann::json& body, size_t body_bytes,
                             std::optional<int64_t> advertised_output) {
    return ceil_tokens(body_bytes) + max_output_tokens(body, advertised_output);
}

int64_t estimate_prompt_tokens(const nlohmann::json& body) {
    if (!body.is_object()) {
        return 0;
    }
    uint64_t bytes = 0;
    int64_t ids = 0;
    if (auto m = body.find("messages"); m != body.end() && m->is_array()) {
        for (const auto& message : *m) {
            if (message.is_object()) {
                if (auto c = message.find("content"); c != message.end()) {
                    bytes += content_bytes(*c);
                }
            }
        }
    }
    if (auto p = body.find("prompt"); p != body.end()) {
        if (const auto n = token_id_count(*p)) {
            ids += *n;
        } else {
            bytes += content_bytes(*p);
        }
    }
    if (auto i = body.find("instructions"); i != body.end()) {
        bytes += content_bytes(*i);
    }
    if (auto in = body.find("input"); in != body.end()) {
        bytes += content_bytes(*in);
    }
    return ceil_tokens(bytes) + ids;
}

Status check_context(const nlohmann::json& body, const std::optional<ModelLimit>& limit) {
    if (!limit || !limit->context || *limit->context <= 0) {
        return ok();
    }
    const int64_t estimate = estimate_prompt_tokens(body);
    if (estimate > *limit->context) {
        return fail(context_length_exceeded_error(estimate, *limit->context));
    }
    return ok();
}

namespace {

// Records the top-level fields RequestSummary names; everything else is only validated.
class SummarySax final : public nlohmann::json_sax<nlohmann::json> {
public:
    explicit SummarySax(RequestSummary& out) : out_(out) {}

    bool null() override { return scalar(Kind::kNull); }
    bool boolean(bool value) override {
        bool_value_ = value;
        return scalar(Kind::kBool);
    }
    bool number_integer(number_integer_t value) override {
        int_value_ = value;
        return scalar(Kind::kInt);
    }
    bool number_unsigned(number_unsigned_t value) override {
        // As json::get<int64_t>: values past INT64_MAX wrap to negative, i.e. "not positive".
        int_value_ = static_cast<int64_t>(value);
        return scalar(Kind::kInt);
    }
    bool number_float(number_float_t, const string_t&) override { return scalar(Kind::kOther); }
    bool string(string_t& value) override {
        if (depth_ == 1 && key_ == Key::kModel) {
            out_.model = std::move(value);
            out_.has_model = true;
            key_ = Key::kNone;
            return true;
        }
        return scalar(Kind::kOther);
    }
    bool binary(binary_t&) override { return scalar(Kind::kOther); }
    bool start_object(std::size_t) override {
        if (depth_ == 0) {
            out_.is_object = true;
        } else {
            (void)scalar(Kind::kOther);
        }
        ++depth_;
        return true;
    }
    bool end_object() override {
        --depth_;
        return true;
    }
    bool start_array(std::size_t) override {
        (void)scalar(Kind::kOther);
        ++depth_;
        return true;
    }
    bool end_array() override {
        --depth_;
        return true;
    }
    bool key(string_t& name) override {
        if (depth_ != 1) {
            return true;
        }
        key_ = Key::kNone;
        if (name == "model") {
            key_ = Key::kModel;
        } else if (name == "stream") {
            key_ = Key::kStream;
        } else if (name == "tools") {
            out_.has_tools = true;
        } else if (name == "max_completion_tokens") {
            key_ = Key::kMaxCompletion;
        } else if (name == "max_tokens") {
            key_ = Key::kMaxTokens;
        } else if (name == "max_output_tokens") {
            key_ = Key::kMaxOutput;
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string&,
                     const nlohmann::detail::exception& error) override {
        error_ = error.what();
        return false;
    }

    const std::optional<std::string>& error() const { return error_; }

private:
    enum class Key { kNone, kModel, kStream, kMaxCompletion, kMaxTokens, kMaxOutput };
    enum class Kind { kBool, kInt, kNull, kOther };

    // A value that is not a string (or a container's start) for the pending top-level key.
    bool scalar(Kind kind) {
        if (depth_ != 1 || key_ == Key::kNone) {
            return true;
        }
        const std::optional<int64_t> positive =
            kind == Kind::kInt && int_value_ > 0 ? std::optional<int64_t>(int_value_)
                                                 : std::nullopt;
        switch (key_) {
            case Key::kModel:
                out_.model.reset();
                out_.has_model = true;
                break;
            case Key::kStream:
                // `"stream": null` is the API's spelling of "not set".
                out_.stream = kind == Kind::kBool ? std::optional<bool>(bool_value_)
                                                  : std::nullopt;
                out_.has_stream = kind != Kind::kNull;
                break;
            case Key::kMaxCompletion:
                out_.max_completion_tokens = positive;
                break;
            case Key::kMaxTokens:
                out_.max_tokens = positive;
                break;
            case Key::kMaxOutput:
                out_.max_output_tokens = positive;
                break;
            case Key::kNone:
                break;
        }
        key_ = Key::kNone;
        return true;
    }

    RequestSummary& out_;
    int depth_ = 0;
    Key key_ = Key::kNone;
    bool bool_value_ = false;
    int64_t int_value_ = 0;
    std::optional<std::string> error_;
};

}  // namespace

Result<RequestSummary> summarize_request(std::string_view body) {
    RequestSummary out;
    SummarySax sax(out);
    const bool parsed = nlohmann::json::sax_parse(body, &sax);
    if (!parsed || sax.error()) {
        return fail(ErrorCode::kInvalidJson,
                    "request body is not valid JSON: " +
                        sax.error().value_or(std::string("unexpected end of input")));
    }
    return out;
}

int64_t max_output_tokens(const RequestSummary& summary, std::optional<int64_t> advertised_output) {
    if (summary.is_object) {
        for (const auto* v : {&summary.max_completion_tokens, &summary.max_tokens,
                              &summary.max_output_tokens}) {
            if (*v) {
                return **v;
            }
        }
    }
    if (advertised_output && *advertised_output > 0) {
        return *advertised_output;
    }
    return kFallbackMaxOutput;
}

int64_t reservation_estimate(const RequestSummary& summary, size_t body_bytes,
                             std::optional<int64_t> advertised_output) {
    return ceil_tokens(body_bytes) + max_output_tokens(summary, advertised_output);
}

bool may_exceed_context(size_t body_bytes, const std::optional<ModelLimit>& limit) {
    if (!limit || !limit->context || *limit->context <= 0) {
        return false;
    }
    return ceil_tokens(body_bytes) > *limit->context;
}

std::optional<std::string> advice_for_user_agent(std::string_view user_agent) {
    const std::string ua = lower(user_agent);
    if (ua.find("litellm") != std::string::npos) {
        return std::string(
            "litellm: set max_input_tokens for this model from GET /v1/models limit.context "
            "(and max_output_tokens from limit.output) so litellm trims the prompt before "
            "sending it");
    }
    if (ua.find("agent-zero") != std::string::npos || ua.find("agent zero") != std::string::npos ||
        ua.find("agent_zero") != std::string::npos || ua.find("agentzero") != std::string::npos) {
        return std::string(
            "Agent Zero: set the chat model's ctx_length to the limit.context advertised by "
            "GET /v1/models and lower ctx_history so history is summarized before it overflows");
    }
    if (ua.rfind("zed", 0) == 0 || ua.find("zed/") != std::string::npos ||
        ua.find(" zed") != std::string::npos) {
        return std::string(
            "Zed: set max_tokens for this model in the language_models settings to the "
            "limit.context advertised by GET /v1/models, or start a new thread");
    }
    return std::nullopt;
}

}  // namespace helexa::gateway
