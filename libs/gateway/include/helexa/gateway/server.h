// CortexServer: the whole cortex daemon as a library object — the API listener (OpenAI +
// Anthropic surfaces), the metrics listener (/metrics), the fleet poller and the ledger-backed
// entitlement provider, on one io_context with a small thread pool.
// When to use: apps/cortex/main.cpp builds one from the parsed config; integration tests build
// one against in-process mock neurons (port 0 everywhere).
// Thread-safety: start/stop/port accessors are for the owning thread; the server's internals are
// safe across its I/O threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "helexa/common/result.h"
#include "helexa/gateway/clock.h"
#include "helexa/gateway/config.h"
#include "helexa/gateway/entitlements.h"
#include "helexa/gateway/fleet.h"

namespace helexa::gateway {

struct CortexOptions {
    CortexConfig config;
    // The catalogue to serve; when unset it is loaded from config.models_config (a missing file
    // is an empty catalogue, a broken one a start-up error).
    std::optional<Catalogue> catalogue;
    // Budget clock; SystemClock when null.
    std::shared_ptr<const Clock> clock;
    // Replaces the local, ledger-backed provider (tests, or a future remote provider).
    std::shared_ptr<EntitlementProvider> provider;
    int io_threads = 2;
    // Poll immediately at start and wait for the first round (so the fleet is known before the
    // first request). Tests and main both want this.
    bool initial_poll = true;
};

class CortexServer {
public:
    CortexServer();
    ~CortexServer();  // stop()
    CortexServer(const CortexServer&) = delete;
    CortexServer& operator=(const CortexServer&) = delete;

    // Loads the catalogue and the ledger, binds both listeners, starts the poller. Errors: kConfig
    // (catalogue, ledger, addresses), kIo (bind).
    Status start(CortexOptions options);
    Status start(const CortexConfig& config);

    uint16_t port() const;          // API listener
    uint16_t metrics_port() const;  // metrics listener

    // Graceful: stop accepting, drain in-flight requests (bounded), stop the poller. Idempotent.
    void stop();

    // Runs one poll round over every neuron now and waits for it (tests; `cortex status`).
    void poll_now();

    std::shared_ptr<const FleetSnapshot> fleet() const;
    std::shared_ptr<EntitlementProvider> entitlements() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace helexa::gateway
