// TaskGroup: each task on its own strand with its own cancellation signal; a doorbell channel
// wakes wait() whenever the group empties.
#include "helexa/net/task_group.h"

#include <map>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "helexa/common/logging.h"

namespace helexa::net {

namespace {

using Strand = asio::strand<asio::any_io_executor>;

struct Task {
    explicit Task(Strand s) : strand(std::move(s)) {}
    Strand strand;
    asio::cancellation_signal signal;  // touched only on `strand`
};

}  // namespace

struct TaskGroup::State {
    explicit State(asio::any_io_executor ex) : executor(ex), empty_bell(ex, 1) {}

    asio::any_io_executor executor;
    mutable std::mutex mutex;
    std::map<uint64_t, std::shared_ptr<Task>> tasks;
    uint64_t next_id = 0;
    bool cancelled = false;
    asio::experimental::concurrent_channel<void(boost::system::error_code)> empty_bell;
};

TaskGroup::TaskGroup(asio::any_io_executor executor)
    : state_(std::make_shared<State>(std::move(executor))) {}

TaskGroup::~TaskGroup() = default;

void TaskGroup::spawn(asio::awaitable<void> task) {
    auto t = std::make_shared<Task>(asio::make_strand(state_->executor));
    uint64_t id = 0;
    bool cancelled = false;
    {
        std::lock_guard lock(state_->mutex);
        id = state_->next_id++;
        state_->tasks.emplace(id, t);
        cancelled = state_->cancelled;
    }
    auto state = state_;
    asio::co_spawn(t->strand, std::move(task),
                   asio::bind_cancellation_slot(
                       t->signal.slot(), [state, id](std::exception_ptr e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const boost::system::system_error& se) {
                                   if (se.code() != asio::error::operation_aborted) {
                                       log::get("net::tasks")->warn("task failed: {}", se.what());
                                   }
                               } catch (const std::exception& ex) {
                                   log::get("net::tasks")->warn("task failed: {}", ex.what());
                               } catch (...) {
                                   log::get("net::tasks")->warn("task failed: unknown exception");
                               }
                           }
                           bool now_empty = false;
                           {
                               std::lock_guard lock(state->mutex);
                               state->tasks.erase(id);
                               now_empty = state->tasks.empty();
                           }
                           if (now_empty) {
                               (void)state->empty_bell.try_send(boost::system::error_code{});
                           }
                       }));
    if (cancelled) {
        asio::post(t->strand, [t] { t->signal.emit(asio::cancellation_type::terminal); });
    }
}

void TaskGroup::cancel_all() {
    std::vector<std::shared_ptr<Task>> tasks;
    {
        std::lock_guard lock(state_->mutex);
        state_->cancelled = true;
        for (auto& [id, t] : state_->tasks) {
            tasks.push_back(t);
        }
    }
    for (auto& t : tasks) {
        // cancellation_signal is not thread-safe: emit on the task's own strand.
        asio::dispatch(t->strand, [t] { t->signal.emit(asio::cancellation_type::terminal); });
    }
}

asio::awaitable<bool> TaskGroup::wait(std::chrono::milliseconds timeout) {
    using namespace asio::experimental::awaitable_operators;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        if (size() == 0) {
            co_return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return false;
        }
        timer.expires_at(deadline);
        // The bell is rung whenever the group becomes empty; a stale ring just loops once more.
        co_await (state_->empty_bell.async_receive(asio::as_tuple(asio::use_awaitable)) ||
                  timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
}

size_t TaskGroup::size() const {
    std::lock_guard lock(state_->mutex);
    return state_->tasks.size();
}

}  // namespace helexa::net
