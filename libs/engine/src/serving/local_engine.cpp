#include "helexa/engine/local_engine.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "../runtime/fault_injection.h"
#include "fault_recovery.h"
#include "helexa/common/logging.h"
#include "helexa/engine/parsed_text_stream.h"
#include "helexa/engine/runtime_model.h"
#include "helexa/engine/runtime_text.h"
#include "helexa/text/chat_template.h"
#include "helexa/text/tokenizer.h"
#include "helexa/text/tokenizer_probes.h"

namespace helexa::engine {
namespace {

// Streams token ids to text through the model's tokenizer, skipping special tokens (markers the
// text stage needs are not special in the vocabularies we serve; EOS is).
class TokenizerTextDecoder final : public TokenTextDecoder {
public:
    explicit TokenizerTextDecoder(text::StreamingDecoder decoder) : decoder_(std::move(decoder)) {}
    std::string push(int32_t id) override { return decoder_.push(id); }
    std::string flush() override { return decoder_.finish(); }

private:
    text::StreamingDecoder decoder_;
};

nlohmann::ordered_json to_ordered(const nlohmann::json& j) {
    return nlohmann::ordered_json::parse(j.dump());
}

}  // namespace

bool prompt_opens_reasoning(std::string_view prompt, std::string_view open,
                            std::string_view close) {
    if (open.empty()) {
        return false;
    }
    auto last_open = prompt.rfind(open);
    if (last_open == std::string_view::npos) {
        return false;
    }
    auto last_close = close.empty() ? std::string_view::npos : prompt.rfind(close);
    return last_close == std::string_view::npos || last_close < last_open;
}

LocalEngine::LocalEngine(LocalEngineOptions options)
    : options_(std::move(options)),
      debug_poison_armed_(std::make_shared<std::atomic<bool>>(
          options_.debug_poison_model.has_value() && !options_.debug_poison_model->empty())) {
    recovery_ = std::make_shared<detail::RecoveryWorker>(
        [this](const std::shared_ptr<detail::RecoverableModel>& handle) { recover(handle); });
}

LocalEngine::~LocalEngine() {
    // A reload in progress completes first; queued ones are dropped (those models stay poisoned).
    recovery_->stop();
    std::lock_guard lock(mutex_);
    models_.clear();
}

Result<std::shared_ptr<LoadedModel>> LocalEngine::load(const LoadSpec& spec) {
    std::lock_guard lock(mutex_);
    if (auto it = models_.find(spec.model_id); it != models_.end()) {
        return std::shared_ptr<LoadedModel>(it->second);
    }
    auto handle = std::make_shared<detail::RecoverableModel>(spec);
    auto model = build(spec, handle);
    if (!model) {
        return tl::unexpected(std::move(model).error());
    }
    handle->install(std::move(*model));
    models_[spec.model_id] = handle;
    return std::shared_ptr<LoadedModel>(handle);
}

Result<std::shared_ptr<RuntimeModel>> LocalEngine::build(
    const LoadSpec& spec, std::weak_ptr<detail::RecoverableModel> handle) {
    const std::filesystem::path dir(spec.snapshot_dir);
    auto runner = load_model_runner(dir, options_.runner);
    if (!runner) {
        return tl::unexpected(std::move(runner).error().with_context("loading " + spec.model_id));
    }
    if (options_.runner_decorator) {
        runner = options_.runner_decorator(spec, std::move(*runner));
        if (!runner) {
            return tl::unexpected(
                std::move(runner).error().with_context("loading " + spec.model_id));
        }
    }
    if (options_.debug_poison_model && *options_.debug_poison_model == spec.model_id) {
        runner = inject_device_fault(std::move(*runner), debug_poison_armed_);
    }
    auto tokenizer = text::Tokenizer::from_dir(dir);
    if (!tokenizer) {
        return tl::unexpected(
            std::move(tokenizer).error().with_context("loading the tokenizer of " + spec.model_id));
    }
    // A snapshot without a chat template still serves /v1/completions; chat then fails clearly.
    auto chat_template = text::ChatTemplate::load(dir);
    std::shared_ptr<const text::ChatTemplate> tmpl;
    std::optional<Error> template_error;
    if (chat_template) {
        tmpl = std::make_shared<const text::ChatTemplate>(std::move(*chat_template));
    } else {
        template_error = chat_template.error();
    }
    auto shared_tokenizer = std::make_shared<const text::Tokenizer>(std::move(*tokenizer));
    const text::VocabProbes probes = text::VocabProbes::probe(*shared_tokenizer);

    RuntimeModelParts parts;
    const CausalLmRunner& r = **runner;
    parts.descriptor.id = spec.model_id;
    parts.descriptor.architecture = r.config().model_type;
    parts.descriptor.capabilities = {"text"};
    parts.descriptor.tool_call = probes.tool_call.has_value();
    parts.descriptor.reasoning = probes.reasoning.has_value();
    parts.descriptor.limit.context = r.max_context_tokens();
    parts.descriptor.devices = spec.devices;
    parts.descriptor.weight_bytes = r.weight_bytes();
    parts.descriptor.kv_pool_bytes = r.kv_cache_bytes();
    parts.generation = r.generation_defaults();
    for (int32_t id : probes.eos_ids) {
        auto& eos = parts.generation.eos_token_ids;
        if (std::find(eos.begin(), eos.end(), id) == eos.end()) {
            eos.push_back(id);
        }
    }
    parts.scheduler = options_.scheduler;
    parts.runner = std::move(*runner);

    parts.encode = [shared_tokenizer](const std::string& s,
                                      bool add_special) -> Result<std::vector<int32_t>> {
        return shared_tokenizer->encode(s, add_special);
    };
    parts.decode = [shared_tokenizer](const std::vector<int32_t>& ids,
                                      bool skip_special) -> Result<std::string> {
        return shared_tokenizer->decode(ids, skip_special);
    };
    std::optional<text::MarkerPair> reasoning = probes.reasoning;
    parts.render_chat = [tmpl, template_error,
                         reasoning](const ChatRenderInput& input) -> Result<RenderedPrompt> {
        if (!tmpl) {
            return tl::unexpected(Error(ErrorCode::kTemplateRenderFailed,
                                        "the model has no usable chat template: " +
                                            template_error->full_message()));
        }
        text::ChatRenderContext ctx;
        ctx.messages = to_ordered(input.messages);
        if (input.tools.is_array() && !input.tools.empty()) {
            ctx.tools = to_ordered(input.tools);
        }
        ctx.add_generation_prompt = input.add_generation_prompt;
        if (input.template_kwargs.is_object()) {
            ctx.chat_template_kwargs = to_ordered(input.template_kwargs);
        }
        auto rendered = tmpl->render(ctx);
        if (!rendered) {
            return tl::unexpected(rendered.error());
        }
        RenderedPrompt out;
        out.starts_in_reasoning =
            reasoning && prompt_opens_reasoning(*rendered, reasoning->open, reasoning->close);
        out.text = std::move(*rendered);
        return out;
    };
    parts.text_decoder = [shared_tokenizer](const GenerateRequest&) {
        return std::make_unique<TokenizerTextDecoder>(shared_tokenizer->streaming_decoder(true));
    };
    parts.text_stream = parsed_text_stream_factory({probes.reasoning, probes.tool_call});

    // The runner is owned by the RuntimeModel and outlives its scheduler, which alone calls this
    // (on its stepping thread, where the device lives).
    const CausalLmRunner* runner_ptr = &r;
    parts.free_device_bytes = [runner_ptr]() -> std::optional<int64_t> {
        auto mem = runner_ptr->device_memory();
        return mem ? std::optional<int64_t>(mem->free_bytes) : std::nullopt;
    };
    std::weak_ptr<detail::RecoveryWorker> worker = recovery_;
    parts.on_device_fault = [handle, worker](const Error& fault) {
        auto model = handle.lock();
        if (!model || !model->mark_faulted(fault)) {
            return;
        }
        auto w = worker.lock();
        if (!w || !w->enqueue(model)) {
            model->mark_poisoned();
        }
    };

    auto model = RuntimeModel::create(std::move(parts));
    if (!model) {
        return tl::unexpected(std::move(model).error().with_context("starting " + spec.model_id));
    }
    return std::move(*model);
}

void LocalEngine::recover(const std::shared_ptr<detail::RecoverableModel>& handle) {
    static const auto kLog = log::get("neuron::engine");
    const LoadSpec& spec = handle->spec();
    const std::string fault =
        handle->fault() ? handle->fault()->full_message() : std::string("device fault");
    std::lock_guard lock(mutex_);
    auto it = models_.find(spec.model_id);
    if (it == models_.end() || it->second != handle) {
        return;  // unloaded while the recovery was queued
    }
    kLog->warn("model poisoned, reloading: model_id={} fault=\"{}\"", spec.model_id, fault);
    // A device fault takes the device's context down for every model on it, and the device can
    // be reset only once all of them have let go of it: stop them all first. Models that were
    // still serving are reloaded here; ones already recovering reload in their own turn.
    std::vector<std::shared_ptr<detail::RecoverableModel>> siblings;
    for (auto& [id, other] : models_) {
        if (other == handle || !share_device(other->spec(), spec)) {
            continue;
        }
        if (other->mark_faulted(Error(ErrorCode::kModelRecovering,
                                      "device fault of " + spec.model_id + " on a shared device"))) {
            siblings.push_back(other);
        }
        if (auto old = other->take()) {
            old->shutdown();
        }
    }
    if (auto old = handle->take()) {
        // Stops the poisoned scheduler and frees the runner (weights, KV pool) before the reload
        // allocates again.
        old->shutdown();
    }
    siblings.insert(siblings.begin(), handle);
    const bool injected_loss =
        options_.debug_device_lost && fault.find(kInjectedFaultMessage) != std::string::npos;
    std::vector<std::string> lost;  // the device did not come back for these
    for (const auto& model : siblings) {
        const LoadSpec& s = model->spec();
        const auto started = std::chrono::steady_clock::now();
        auto rebuilt = injected_loss
                           ? Result<std::shared_ptr<RuntimeModel>>(tl::unexpected(Error(
                                 ErrorCode::kCudaUnavailable,
                                 "device did not come back (injected by NEURON_DEBUG_DEVICE_LOST)")))
                           : build(s, model);
        if (!rebuilt && rebuilt.error().code() == ErrorCode::kCudaUnavailable &&
            options_.on_device_lost) {
            kLog->error("model reload failed, the device needs a process restart: model_id={} "
                        "fault=\"{}\" error=\"{}\"",
                        s.model_id, fault, rebuilt.error().full_message());
            lost.push_back(s.model_id);  // stays recovering until the restart
            continue;
        }
        if (!rebuilt) {
            models_.erase(s.model_id);
            model->close();
            kLog->warn("model reload failed, model unloaded: model_id={} fault=\"{}\" error=\"{}\"",
                       s.model_id, fault, rebuilt.error().full_message());
            continue;
        }
        model->install(std::move(*rebuilt));
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        kLog->info("model recovered: model_id={} reload_secs={:.2f}", s.model_id, secs);
    }
    if (!lost.empty()) {
        options_.on_device_lost(std::move(lost));
    }
}

bool LocalEngine::share_device(const LoadSpec& a, const LoadSpec& b) const {
    // No devices listed: the backend's default device, unless the backend has no device state.
    auto devices = [this](const LoadSpec& s) {
        if (!s.devices.empty()) {
            return s.devices;
        }
        return options_.runner.backend.kind == "cpu" ? std::vector<int>{}
                                                     : std::vector<int>{options_.runner.backend.device};
    };
    const auto da = devices(a);
    const auto db = devices(b);
    return std::any_of(da.begin(), da.end(), [&](int d) {
        return std::find(db.begin(), db.end(), d) != db.end();
    });
}

Status LocalEngine::unload(const std::string& model_id) {
    std::shared_ptr<detail::RecoverableModel> handle;
    {
        std::lock_guard lock(mutex_);
        auto it = models_.find(model_id);
        if (it == models_.end()) {
            return fail(ErrorCode::kModelNotFound,
                        fmt::format("model '{}' is not loaded", model_id));
        }
        handle = std::move(it->second);
        models_.erase(it);
    }
    if (auto model = handle->close()) {
        model->shutdown();
    }
    return ok();
}

}  // namespace helexa::engine
