// Neuron protocol (de)serialisation. Reading never throws; see the header for the rules.
#include "helexa/wire/neuron_protocol.h"

#include <limits>

#include "internal/json_util.h"

namespace helexa::wire {
namespace {

using detail::member;
using nlohmann::json;

std::string str(const json& j, const char* key, std::string fallback = {}) {
    return detail::string_member(j, key).value_or(std::move(fallback));
}

int64_t integer(const json& j, const char* key, int64_t fallback = 0) {
    return detail::int_member(j, key).value_or(fallback);
}

bool boolean(const json& j, const char* key, bool fallback = false) {
    const json* value = member(j, key);
    return value != nullptr && value->is_boolean() ? value->get<bool>() : fallback;
}

std::optional<double> number(const json& j, const char* key) {
    const json* value = member(j, key);
    if (value == nullptr || !value->is_number()) {
        return std::nullopt;
    }
    return value->get<double>();
}

std::vector<std::string> strings(const json& j, const char* key) {
    std::vector<std::string> out;
    const json* value = member(j, key);
    if (value != nullptr && value->is_array()) {
        for (const auto& item : *value) {
            if (item.is_string()) {
                out.push_back(item.get<std::string>());
            }
        }
    }
    return out;
}

std::vector<int64_t> integers(const json& j) {
    std::vector<int64_t> out;
    if (j.is_array()) {
        for (const auto& item : j) {
            if (detail::is_integral(item)) {
                out.push_back(detail::as_int(item));
            }
        }
    }
    return out;
}

template <typename T>
std::vector<T> objects(const json& j, const char* key) {
    std::vector<T> out;
    const json* value = member(j, key);
    if (value != nullptr && value->is_array()) {
        for (const auto& item : *value) {
            if (item.is_object()) {
                T parsed;
                from_json(item, parsed);
                out.push_back(std::move(parsed));
            }
        }
    }
    return out;
}

void put_optional(json& j, const char* key, const std::optional<std::string>& value) {
    if (value) {
        j[key] = *value;
    }
}

}  // namespace

std::string_view to_string(ActivationState state) {
    switch (state) {
        case ActivationState::kPreWarming:
            return "pre_warming";
        case ActivationState::kReady:
            return "ready";
        case ActivationState::kUnknown:
            return "unknown";
    }
    return "unknown";
}

std::string_view to_string(ModelStatus status) {
    switch (status) {
        case ModelStatus::kLoading:
            return "loading";
        case ModelStatus::kLoaded:
            return "loaded";
        case ModelStatus::kPoisoned:
            return "poisoned";
        case ModelStatus::kRecovering:
            return "recovering";
        case ModelStatus::kUnknown:
            return "unknown";
    }
    return "unknown";
}

ActivationState activation_state_from_string(std::string_view text) {
    if (text == "pre_warming") {
        return ActivationState::kPreWarming;
    }
    if (text == "ready") {
        return ActivationState::kReady;
    }
    return ActivationState::kUnknown;
}

ModelStatus model_status_from_string(std::string_view text) {
    if (text == "loading") {
        return ModelStatus::kLoading;
    }
    if (text == "loaded") {
        return ModelStatus::kLoaded;
    }
    if (text == "poisoned") {
        return ModelStatus::kPoisoned;
    }
    if (text == "recovering") {
        return ModelStatus::kRecovering;
    }
    return ModelStatus::kUnknown;
}

// ---- discovery ----
void to_json(json& j, const DeviceInfo& v) {
    j = {{"index", v.index},
         {"name", v.name},
         {"total_vram_mb", v.total_vram_mb},
         {"compute_capability", v.compute_capability}};
}

void from_json(const json& j, DeviceInfo& v) {
    v.index = integer(j, "index");
    v.name = str(j, "name");
    v.total_vram_mb = integer(j, "total_vram_mb");
    // Accept "8.9", 8.9 and [8, 9].
    const json* cc = member(j, "compute_capability");
    v.compute_capability.clear();
    if (cc != nullptr) {
        if (cc->is_string()) {
            v.compute_capability = cc->get<std::string>();
        } else if (cc->is_array() && cc->size() == 2 && detail::is_integral((*cc)[0]) &&
                   detail::is_integral((*cc)[1])) {
            v.compute_capability = std::to_string(detail::as_int((*cc)[0])) + "." +
                                   std::to_string(detail::as_int((*cc)[1]));
        } else if (cc->is_number()) {
            std::string text = detail::safe_dump(*cc);
            v.compute_capability = text.find('.') == std::string::npos ? text + ".0" : text;
        }
    }
}

void to_json(json& j, const DiscoveryResponse& v) {
    j = {{"hostname", v.hostname},
         {"os", v.os},
         {"devices", v.devices},
         {"harnesses", v.harnesses},
         {"max_prompt_tokens", v.max_prompt_tokens}};
    put_optional(j, "driver_version", v.driver_version);
    put_optional(j, "cuda_version", v.cuda_version);
    put_optional(j, "cuda_unavailable_reason", v.cuda_unavailable_reason);
}

void from_json(const json& j, DiscoveryResponse& v) {
    v.hostname = str(j, "hostname");
    v.os = str(j, "os");
    v.driver_version = detail::string_member(j, "driver_version");
    v.cuda_version = detail::string_member(j, "cuda_version");
    v.devices = objects<DeviceInfo>(j, "devices");
    v.harnesses = strings(j, "harnesses");
    v.max_prompt_tokens = integer(j, "max_prompt_tokens");
    v.cuda_unavailable_reason = detail::string_member(j, "cuda_unavailable_reason");
}

// ---- health ----
void to_json(json& j, const DeviceHealth& v) {
    j = {{"index", v.index},
         {"name", v.name},
         {"vram_total_mb", v.vram_total_mb},
         {"vram_used_mb", v.vram_used_mb},
         {"vram_free_mb", v.vram_free_mb}};
    if (v.utilization_percent) {
        j["utilization_percent"] = *v.utilization_percent;
    }
    if (v.temperature_c) {
        j["temperature_c"] = *v.temperature_c;
    }
}

void from_json(const json& j, DeviceHealth& v) {
    v.index = integer(j, "index");
    v.name = str(j, "name");
    v.vram_total_mb = integer(j, "vram_total_mb");
    v.vram_used_mb = integer(j, "vram_used_mb");
    v.vram_free_mb = integer(j, "vram_free_mb");
    v.utilization_percent = number(j, "utilization_percent");
    v.temperature_c = number(j, "temperature_c");
}

void to_json(json& j, const FailedActivation& v) {
    j = {{"model_id", v.model_id}, {"error", v.error}};
}

void from_json(const json& j, FailedActivation& v) {
    v.model_id = str(j, "model_id");
    v.error = str(j, "error");
}

void to_json(json& j, const Activation& v) {
    j = {{"state", to_string(v.state)},
         {"pending", v.pending},
         {"in_progress", v.in_progress ? json(*v.in_progress) : json(nullptr)},
         {"completed", v.completed},
         {"failed", v.failed}};
}

void from_json(const json& j, Activation& v) {
    auto state = detail::string_member(j, "state");
    v.state = state ? activation_state_from_string(*state) : ActivationState::kReady;
    v.pending = strings(j, "pending");
    v.in_progress = detail::string_member(j, "in_progress");
    v.completed = strings(j, "completed");
    v.failed = objects<FailedActivation>(j, "failed");
}

void to_json(json& j, const ModelLoad& v) {
    j = {{"id", v.id}, {"in_flight", v.in_flight}, {"queue_depth", v.queue_depth}};
}

void from_json(const json& j, ModelLoad& v) {
    v.id = str(j, "id");
    v.in_flight = integer(j, "in_flight");
    v.queue_depth = integer(j, "queue_depth");
}

void to_json(json& j, const HealthResponse& v) {
    j = {{"status", v.status},
         {"devices", v.devices},
         {"activation", v.activation},
         {"models", v.models}};
}

void from_json(const json& j, HealthResponse& v) {
    v.status = str(j, "status", "ok");
    v.devices = objects<DeviceHealth>(j, "devices");
    v.activation = Activation{};
    if (const json* activation = member(j, "activation"); activation != nullptr) {
        from_json(*activation, v.activation);
    }
    v.models = objects<ModelLoad>(j, "models");
}

// ---- models ----
void to_json(json& j, const ModelLimit& v) {
    j = {{"context", v.context}, {"output", v.output}};
    if (v.input) {
        j["input"] = *v.input;
    }
}

void from_json(const json& j, ModelLimit& v) {
    v.context = integer(j, "context");
    v.input = detail::int_member(j, "input");
    v.output = integer(j, "output");
}

void to_json(json& j, const ModelInfo& v) {
    j = {{"id", v.id},
         {"status", to_string(v.status)},
         {"devices", v.devices},
         {"vram_mb", v.vram_mb},
         {"tool_call", v.tool_call},
         {"reasoning", v.reasoning}};
    if (!v.capabilities.empty()) {
        j["capabilities"] = v.capabilities;
    }
    if (v.limit) {
        j["limit"] = *v.limit;
    }
}

void from_json(const json& j, ModelInfo& v) {
    v.id = str(j, "id");
    auto status = detail::string_member(j, "status");
    v.status = status ? model_status_from_string(*status) : ModelStatus::kLoaded;
    const json* devices = member(j, "devices");
    v.devices = devices != nullptr ? integers(*devices) : std::vector<int64_t>{};
    v.vram_mb = integer(j, "vram_mb");
    v.capabilities = strings(j, "capabilities");
    v.tool_call = boolean(j, "tool_call");
    v.reasoning = boolean(j, "reasoning");
    v.limit.reset();
    if (const json* limit = member(j, "limit"); limit != nullptr && limit->is_object()) {
        ModelLimit parsed;
        from_json(*limit, parsed);
        v.limit = parsed;
    }
}

// ---- load / unload ----
void to_json(json& j, const ModelSpec& v) {
    j = {{"model_id", v.model_id}};
    put_optional(j, "harness", v.harness);
    put_optional(j, "quant", v.quant);
    if (v.tensor_parallel) {
        j["tensor_parallel"] = *v.tensor_parallel;
    }
    if (v.devices) {
        j["devices"] = *v.devices;
    }
}

void from_json(const json& j, ModelSpec& v) {
    v.model_id = str(j, "model_id");
    v.harness = detail::string_member(j, "harness");
    v.quant = detail::string_member(j, "quant");
    v.tensor_parallel = detail::int_member(j, "tensor_parallel");
    v.devices.reset();
    if (const json* devices = member(j, "devices"); devices != nullptr && devices->is_array()) {
        v.devices = integers(*devices);
    }
}

void to_json(json& j, const UnloadRequest& v) {
    j = {{"model_id", v.model_id}};
}

void from_json(const json& j, UnloadRequest& v) {
    v.model_id = str(j, "model_id");
}

void to_json(json& j, const PreflightError& v) {
    j = {{"kind", v.kind}, {"model_id", v.model_id}};
    put_optional(j, "suggestion", v.suggestion);
}

void from_json(const json& j, PreflightError& v) {
    v.kind = str(j, "kind");
    v.model_id = str(j, "model_id");
    v.suggestion = detail::string_member(j, "suggestion");
}

// ---- tokenize ----
void to_json(json& j, const TokenizeRequest& v) {
    j = {{"model", v.model}};
    put_optional(j, "prompt", v.prompt);
    if (v.messages) {
        j["messages"] = *v.messages;
        j["add_generation_prompt"] = v.add_generation_prompt;
    }
    if (v.tools) {
        j["tools"] = *v.tools;
    }
    if (v.chat_template_kwargs) {
        j["chat_template_kwargs"] = *v.chat_template_kwargs;
    }
    if (v.add_special_tokens) {
        j["add_special_tokens"] = *v.add_special_tokens;
    }
}

void from_json(const json& j, TokenizeRequest& v) {
    v.model = str(j, "model");
    v.prompt = detail::string_member(j, "prompt");
    auto optional_json = [&](const char* key) -> std::optional<json> {
        const json* value = member(j, key);
        return value != nullptr ? std::optional<json>(*value) : std::nullopt;
    };
    v.messages = optional_json("messages");
    v.tools = optional_json("tools");
    v.chat_template_kwargs = optional_json("chat_template_kwargs");
    v.add_generation_prompt = boolean(j, "add_generation_prompt", true);
    const json* special = member(j, "add_special_tokens");
    v.add_special_tokens = special != nullptr && special->is_boolean()
                               ? std::optional<bool>(special->get<bool>())
                               : std::nullopt;
}

namespace {
std::vector<int32_t> token_ids(const json* tokens) {
    std::vector<int32_t> out;
    if (tokens != nullptr && tokens->is_array()) {
        for (const auto& token : *tokens) {
            if (detail::is_integral(token)) {
                int64_t id = detail::as_int(token);
                if (id >= 0 && id <= std::numeric_limits<int32_t>::max()) {
                    out.push_back(static_cast<int32_t>(id));
                }
            }
        }
    }
    return out;
}
}  // namespace

void to_json(json& j, const TokenizeResponse& v) {
    j = {{"tokens", v.tokens}, {"count", v.count}};
}

void from_json(const json& j, TokenizeResponse& v) {
    v.tokens = token_ids(member(j, "tokens"));
    v.count = integer(j, "count", static_cast<int64_t>(v.tokens.size()));
}

void to_json(json& j, const DetokenizeRequest& v) {
    j = {{"model", v.model}, {"tokens", v.tokens}};
}

void from_json(const json& j, DetokenizeRequest& v) {
    v.model = str(j, "model");
    v.tokens = token_ids(member(j, "tokens"));
}

void to_json(json& j, const DetokenizeResponse& v) {
    j = {{"text", v.text}};
}

void from_json(const json& j, DetokenizeResponse& v) {
    v.text = str(j, "text");
}

// ---- parse helpers ----
namespace {
template <typename T>
Result<T> parse_object(const json& body, const char* what) {
    if (!body.is_object()) {
        return fail(ErrorCode::kUpstream,
                    std::string(what) + ": expected a JSON object, got " + body.type_name());
    }
    T out;
    from_json(body, out);
    return out;
}
}  // namespace

Result<DiscoveryResponse> parse_discovery(const json& body) {
    return parse_object<DiscoveryResponse>(body, "discovery response");
}

Result<HealthResponse> parse_health(const json& body) {
    return parse_object<HealthResponse>(body, "health response");
}

Result<TokenizeResponse> parse_tokenize_response(const json& body) {
    return parse_object<TokenizeResponse>(body, "tokenize response");
}

Result<std::vector<ModelInfo>> parse_model_list(const json& body) {
    const json* list = &body;
    if (body.is_object()) {
        list = member(body, "models");
        if (list == nullptr) {
            list = member(body, "data");
        }
    }
    if (list == nullptr || !list->is_array()) {
        return fail(ErrorCode::kUpstream, "models response: expected an array of models");
    }
    std::vector<ModelInfo> out;
    for (const auto& item : *list) {
        if (item.is_object()) {
            ModelInfo info;
            from_json(item, info);
            out.push_back(std::move(info));
        }
    }
    return out;
}

Result<PreflightError> parse_preflight_error(const json& body) {
    const json* inner = member(body, "error");
    const json& source = inner != nullptr && inner->is_object() ? *inner : body;
    if (!detail::string_member(source, "kind")) {
        return fail(ErrorCode::kUpstream, "preflight error: missing `kind`");
    }
    PreflightError out;
    from_json(source, out);
    return out;
}

Result<ModelSpec> parse_model_spec(const json& body) {
    if (!body.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
    }
    auto model_id = detail::string_member(body, "model_id");
    if (!model_id || model_id->empty()) {
        return tl::unexpected(detail::invalid_field("model_id", "required non-empty string"));
    }
    for (const char* key : {"harness", "quant"}) {
        if (const json* value = member(body, key); value != nullptr && !value->is_string()) {
            return tl::unexpected(detail::invalid_field(key, "expected a string"));
        }
    }
    if (const json* tp = member(body, "tensor_parallel"); tp != nullptr) {
        if (!detail::is_integral(*tp) || detail::as_int(*tp) < 1) {
            return tl::unexpected(
                detail::invalid_field("tensor_parallel", "expected a positive integer"));
        }
    }
    if (const json* devices = member(body, "devices"); devices != nullptr) {
        if (!devices->is_array()) {
            return tl::unexpected(detail::invalid_field("devices", "expected an array"));
        }
        for (size_t i = 0; i < devices->size(); ++i) {
            if (!detail::is_integral((*devices)[i]) || detail::as_int((*devices)[i]) < 0) {
                return tl::unexpected(detail::invalid_field(
                    "devices[" + std::to_string(i) + "]", "expected a device index"));
            }
        }
    }
    ModelSpec out;
    from_json(body, out);
    return out;
}

Result<TokenizeRequest> parse_tokenize_request(const json& body) {
    if (!body.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
    }
    auto model = detail::string_member(body, "model");
    if (!model || model->empty()) {
        return tl::unexpected(detail::invalid_field("model", "required non-empty string"));
    }
    const json* prompt = member(body, "prompt");
    const json* messages = member(body, "messages");
    if (prompt == nullptr && messages == nullptr) {
        return tl::unexpected(
            detail::invalid_field("prompt", "one of `prompt` or `messages` is required"));
    }
    if (prompt != nullptr && !prompt->is_string()) {
        return tl::unexpected(detail::invalid_field("prompt", "expected a string"));
    }
    if (messages != nullptr && !messages->is_array()) {
        return tl::unexpected(detail::invalid_field("messages", "expected an array"));
    }
    if (const json* tools = member(body, "tools"); tools != nullptr && !tools->is_array()) {
        return tl::unexpected(detail::invalid_field("tools", "expected an array"));
    }
    if (const json* kwargs = member(body, "chat_template_kwargs");
        kwargs != nullptr && !kwargs->is_object()) {
        return tl::unexpected(detail::invalid_field("chat_template_kwargs", "expected an object"));
    }
    for (const char* key : {"add_generation_prompt", "add_special_tokens"}) {
        if (const json* flag = member(body, key); flag != nullptr && !flag->is_boolean()) {
            return tl::unexpected(detail::invalid_field(key, "expected a boolean"));
        }
    }
    TokenizeRequest out;
    from_json(body, out);
    return out;
}

json preflight_error_body(const PreflightError& error) {
    return {{"error", error}};
}

}  // namespace helexa::wire
