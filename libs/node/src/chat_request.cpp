#include "helexa/node/chat_request.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "helexa/common/json.h"
#include "helexa/net/http.h"

namespace helexa::node {

using nlohmann::json;

namespace {

// nlohmann's value() throws on a type mismatch; outside input must never throw.
template <typename T>
T safe_value(const json& obj, const char* key, T fallback) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        return fallback;
    }
    if constexpr (std::is_same_v<T, bool>) {
        return it->is_boolean() ? it->get<bool>() : fallback;
    } else {
        return it->is_string() ? it->get<std::string>() : fallback;
    }
}

Error field_error(std::string_view field, std::string message) {
    return Error(ErrorCode::kInvalidRequest, std::move(message)).with_param(std::string(field));
}

Result<std::optional<float>> opt_float(const json& body, std::string_view field, double min,
                                       double max, bool min_exclusive = false) {
    auto v = get_optional_number(body, field);
    if (!v) {
        return tl::unexpected(v.error());
    }
    if (!*v) {
        return std::optional<float>();
    }
    double x = **v;
    bool below = min_exclusive ? x <= min : x < min;
    if (!std::isfinite(x) || below || x > max) {
        return tl::unexpected(field_error(
            field, fmt::format("'{}' must be {} {} and <= {}, got {}", field,
                               min_exclusive ? ">" : ">=", min, max, x)));
    }
    return std::optional<float>(static_cast<float>(x));
}

bool has_image_parts(const json& messages) {
    for (const auto& m : messages) {
        if (!m.is_object()) {
            continue;
        }
        auto it = m.find("content");
        if (it == m.end() || !it->is_array()) {
            continue;
        }
        for (const auto& part : *it) {
            if (part.is_object()) {
                auto type = safe_value<std::string>(part, "type", "");
                if (type == "image_url" || type == "input_image" || type == "image") {
                    return true;
                }
            }
        }
    }
    return false;
}

Status validate_messages(const json& messages) {
    if (messages.empty()) {
        return fail(field_error("messages", "'messages' must not be empty"));
    }
    for (size_t i = 0; i < messages.size(); ++i) {
        const auto& m = messages[i];
        if (!m.is_object()) {
            return fail(field_error("messages", fmt::format("messages[{}] must be an object", i)));
        }
        auto role = m.find("role");
        if (role == m.end() || !role->is_string()) {
            return fail(field_error("messages",
                                    fmt::format("messages[{}].role must be a string", i)));
        }
        auto content = m.find("content");
        if (content != m.end() && !content->is_null() && !content->is_string() &&
            !content->is_array()) {
            return fail(field_error(
                "messages", fmt::format("messages[{}].content must be a string or an array", i)));
        }
    }
    return ok();
}

void normalise_tool_arguments(json& messages) {
    for (auto& m : messages) {
        auto calls = m.find("tool_calls");
        if (calls == m.end() || !calls->is_array()) {
            continue;
        }
        for (auto& call : *calls) {
            if (!call.is_object()) {
                continue;
            }
            auto fn = call.find("function");
            if (fn == call.end() || !fn->is_object()) {
                continue;
            }
            auto args = fn->find("arguments");
            if (args == fn->end() || !args->is_string()) {
                continue;
            }
            auto parsed = json::parse(args->get<std::string>(), nullptr, false);
            if (!parsed.is_discarded() && parsed.is_object()) {
                *args = std::move(parsed);
            }
        }
    }
}

bool reasoning_requested(const json& body) {
    if (auto it = body.find("include_reasoning"); it != body.end() && it->is_boolean()) {
        if (it->get<bool>()) {
            return true;
        }
    }
    if (auto it = body.find("reasoning_effort"); it != body.end() && it->is_string()) {
        if (it->get<std::string>() != "none") {
            return true;
        }
    }
    if (auto it = body.find("reasoning"); it != body.end() && it->is_object()) {
        if (!safe_value(*it, "enabled", true) || safe_value(*it, "exclude", false)) {
            return false;
        }
        return safe_value<std::string>(*it, "effort", "") != "none";
    }
    return false;
}

}  // namespace

bool header_truthy(std::optional<std::string_view> value) {
    if (!value) {
        return false;
    }
    return net::iequals(*value, "1") || net::iequals(*value, "true") || net::iequals(*value, "yes");
}

Result<engine::SamplingParams> parse_sampling(const json& body) {
    engine::SamplingParams s;
    auto assign = [](auto& dst, auto result) -> Status {
        if (!result) {
            return tl::unexpected(result.error());
        }
        dst = *result;
        return ok();
    };
    HELEXA_TRY_STATUS(assign(s.temperature, opt_float(body, "temperature", 0.0, 2.0)));
    HELEXA_TRY_STATUS(assign(s.top_p, opt_float(body, "top_p", 0.0, 1.0, true)));
    HELEXA_TRY_STATUS(assign(s.min_p, opt_float(body, "min_p", 0.0, 1.0)));
    HELEXA_TRY_STATUS(
        assign(s.repetition_penalty, opt_float(body, "repetition_penalty", 0.0, 10.0, true)));
    HELEXA_TRY_STATUS(assign(s.presence_penalty, opt_float(body, "presence_penalty", -2.0, 2.0)));
    HELEXA_TRY_STATUS(
        assign(s.frequency_penalty, opt_float(body, "frequency_penalty", -2.0, 2.0)));

    auto top_k = get_optional_int(body, "top_k");
    if (!top_k) {
        return tl::unexpected(top_k.error());
    }
    if (*top_k) {
        if (**top_k < 0 || **top_k > std::numeric_limits<int32_t>::max()) {
            return tl::unexpected(field_error("top_k", "'top_k' must be >= 0"));
        }
        s.top_k = static_cast<int32_t>(**top_k);
    }
    auto seed = get_optional_int(body, "seed");
    if (!seed) {
        return tl::unexpected(seed.error());
    }
    if (*seed) {
        s.seed = static_cast<uint64_t>(**seed);
    }
    for (const char* field : {"max_completion_tokens", "max_tokens"}) {
        auto mt = get_optional_int(body, field);
        if (!mt) {
            return tl::unexpected(mt.error());
        }
        if (*mt) {
            if (**mt < 1) {
                return tl::unexpected(field_error(field, fmt::format("'{}' must be >= 1", field)));
            }
            s.max_tokens = **mt;
            break;  // max_completion_tokens wins over the legacy max_tokens
        }
    }
    if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
        if (it->is_string()) {
            if (!it->get<std::string>().empty()) {
                s.stop.push_back(it->get<std::string>());
            }
        } else if (it->is_array()) {
            for (const auto& v : *it) {
                if (!v.is_string()) {
                    return tl::unexpected(field_error("stop", "'stop' must hold strings only"));
                }
                if (!v.get<std::string>().empty()) {
                    s.stop.push_back(v.get<std::string>());
                }
            }
        } else {
            return tl::unexpected(
                field_error("stop", "'stop' must be a string or an array of strings"));
        }
    }
    if (auto it = body.find("logit_bias"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) {
            return tl::unexpected(field_error("logit_bias", "'logit_bias' must be an object"));
        }
        for (const auto& [key, value] : it->items()) {
            char* end = nullptr;
            errno = 0;
            long long id = std::strtoll(key.c_str(), &end, 10);
            if (key.empty() || *end != '\0' || errno != 0 || id < 0 ||
                id > std::numeric_limits<int32_t>::max()) {
                return tl::unexpected(field_error(
                    "logit_bias", fmt::format("logit_bias key '{}' is not a token id", key)));
            }
            if (!value.is_number() || !std::isfinite(value.get<double>()) ||
                std::fabs(value.get<double>()) > 100.0) {
                return tl::unexpected(field_error(
                    "logit_bias", fmt::format("logit_bias['{}'] must be a number in [-100, 100]",
                                              key)));
            }
            s.logit_bias[static_cast<int32_t>(id)] = value.get<float>();
        }
    }
    auto ignore_eos = get_optional_bool(body, "ignore_eos");
    if (!ignore_eos) {
        return tl::unexpected(ignore_eos.error());
    }
    s.ignore_eos = ignore_eos->value_or(false);
    auto n = get_optional_int(body, "n");
    if (!n) {
        return tl::unexpected(n.error());
    }
    if (*n && **n != 1) {
        return tl::unexpected(field_error("n", "only n = 1 is supported"));
    }
    return s;
}

Result<ChatPlan> parse_chat_request(const json& body, bool include_thinking) {
    if (!body.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
    }
    ChatPlan plan;
    auto model = get_string(body, "model");
    if (!model) {
        return tl::unexpected(model.error());
    }
    plan.model = *model;
    auto stream = get_optional_bool(body, "stream");
    if (!stream) {
        return tl::unexpected(stream.error());
    }
    plan.stream = stream->value_or(false);
    auto messages = get_array(body, "messages");
    if (!messages) {
        return tl::unexpected(messages.error());
    }
    HELEXA_TRY_STATUS(validate_messages(**messages));
    plan.render.messages = **messages;
    normalise_tool_arguments(plan.render.messages);
    plan.has_images = has_image_parts(plan.render.messages);

    if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
        if (!it->is_array()) {
            return fail(field_error("tools", "'tools' must be an array"));
        }
        plan.render.tools = *it;
        plan.has_tools = !it->empty();
    }
    if (auto it = body.find("chat_template_kwargs"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) {
            return fail(field_error("chat_template_kwargs", "'chat_template_kwargs' must be an "
                                                            "object"));
        }
        plan.render.template_kwargs = *it;
    }
    auto agp = get_optional_bool(body, "add_generation_prompt");
    if (!agp) {
        return tl::unexpected(agp.error());
    }
    plan.render.add_generation_prompt = agp->value_or(true);

    if (include_thinking) {
        plan.reasoning = ReasoningDisplay::kWrapped;
    } else if (reasoning_requested(body)) {
        plan.reasoning = ReasoningDisplay::kField;
    }
    if (plan.reasoning == ReasoningDisplay::kHidden &&
        !plan.render.template_kwargs.contains("enable_thinking")) {
        plan.render.template_kwargs["enable_thinking"] = false;
    }
    auto sampling = parse_sampling(body);
    if (!sampling) {
        return tl::unexpected(sampling.error());
    }
    plan.sampling = std::move(*sampling);
    return plan;
}

Result<CompletionPlan> parse_completion_request(const json& body) {
    if (!body.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
    }
    CompletionPlan plan;
    auto model = get_string(body, "model");
    if (!model) {
        return tl::unexpected(model.error());
    }
    plan.model = *model;
    auto stream = get_optional_bool(body, "stream");
    if (!stream) {
        return tl::unexpected(stream.error());
    }
    plan.stream = stream->value_or(false);
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) {
        return fail(field_error("prompt", "missing field 'prompt'"));
    }
    // [[ids]] is one prompt of token ids, as [ids] is.
    const json& one = it->is_array() && it->size() == 1 && (*it)[0].is_array() ? (*it)[0] : *it;
    if (it->is_string()) {
        plan.prompt = it->get<std::string>();
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
        plan.prompt = (*it)[0].get<std::string>();
    } else if (one.is_array() && !one.empty() &&
               std::all_of(one.begin(), one.end(), [](const json& v) {
                   return v.is_number_integer() && v.get<int64_t>() >= 0 &&
                          v.get<int64_t>() <= std::numeric_limits<int32_t>::max();
               })) {
        plan.prompt_tokens.emplace();
        plan.prompt_tokens->reserve(one.size());
        for (const auto& v : one) {
            plan.prompt_tokens->push_back(static_cast<int32_t>(v.get<int64_t>()));
        }
    } else {
        return fail(field_error("prompt", "'prompt' must be a string, an array of one string, or "
                                          "a non-empty array of token ids"));
    }
    auto sampling = parse_sampling(body);
    if (!sampling) {
        return tl::unexpected(sampling.error());
    }
    plan.sampling = std::move(*sampling);
    return plan;
}

}  // namespace helexa::node
