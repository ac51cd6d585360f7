// The neuron HTTP protocol types shared by neuron (writer) and cortex / helexa-bench (readers):
// GET /discovery, GET /health, GET /models, POST /models/load, the 422 preflight error, and
// POST /tokenize | /detokenize.
//
// Compatibility rule (features §1): additive only. Reading is lenient: a missing field takes its
// default, an unknown field is ignored, a field of the wrong type is treated as missing, an
// unknown enum value maps to kUnknown. Writing omits optional fields that are absent
// (cuda_unavailable_reason, limit, ...), so older peers see what they always saw.
// Each type has ADL to_json/from_json (so `json j = x;` and `j.get<T>()` work; from_json never
// throws) and a parse_* helper that rejects a non-object body with kUpstream.
//
// Field names not fixed by the spec are decided here (docs: this header):
//   DeviceInfo      {index, name, total_vram_mb, compute_capability:"8.9"}
//   DeviceHealth    {index, name, vram_total_mb, vram_used_mb, vram_free_mb,
//                    utilization_percent?, temperature_c?}
//   /models         a bare JSON array of ModelInfo ({"models":[..]} and {"data":[..]} also read)
//   ModelSpec       {model_id, harness?, quant?, tensor_parallel?, devices?}
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire {

// ---- GET /discovery ----
struct DeviceInfo {
    int64_t index = 0;
    std::string name;
    int64_t total_vram_mb = 0;
    std::string compute_capability;  // "major.minor", e.g. "9.0"; empty when unknown
    bool operator==(const DeviceInfo&) const = default;
};

struct DiscoveryResponse {
    std::string hostname;
    std::string os;
    std::optional<std::string> driver_version;
    std::optional<std::string> cuda_version;
    std::vector<DeviceInfo> devices;
    std::vector<std::string> harnesses;
    int64_t max_prompt_tokens = 0;  // 0 = unknown / no model loaded (D1)
    std::optional<std::string> cuda_unavailable_reason;  // omitted when absent
    bool operator==(const DiscoveryResponse&) const = default;
};

// ---- GET /health ----
struct DeviceHealth {
    int64_t index = 0;
    std::string name;
    int64_t vram_total_mb = 0;
    int64_t vram_used_mb = 0;
    int64_t vram_free_mb = 0;
    std::optional<double> utilization_percent;
    std::optional<double> temperature_c;
    bool operator==(const DeviceHealth&) const = default;
};

enum class ActivationState { kPreWarming, kReady, kUnknown };

struct FailedActivation {
    std::string model_id;
    std::string error;
    bool operator==(const FailedActivation&) const = default;
};

struct Activation {
    ActivationState state = ActivationState::kReady;
    std::vector<std::string> pending;
    std::optional<std::string> in_progress;  // written as null when absent
    std::vector<std::string> completed;
    std::vector<FailedActivation> failed;
    bool operator==(const Activation&) const = default;
};

struct ModelLoad {
    std::string id;
    int64_t in_flight = 0;
    int64_t queue_depth = 0;
    bool operator==(const ModelLoad&) const = default;
};

struct HealthResponse {
    std::string status = "ok";
    std::vector<DeviceHealth> devices;
    Activation activation;
    std::vector<ModelLoad> models;  // always written, may be empty
    bool operator==(const HealthResponse&) const = default;
};

// ---- GET /models ----
enum class ModelStatus { kLoading, kLoaded, kPoisoned, kRecovering, kUnknown };

struct ModelLimit {
    int64_t context = 0;
    std::optional<int64_t> input;
    int64_t output = 0;
    bool operator==(const ModelLimit&) const = default;
};

struct ModelInfo {
    std::string id;
    ModelStatus status = ModelStatus::kLoaded;
    std::vector<int64_t> devices;
    int64_t vram_mb = 0;
    std::vector<std::string> capabilities;  // ["text"] or ["text","vision"]; omitted when empty
    bool tool_call = false;
    bool reasoning = false;
    std::optional<ModelLimit> limit;
    bool operator==(const ModelInfo&) const = default;
};

// ---- POST /models/load, /models/unload ----
struct ModelSpec {
    std::string model_id;
    std::optional<std::string> harness;
    std::optional<std::string> quant;
    std::optional<int64_t> tensor_parallel;
    std::optional<std::vector<int64_t>> devices;
    bool operator==(const ModelSpec&) const = default;
};

struct UnloadRequest {
    std::string model_id;
    bool operator==(const UnloadRequest&) const = default;
};

// 422 from /models/load: written as {"error":{kind, model_id, suggestion?}} (not the OpenAI
// envelope; features §2).
struct PreflightError {
    std::string kind;  // snake_case, e.g. "tp_requires_safetensors"
    std::string model_id;
    std::optional<std::string> suggestion;
    bool operator==(const PreflightError&) const = default;
};

// ---- POST /tokenize, /detokenize ----
struct TokenizeRequest {
    std::string model;
    std::optional<std::string> prompt;      // plain form
    std::optional<nlohmann::json> messages;  // chat form (same shape as a chat request)
    std::optional<nlohmann::json> tools;
    std::optional<nlohmann::json> chat_template_kwargs;
    bool add_generation_prompt = true;
    std::optional<bool> add_special_tokens;
    bool is_chat() const { return messages.has_value(); }
    bool operator==(const TokenizeRequest&) const = default;
};

struct TokenizeResponse {
    std::vector<int32_t> tokens;
    int64_t count = 0;
    bool operator==(const TokenizeResponse&) const = default;
};

struct DetokenizeRequest {
    std::string model;
    std::vector<int32_t> tokens;
    bool operator==(const DetokenizeRequest&) const = default;
};

struct DetokenizeResponse {
    std::string text;
    bool operator==(const DetokenizeResponse&) const = default;
};

std::string_view to_string(ActivationState state);
std::string_view to_string(ModelStatus status);
ActivationState activation_state_from_string(std::string_view text);
ModelStatus model_status_from_string(std::string_view text);

void to_json(nlohmann::json& j, const DeviceInfo& v);
void from_json(const nlohmann::json& j, DeviceInfo& v);
void to_json(nlohmann::json& j, const DiscoveryResponse& v);
void from_json(const nlohmann::json& j, DiscoveryResponse& v);
void to_json(nlohmann::json& j, const DeviceHealth& v);
void from_json(const nlohmann::json& j, DeviceHealth& v);
void to_json(nlohmann::json& j, const FailedActivation& v);
void from_json(const nlohmann::json& j, FailedActivation& v);
void to_json(nlohmann::json& j, const Activation& v);
void from_json(const nlohmann::json& j, Activation& v);
void to_json(nlohmann::json& j, const ModelLoad& v);
void from_json(const nlohmann::json& j, ModelLoad& v);
void to_json(nlohmann::json& j, const HealthResponse& v);
void from_json(const nlohmann::json& j, HealthResponse& v);
void to_json(nlohmann::json& j, const ModelLimit& v);
void from_json(const nlohmann::json& j, ModelLimit& v);
void to_json(nlohmann::json& j, const ModelInfo& v);
void from_json(const nlohmann::json& j, ModelInfo& v);
void to_json(nlohmann::json& j, const ModelSpec& v);
void from_json(const nlohmann::json& j, ModelSpec& v);
void to_json(nlohmann::json& j, const UnloadRequest& v);
void from_json(const nlohmann::json& j, UnloadRequest& v);
void to_json(nlohmann::json& j, const PreflightError& v);
void from_json(const nlohmann::json& j, PreflightError& v);
void to_json(nlohmann::json& j, const TokenizeRequest& v);
void from_json(const nlohmann::json& j, TokenizeRequest& v);
void to_json(nlohmann::json& j, const TokenizeResponse& v);
void from_json(const nlohmann::json& j, TokenizeResponse& v);
void to_json(nlohmann::json& j, const DetokenizeRequest& v);
void from_json(const nlohmann::json& j, DetokenizeRequest& v);
void to_json(nlohmann::json& j, const DetokenizeResponse& v);
void from_json(const nlohmann::json& j, DetokenizeResponse& v);

// Readers for peer responses: kUpstream when the body is not an object (or, for the model list,
// not an array / {"models"|"data": array}).
Result<DiscoveryResponse> parse_discovery(const nlohmann::json& body);
Result<HealthResponse> parse_health(const nlohmann::json& body);
Result<std::vector<ModelInfo>> parse_model_list(const nlohmann::json& body);
Result<TokenizeResponse> parse_tokenize_response(const nlohmann::json& body);
// Reads {"error":{kind,...}} or a bare {kind,...}; kUpstream when `kind` is missing.
Result<PreflightError> parse_preflight_error(const nlohmann::json& body);

// Readers for requests a neuron receives: kInvalidRequest naming the field when a required field
// is missing or mistyped (requests are validated strictly; responses are read leniently).
Result<ModelSpec> parse_model_spec(const nlohmann::json& body);
Result<TokenizeRequest> parse_tokenize_request(const nlohmann::json& body);

// The 422 body for a preflight rejection: {"error":{kind, model_id, suggestion?}}.
nlohmann::json preflight_error_body(const PreflightError& error);

}  // namespace helexa::wire
