// The HTTP server: accept loop, the connection table and bounded graceful shutdown. One
// connection's request/response cycle lives in connection.cpp.
#include "helexa/net/server.h"

#include <algorithm>
#include <future>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "helexa/common/logging.h"
#include "internal/server_impl.h"

namespace helexa::net {

using tcp = asio::ip::tcp;
using boost::system::error_code;
using detail::kTuple;

namespace {

// How long a force-closed connection gets to unwind before shutdown() returns anyway.
constexpr std::chrono::milliseconds kForceGrace{2'000};

std::string endpoint_string(const tcp::endpoint& ep) {
    auto addr = ep.address();
    if (addr.is_v6()) {
        return fmt::format("[{}]:{}", addr.to_string(), ep.port());
    }
    return fmt::format("{}:{}", addr.to_string(), ep.port());
}

}  // namespace

Server::Impl::Impl(IoPool& pool_in, ServerOptions opts, Router r)
    : pool(pool_in),
      io(pool_in.context()),
      options(std::move(opts)),
      router(std::move(r)),
      log(log::get(options.log_component)),
      acceptor(io),
      check_period(std::min({options.header_timeout, options.body_timeout, options.idle_timeout,
                             options.write_timeout})),
      empty_bell(io, 1) {}

// ---------------------------------------------------------------------------------------------
// Server::Impl

asio::awaitable<void> Server::Impl::accept_loop() {
    auto self = shared_from_this();
    for (;;) {
        // The connection's socket is created on (registered with the reactor of) the next
        // context in turn; its coroutine, timers and upstream exchanges then stay there.
        asio::any_io_executor target = pool.context(next_context).get_executor();
        next_context = (next_context + 1) % pool.size();
        auto [ec, socket] = co_await acceptor.async_accept(target, kTuple);
        if (stopping.load()) {
            break;
        }
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                break;
            }
            log->warn("accept failed: {}", ec.message());
            // Out of descriptors and the like: back off instead of spinning.
            asio::steady_timer backoff(io, std::chrono::milliseconds(50));
            co_await backoff.async_wait(kTuple);
            continue;
        }
        error_code eec;
        auto ep = socket.remote_endpoint(eec);
        std::string remote = eec ? std::string("unknown") : endpoint_string(ep);
        socket.set_option(tcp::no_delay(true), eec);
        auto conn = std::make_shared<Connection>(self, std::move(socket), std::move(remote));
        uint64_t id = 0;
        {
            std::lock_guard lock(mutex);
            id = next_id++;
        }
        register_connection(id, conn);
        asio::co_spawn(conn->executor(), conn->run(),
                       asio::bind_cancellation_slot(conn->cancel_signal().slot(),
                                                    [self, id, conn](std::exception_ptr) {
                                                        self->unregister_connection(id);
                                                    }));
    }
}

void Server::Impl::register_connection(uint64_t id, std::shared_ptr<Connection> conn) {
    std::lock_guard lock(mutex);
    connections.emplace(id, std::move(conn));
}

void Server::Impl::unregister_connection(uint64_t id) {
    bool now_empty = false;
    {
        std::lock_guard lock(mutex);
        connections.erase(id);
        now_empty = connections.empty();
    }
    if (now_empty) {
        (void)empty_bell.try_send(error_code{});
    }
}

std::vector<std::shared_ptr<Connection>> Server::Impl::snapshot() const {
    std::lock_guard lock(mutex);
    std::vector<std::shared_ptr<Connection>> out;
    for (const auto& [id, weak] : connections) {
        if (auto c = weak.lock()) {
            out.push_back(std::move(c));
        }
    }
    return out;
}

asio::awaitable<bool> Server::Impl::wait_empty(std::chrono::steady_clock::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        {
            std::lock_guard lock(mutex);
            if (connections.empty()) {
                co_return true;
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return false;
        }
        timer.expires_at(deadline);
        co_await (empty_bell.async_receive(kTuple) || timer.async_wait(kTuple));
    }
}

void Server::Impl::close_acceptor() {
    auto self = shared_from_this();
    asio::dispatch(io, [self] {
        error_code ec;
        self->acceptor.close(ec);
    });
}

void Server::Impl::force_close_all() {
    for (auto& conn : snapshot()) {
        asio::dispatch(conn->executor(), [conn] { conn->force_close(); });
    }
}

// ---------------------------------------------------------------------------------------------
// Server

Server::Server(IoPool& io, ServerOptions options, Router router)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(router))) {}

Server::~Server() {
    if (impl_->started.load() && !impl_->stopping.exchange(true)) {
        impl_->close_acceptor();
        impl_->force_close_all();
    }
}

Status Server::start() {
    if (impl_->started.exchange(true)) {
        return fail(ErrorCode::kConfig, "server already started");
    }
    const std::string& listen = impl_->options.listen;
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen.size()) {
        return fail(ErrorCode::kConfig, "listen address must be host:port, got '" + listen + "'");
    }
    std::string host = listen.substr(0, colon);
    std::string port_text = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned long port_num = 0;
    try {
        size_t used = 0;
        port_num = std::stoul(port_text, &used);
        if (used != port_text.size() || port_num > 65535) {
            throw std::out_of_range("port");
        }
    } catch (const std::exception&) {
        return fail(ErrorCode::kConfig, "bad port in listen address '" + listen + "'");
    }
    error_code ec;
    tcp::endpoint endpoint;
    auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (!ec) {
        endpoint = tcp::endpoint(addr, static_cast<uint16_t>(port_num));
    } else {
        // A host name (e.g. localhost): resolve once, synchronously, at start-up.
        tcp::resolver resolver(impl_->io);
        auto results = resolver.resolve(host, port_text, ec);
        if (ec || results.empty()) {
            return fail(ErrorCode::kConfig, "cannot resolve listen host '" + host + "': " +
                                                (ec ? ec.message() : "no addresses"));
        }
        endpoint = results.begin()->endpoint();
    }
    auto& acc = impl_->acceptor;
    acc.open(endpoint.protocol(), ec);
    if (!ec) {
        acc.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acc.bind(endpoint, ec);
    }
    if (!ec) {
        acc.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        error_code ignored;
        acc.close(ignored);
        return fail(ErrorCode::kIo, "cannot listen on " + listen + ": " + ec.message());
    }
    auto bound = acc.local_endpoint(ec);
    impl_->port.store(bound.port());
    impl_->local_address = endpoint_string(bound);
    impl_->log->info("listening on {}", impl_->local_address);
    asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
    return ok();
}

uint16_t Server::port() const {
    return impl_->port.load();
}

std::string Server::local_address() const {
    return impl_->local_address;
}

size_t Server::connection_count() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->connections.size();
}

asio::awaitable<void> Server::shutdown() {
    auto impl = impl_;
    if (!impl->started.load()) {
        co_return;
    }
    bool first = !impl->stopping.exchange(true);
    if (first) {
        impl->close_acceptor();
        for (auto& conn : impl->snapshot()) {
            asio::dispatch(conn->executor(), [conn] { conn->begin_shutdown(); });
        }
    }
    auto deadline = std::chrono::steady_clock::now() + impl->options.drain_timeout;
    bool drained = co_await impl->wait_empty(deadline);
    if (drained) {
        impl->log->info("server drained");
        co_return;
    }
    impl->log->warn("drain time over with {} connection(s) open: cancelling them",
                    impl->snapshot().size());
    impl->force_close_all();
    auto grace_deadline = std::chrono::steady_clock::now() + kForceGrace;
    bool unwound = co_await impl->wait_empty(grace_deadline);
    if (!unwound) {
        impl->log->warn("{} connection(s) did not unwind after cancellation",
                        impl->snapshot().size());
    }
}

void Server::stop() {
    std::promise<void> done;
    auto future = done.get_future();
    asio::co_spawn(impl_->io, shutdown(), [&done](std::exception_ptr) { done.set_value(); });
    future.wait();
}

}  // namespace helexa::net
