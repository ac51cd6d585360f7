// TaskGroup: owns detached coroutines (pollers, background jobs, per-request side tasks) so that
// shutdown can cancel them and wait, bounded, for them to unwind. Each task runs on its own strand
// of the group's executor; an exception escaping a task is logged, never rethrown.
//
// Use:
//   net::TaskGroup tasks(io.get_executor());
//   tasks.spawn(poll_loop());
//   ... at shutdown: tasks.cancel_all(); bool all_done = co_await tasks.wait(2s);
//
// Thread-safety: every member is thread-safe. The group may be destroyed while tasks still run
// (they keep the shared state alive), but whatever the tasks reference must outlive them: cancel
// and wait first.
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace helexa::net {

namespace asio = boost::asio;

class TaskGroup {
public:
    explicit TaskGroup(asio::any_io_executor executor);
    ~TaskGroup();
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    // Starts `task` on a new strand. After cancel_all() new tasks are started already cancelled.
    void spawn(asio::awaitable<void> task);
    // Emits terminal cancellation to every running task (their current co_await fails with
    // operation_aborted and the next one throws).
    void cancel_all();
    // Completes when no task is running (true) or after `timeout` (false).
    asio::awaitable<bool> wait(std::chrono::milliseconds timeout);
    // Tasks running now.
    size_t size() const;

    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace helexa::net
