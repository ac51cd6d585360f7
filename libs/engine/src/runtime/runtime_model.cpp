#include "helexa/engine/runtime_model.h"

#include <algorithm>

namespace helexa::engine {

Result<std::shared_ptr<RuntimeModel>> RuntimeModel::create(RuntimeModelParts parts) {
    if (!parts.runner) {
        return fail(ErrorCode::kConfig, "runtime model '" + parts.descriptor.id +
                                            "': no model runner");
    }
    if (!parts.text_decoder) {
        return fail(ErrorCode::kConfig, "runtime model '" + parts.descriptor.id +
                                            "': no token text decoder");
    }
    const KvLayout& layout = parts.runner->kv_layout();
    if (layout.n_blocks < 1 || layout.block_size < 1) {
        return fail(ErrorCode::kConfig, "runtime model '" + parts.descriptor.id +
                                            "': the KV pool has no blocks");
    }

    std::shared_ptr<RuntimeModel> model(new RuntimeModel());
    model->runner_ = std::move(parts.runner);

    SchedulerModel sm;
    sm.generation = std::move(parts.generation);
    sm.context_limit = parts.descriptor.limit.context;
    sm.text_decoder = std::move(parts.text_decoder);
    sm.text_stream = std::move(parts.text_stream);
    sm.free_device_bytes = std::move(parts.free_device_bytes);
    sm.on_device_fault = std::move(parts.on_device_fault);
    model->scheduler_ =
        std::make_unique<Scheduler>(*model->runner_, std::move(sm), std::move(parts.scheduler));

    ModelLimits& limit = parts.descriptor.limit;
    const int64_t context = model->scheduler_->context_limit();
    limit.context = context;
    limit.input = limit.input > 0 ? std::min(limit.input, context - 1) : context - 1;
    limit.output = std::min(limit.output > 0 ? limit.output : kDefaultMaxTokens, context - 1);
    model->descriptor_ = std::move(parts.descriptor);
    model->encode_ = std::move(parts.encode);
    model->decode_ = std::move(parts.decode);
    model->render_chat_ = std::move(parts.render_chat);

    model->scheduler_->start();
    return model;
}

RuntimeModel::~RuntimeModel() {
    shutdown();
}

void RuntimeModel::shutdown() {
    if (scheduler_) {
        scheduler_->shutdown();
    }
}

Result<std::vector<int32_t>> RuntimeModel::encode(const std::string& text,
                                                  bool add_special_tokens) const {
    if (!encode_) {
        return fail(ErrorCode::kInternal, "model '" + descriptor_.id + "' has no tokenizer");
    }
    return encode_(text, add_special_tokens);
}

Result<std::string> RuntimeModel::decode(const std::vector<int32_t>& ids,
                                         bool skip_special_tokens) const {
    if (!decode_) {
        return fail(ErrorCode::kInternal, "model '" + descriptor_.id + "' has no tokenizer");
    }
    return decode_(ids, skip_special_tokens);
}

Result<RenderedPrompt> RuntimeModel::render_chat(const ChatRenderInput& input) const {
    if (!render_chat_) {
        return fail(ErrorCode::kInternal, "model '" + descriptor_.id + "' has no chat template");
    }
    return render_chat_(input);
}

Result<uint64_t> RuntimeModel::submit(GenerateRequest request, EventSink sink) {
    return scheduler_->submit(std::move(request), std::move(sink));
}

void RuntimeModel::cancel(uint64_t id) {
    scheduler_->cancel(id);
}

}  // namespace helexa::engine
