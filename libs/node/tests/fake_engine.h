// FakeEngine: a scripted engine::Engine for the neuron tests. Each submit plays a script of
// events (with delays) on its own thread, the way a real scheduler thread would; it records
// submits, cancels, loads and unloads, and can inject failures (load errors, submit errors,
// template errors, a hanging unload, a stream held open until released).
// Tokenizer: one token per byte (+1 BOS id 1 when add_special_tokens), so counts are predictable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "helexa/engine/serving.h"

namespace helexa::node::testing {

struct ScriptStep {
    engine::EngineEvent event;
    std::chrono::milliseconds delay{0};
};

inline engine::EngineEvent text_event(std::string t) {
    engine::EngineEvent e;
    e.kind = engine::EngineEvent::Kind::kTextDelta;
    e.text = std::move(t);
    return e;
}
inline engine::EngineEvent reasoning_event(std::string t) {
    engine::EngineEvent e;
    e.kind = engine::EngineEvent::Kind::kReasoningDelta;
    e.text = std::move(t);
    return e;
}
inline engine::EngineEvent tool_event(std::string id, std::string name, std::string args) {
    engine::EngineEvent e;
    e.kind = engine::EngineEvent::Kind::kToolCall;
    e.tool_call = engine::ToolCall{std::move(id), std::move(name), std::move(args)};
    return e;
}
inline engine::EngineEvent finish_event(engine::FinishReason r, engine::Usage u = {}) {
    engine::EngineEvent e;
    e.kind = engine::EngineEvent::Kind::kFinish;
    e.finish_reason = r;
    e.usage = u;
    return e;
}
inline engine::EngineEvent error_event(Error err) {
    engine::EngineEvent e;
    e.kind = engine::EngineEvent::Kind::kError;
    e.error = std::move(err);
    return e;
}
inline engine::EngineEvent started_event() {
    engine::EngineEvent e;
    e.kind = engine::EngineEvent::Kind::kStarted;
    return e;
}

struct FakeControls {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<ScriptStep> script;  // empty -> the default "Hello world" script
    bool hold = false;               // streams wait after their first event until released
    std::optional<Error> submit_error;
    std::vector<engine::GenerateRequest> submits;
    std::vector<uint64_t> cancels;
    std::vector<engine::ChatRenderInput> renders;
    std::atomic<int64_t> running{0};

    void release() {
        std::lock_guard lock(mutex);
        hold = false;
        cv.notify_all();
    }
};

class FakeModel : public engine::LoadedModel {
public:
    FakeModel(engine::ModelDescriptor d, std::shared_ptr<FakeControls> c)
        : descriptor_(std::move(d)), controls_(std::move(c)) {}
    ~FakeModel() override {
        {
            std::lock_guard lock(controls_->mutex);
            for (auto& [_, flag] : cancelled_) {
                *flag = true;
            }
            controls_->hold = false;
            controls_->cv.notify_all();
        }
        std::lock_guard threads_lock(threads_mutex_);
        for (auto& t : threads_) {
            t.join();
        }
    }

    engine::ModelDescriptor descriptor() const override { return descriptor_; }
    engine::ModelLoad load() const override { return {controls_->running.load(), 0}; }

    Result<std::vector<int32_t>> encode(const std::string& text,
                                        bool add_special_tokens) const override {
        std::vector<int32_t> ids;
        if (add_special_tokens) {
            ids.push_back(1);
        }
        for (unsigned char c : text) {
            ids.push_back(static_cast<int32_t>(c) + 10);
        }
        return ids;
    }
    Result<std::string> decode(const std::vector<int32_t>& ids, bool) const override {
        std::string out;
        for (int32_t id : ids) {
            if (id >= 10 && id < 266) {
                out.push_back(static_cast<char>(id - 10));
            }
        }
        return out;
    }
    Result<engine::RenderedPrompt> render_chat(const engine::ChatRenderInput& in) const override {
        {
            std::lock_guard lock(controls_->mutex);
            controls_->renders.push_back(in);
        }
        std::string text;
        for (const auto& m : in.messages) {
            std::string content = m.contains("content") && m["content"].is_string()
                                      ? m["content"].get<std::string>()
                                      : std::string();
            if (content == "FAIL_TEMPLATE") {
                return fail(ErrorCode::kTemplateRenderFailed, "template line 3: boom");
            }
            // Appended piece by piece: `"<" + role` trips GCC 12's false -Wrestrict at -O3
            // (GCC bug 105329), an error under the release preset's -Werror.
            text += '<';
            text += m.value("role", std::string("?"));
            text += '>';
            text += content;
        }
        bool thinking = in.template_kwargs.value("enable_thinking", true);
        if (in.add_generation_prompt) {
            text += thinking ? "<assistant><think>" : "<assistant>";
        }
        return engine::RenderedPrompt{text, in.add_generation_prompt && thinking};
    }

    Result<uint64_t> submit(engine::GenerateRequest request, engine::EventSink sink) override {
        std::vector<ScriptStep> script;
        uint64_t id = 0;
        std::shared_ptr<std::atomic<bool>> flag;
        std::lock_guard threads_lock(threads_mutex_);
        {
            std::lock_guard lock(controls_->mutex);
            if (controls_->submit_error) {
                return fail(*controls_->submit_error);
            }
            controls_->submits.push_back(request);
            script = controls_->script;
            id = ++next_id_;
            flag = std::make_shared<std::atomic<bool>>(false);
            cancelled_[id] = flag;
        }
        auto n_prompt = static_cast<int64_t>(request.prompt_tokens.size());
        if (script.empty()) {
            script = {{started_event(), {}},
                      {text_event("Hello"), {}},
                      {text_event(" world"), {}},
                      {finish_event(engine::FinishReason::kStop, {n_prompt, 2, 0, 0}), {}}};
        }
        ++controls_->running;
        threads_.emplace_back([this, script, sink, flag, n_prompt] {
            bool first = true;
            for (const auto& step : script) {
                std::this_thread::sleep_for(step.delay);
                if (*flag) {
                    break;
                }
                auto ev = step.event;
                if (ev.kind == engine::EngineEvent::Kind::kFinish && ev.usage.prompt_tokens == 0) {
                    ev.usage.prompt_tokens = n_prompt;
                }
                sink(ev);
                if (ev.kind == engine::EngineEvent::Kind::kFinish ||
                    ev.kind == engine::EngineEvent::Kind::kError) {
                    --controls_->running;
                    return;
                }
                if (first) {
                    first = false;
                    std::unique_lock lock(controls_->mutex);
                    controls_->cv.wait(lock, [&] { return !controls_->hold || *flag; });
                }
            }
            sink(finish_event(engine::FinishReason::kCancelled, {n_prompt, 0, 0, 0}));
            --controls_->running;
        });
        return id;
    }

    void cancel(uint64_t id) override {
        std::lock_guard lock(controls_->mutex);
        controls_->cancels.push_back(id);
        if (auto it = cancelled_.find(id); it != cancelled_.end()) {
            *it->second = true;
        }
        controls_->cv.notify_all();
    }

private:
    engine::ModelDescriptor descriptor_;
    std::shared_ptr<FakeControls> controls_;
    uint64_t next_id_ = 0;
    std::map<uint64_t, std::shared_ptr<std::atomic<bool>>> cancelled_;
    std::mutex threads_mutex_;
    std::vector<std::thread> threads_;
};

class FakeEngine : public engine::Engine {
public:
    std::shared_ptr<FakeControls> controls = std::make_shared<FakeControls>();
    engine::ModelDescriptor descriptor_template = [] {
        engine::ModelDescriptor d;
        d.architecture = "qwen3";
        d.capabilities = {"text"};
        d.tool_call = true;
        d.reasoning = true;
        d.limit = {4096, 2048, 2048};
        d.weight_bytes = 100 * 1024 * 1024;
        return d;
    }();
    std::optional<Error> load_error;
    std::chrono::milliseconds load_delay{0};
    bool unload_hangs = false;

    Result<std::shared_ptr<engine::LoadedModel>> load(const engine::LoadSpec& spec) override {
        std::this_thread::sleep_for(load_delay);
        std::lock_guard lock(mutex_);
        loads.push_back(spec);
        if (load_error) {
            return fail(*load_error);
        }
        auto d = descriptor_template;
        d.id = spec.model_id;
        auto m = std::make_shared<FakeModel>(d, controls);
        models_[spec.model_id] = m;
        return std::shared_ptr<engine::LoadedModel>(m);
    }

    Status unload(const std::string& model_id) override {
        if (unload_hangs) {
            std::this_thread::sleep_for(std::chrono::seconds(3));
        }
        std::lock_guard lock(mutex_);
        unloads.push_back(model_id);
        models_.erase(model_id);
        return ok();
    }

    std::vector<engine::LoadSpec> loads_snapshot() {
        std::lock_guard lock(mutex_);
        return loads;
    }
    std::vector<std::string> unloads_snapshot() {
        std::lock_guard lock(mutex_);
        return unloads;
    }

    std::vector<engine::LoadSpec> loads;
    std::vector<std::string> unloads;

private:
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<FakeModel>> models_;
};

}  // namespace helexa::node::testing
