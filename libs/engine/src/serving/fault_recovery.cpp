#include "fault_recovery.h"

#include <utility>

namespace helexa::engine::detail {
namespace {

// Request ids handed out by a RecoverableModel: the load's generation above the scheduler's own
// id, so an id from before a reload never names a request of the reloaded model.
constexpr int kGenerationShift = 40;
constexpr uint64_t kInnerIdMask = (uint64_t{1} << kGenerationShift) - 1;
constexpr int64_t kRecoveringRetryAfterSecs = 2;  // features D9

}  // namespace

bool RecoverableModel::install(std::shared_ptr<RuntimeModel> model) {
    ModelDescriptor descriptor = model->descriptor();
    std::lock_guard lock(mu_);
    if (generation_ > 0 && health_ == ModelHealth::kUnloaded) {
        return false;
    }
    model_ = std::move(model);
    descriptor_ = std::move(descriptor);
    health_ = ModelHealth::kLoaded;
    fault_.reset();
    ++generation_;
    return true;
}

bool RecoverableModel::mark_faulted(const Error& fault) {
    std::lock_guard lock(mu_);
    if (health_ != ModelHealth::kLoaded) {
        return false;
    }
    health_ = ModelHealth::kRecovering;
    fault_ = fault;
    return true;
}

void RecoverableModel::mark_poisoned() {
    std::lock_guard lock(mu_);
    if (health_ == ModelHealth::kRecovering) {
        health_ = ModelHealth::kPoisoned;
    }
}

std::optional<Error> RecoverableModel::fault() const {
    std::lock_guard lock(mu_);
    return fault_;
}

std::shared_ptr<RuntimeModel> RecoverableModel::take() {
    std::lock_guard lock(mu_);
    return std::exchange(model_, nullptr);
}

std::shared_ptr<RuntimeModel> RecoverableModel::close() {
    std::lock_guard lock(mu_);
    health_ = ModelHealth::kUnloaded;
    return std::exchange(model_, nullptr);
}

Result<std::pair<std::shared_ptr<RuntimeModel>, uint64_t>> RecoverableModel::serving() const {
    std::lock_guard lock(mu_);
    switch (health_) {
        case ModelHealth::kLoaded:
            if (model_) {
                return std::make_pair(model_, generation_);
            }
            break;
        case ModelHealth::kRecovering:
        case ModelHealth::kPoisoned: {
            std::string why = fault_ ? fault_->full_message() : std::string("device fault");
            return fail(Error(ErrorCode::kModelRecovering,
                              "model '" + spec_.model_id + "' is recovering from a device fault (" +
                                  why + "); retry shortly")
                            .with_retry_after(kRecoveringRetryAfterSecs));
        }
        case ModelHealth::kUnloaded:
            break;
    }
    return fail(ErrorCode::kModelNotFound, "model '" + spec_.model_id + "' has been unloaded");
}

ModelDescriptor RecoverableModel::descriptor() const {
    std::lock_guard lock(mu_);
    return descriptor_;
}

ModelLoad RecoverableModel::load() const {
    std::shared_ptr<RuntimeModel> model;
    {
        std::lock_guard lock(mu_);
        model = model_;
    }
    return model ? model->load() : ModelLoad{};
}

ModelHealth RecoverableModel::health() const {
    std::lock_guard lock(mu_);
    return health_;
}

Result<std::vector<int32_t>> RecoverableModel::encode(const std::string& text,
                                                      bool add_special_tokens) const {
    auto s = serving();
    if (!s) {
        return tl::unexpected(std::move(s).error());
    }
    return s->first->encode(text, add_special_tokens);
}

Result<std::string> RecoverableModel::decode(const std::vector<int32_t>& ids,
                                             bool skip_special_tokens) const {
    auto s = serving();
    if (!s) {
        return tl::unexpected(std::move(s).error());
    }
    return s->first->decode(ids, skip_special_tokens);
}

Result<RenderedPrompt> RecoverableModel::render_chat(const ChatRenderInput& input) const {
    auto s = serving();
    if (!s) {
        return tl::unexpected(std::move(s).error());
    }
    return s->first->render_chat(input);
}

Result<uint64_t> RecoverableModel::submit(GenerateRequest request, EventSink sink) {
    auto s = serving();
    if (!s) {
        return tl::unexpected(std::move(s).error());
    }
    auto id = s->first->submit(std::move(request), std::move(sink));
    if (!id) {
        return id;
    }
    return (s->second << kGenerationShift) | (*id & kInnerIdMask);
}

void RecoverableModel::cancel(uint64_t id) {
    std::shared_ptr<RuntimeModel> model;
    {
        std::lock_guard lock(mu_);
        if ((id >> kGenerationShift) != generation_) {
            return;  // a request of an earlier load: it already ended when that load faulted
        }
        model = model_;
    }
    if (model) {
        model->cancel(id & kInnerIdMask);
    }
}

RecoveryWorker::RecoveryWorker(Job job) : job_(std::move(job)) {
    thread_ = std::thread([this] { thread_main(); });
}

RecoveryWorker::~RecoveryWorker() {
    stop();
}

bool RecoveryWorker::enqueue(std::weak_ptr<RecoverableModel> model) {
    std::lock_guard lock(mu_);
    if (stopping_) {
        return false;
    }
    queue_.push_back(std::move(model));
    cv_.notify_all();
    return true;
}

void RecoveryWorker::stop() {
    std::deque<std::weak_ptr<RecoverableModel>> dropped;
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        dropped.swap(queue_);
        cv_.notify_all();
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    for (auto& weak : dropped) {
        if (auto model = weak.lock()) {
            model->mark_poisoned();
        }
    }
}

void RecoveryWorker::thread_main() {
    while (true) {
        std::shared_ptr<RecoverableModel> model;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_) {
                return;
            }
            model = queue_.front().lock();
            queue_.pop_front();
        }
        if (model) {
            job_(model);
        }
    }
}

}  // namespace helexa::engine::detail
