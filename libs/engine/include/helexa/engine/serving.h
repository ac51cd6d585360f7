// The engine as the node daemon sees it: a queue facade over loaded models.
//   Engine::load(spec) -> LoadedModel; LoadedModel::submit(request, sink) -> events on the sink;
//   cancel(id); the node never sees tensors, CUDA types or the scheduler.
// Thread-safety: every method may be called from any thread. Event sinks are invoked on the
// engine's own threads (one scheduler thread per model), in order, never concurrently for one
// request; a sink must not block (post the event to your own executor).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::engine {

// What a model advertises (neuron GET /models, and cortex through it).
struct ModelLimits {
    int64_t context = 0;  // max prompt + completion tokens for one sequence
    int64_t input = 0;    // max prompt tokens
    int64_t output = 0;   // max completion tokens
};

struct ModelDescriptor {
    std::string id;                         // e.g. "Qwen/Qwen3-8B"
    std::string architecture;               // config.json model_type, e.g. "qwen3"
    std::vector<std::string> capabilities;  // {"text"} or {"text","vision"}
    bool tool_call = false;                 // vocabulary has tool-call markers
    bool reasoning = false;                 // vocabulary has reasoning markers
    ModelLimits limit;
    std::vector<int> devices;               // GPU indices; empty on CPU
    int64_t weight_bytes = 0;
    int64_t kv_pool_bytes = 0;
};

// Per-model queue figures for /health and admission.
struct ModelLoad {
    int64_t in_flight = 0;    // sequences running (prefill or decode)
    int64_t queue_depth = 0;  // admitted but waiting for KV blocks / a batch slot
};

// Sampling knobs; unset values come from the model's generation_config.json, then the engine's
// documented fallbacks (repetition penalty 1.1 over the last 64 tokens, max_tokens 8192 clipped
// to the context left).
struct SamplingParams {
    std::optional<float> temperature;
    std::optional<float> top_p;
    std::optional<int32_t> top_k;
    std::optional<float> min_p;
    std::optional<float> repetition_penalty;
    std::optional<float> presence_penalty;
    std::optional<float> frequency_penalty;
    std::optional<uint64_t> seed;
    std::map<int32_t, float> logit_bias;
    std::optional<int64_t> max_tokens;
    std::vector<std::string> stop;  // stop strings; never emitted to the client
    // vLLM's extension: an EOS token does not end the sequence (it goes on to max_tokens or a
    // stop string), so benchmarks get the output lengths they ask for.
    bool ignore_eos = false;
};

struct GenerateRequest {
    std::string request_id;               // for logs
    std::vector<int32_t> prompt_tokens;   // already rendered and tokenized by the caller
    SamplingParams sampling;
    nlohmann::json tools = nlohmann::json::array();  // OpenAI tools, for argument type coercion
    bool starts_in_reasoning = false;     // the rendered prompt left a reasoning block open
    std::string principal;                // "account/key" or "" for anonymous
};

enum class FinishReason { kStop, kLength, kToolCalls, kCancelled, kError };

struct Usage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t reasoning_tokens = 0;  // subset of completion_tokens
    int64_t cached_tokens = 0;     // prompt tokens served from the prefix cache
};

struct ToolCall {
    std::string id;         // "call_<hex>_<index>"
    std::string name;
    std::string arguments;  // JSON object text
};

struct EngineEvent {
    enum class Kind { kStarted, kTextDelta, kReasoningDelta, kToolCall, kFinish, kError };
    Kind kind = Kind::kTextDelta;
    std::string text;                  // kTextDelta / kReasoningDelta
    std::optional<ToolCall> tool_call; // kToolCall
    FinishReason finish_reason = FinishReason::kStop;  // kFinish
    Usage usage;                       // kFinish (and kError, as far as it got)
    std::optional<Error> error;        // kError: the request failed; no kFinish follows
};

using EventSink = std::function<void(EngineEvent)>;

// A chat conversation to render with the model's own template.
struct ChatRenderInput {
    nlohmann::json messages = nlohmann::json::array();  // OpenAI messages
    nlohmann::json tools = nlohmann::json::array();
    nlohmann::json template_kwargs = nlohmann::json::object();  // chat_template_kwargs
    bool add_generation_prompt = true;
};

struct RenderedPrompt {
    std::string text;
    bool starts_in_reasoning = false;  // the template opened a reasoning block (e.g. "<think>\n")
};

// Where a loaded model stands (neuron GET /models `status`; docs/design/fault-recovery.md).
enum class ModelHealth {
    kLoaded,      // serving
    kRecovering,  // a device fault poisoned it; the engine is unloading and reloading it
    kPoisoned,    // a device fault poisoned it and no recovery will run (the engine is gone)
    kUnloaded,    // unloaded, or the reload after a fault failed: this handle is dead for good
};

class LoadedModel {
public:
    virtual ~LoadedModel() = default;
    virtual ModelDescriptor descriptor() const = 0;
    virtual ModelLoad load() const = 0;
    // While not kLoaded, submit and the tokenizer calls fail: kModelRecovering (Retry-After)
    // when recovering or poisoned, kModelNotFound when unloaded.
    virtual ModelHealth health() const { return ModelHealth::kLoaded; }

    // Tokenizer and template of this model (immutable after load).
    virtual Result<std::vector<int32_t>> encode(const std::string& text,
                                                bool add_special_tokens) const = 0;
    virtual Result<std::string> decode(const std::vector<int32_t>& ids,
                                       bool skip_special_tokens) const = 0;
    // Errors: kTemplateRenderFailed with the template line and cause.
    virtual Result<RenderedPrompt> render_chat(const ChatRenderInput& input) const = 0;

    // Queues a request; events arrive on `sink` until exactly one kFinish or kError.
    // Errors before queueing: kContextLengthExceeded, kOverloaded, kInvalidRequest.
    virtual Result<uint64_t> submit(GenerateRequest request, EventSink sink) = 0;
    // Stops a request at the next step; its blocks are freed; a kFinish(kCancelled) follows.
    virtual void cancel(uint64_t id) = 0;
};

// Where and how to load: a resolved snapshot directory (HF layout: config.json,
// *.safetensors, tokenizer.json, tokenizer_config.json, chat template files).
struct LoadSpec {
    std::string model_id;
    std::string snapshot_dir;
    std::optional<std::string> quant;
    int tensor_parallel = 1;
    std::vector<int> devices;
};

class Engine {
public:
    virtual ~Engine() = default;
    // Synchronous; errors: kInvalidRequest (unsupported model_type naming the supported set),
    // kIo, kInsufficientVram, kCudaUnavailable.
    virtual Result<std::shared_ptr<LoadedModel>> load(const LoadSpec& spec) = 0;
    // Stops the model's scheduler (in-flight requests finish with kCancelled) and frees memory.
    virtual Status unload(const std::string& model_id) = 0;
};

}  // namespace helexa::engine
