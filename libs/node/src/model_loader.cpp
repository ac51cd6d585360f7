// The load path behind POST /models/load and activation.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "helexa/net/deadline.h"
#include "helexa/node/model_source.h"
#include "server_state.h"

namespace helexa::node {

namespace fs = std::filesystem;

namespace {

struct Resolved {
    engine::LoadSpec spec;
};

using ResolveResult = tl::expected<Resolved, LoadOutcome>;

LoadOutcome failed(std::string id, Error error) {
    LoadOutcome o;
    o.model_id = std::move(id);
    o.error = std::move(error);
    return o;
}

LoadOutcome rejected(std::string id, PreflightRejection rejection) {
    LoadOutcome o;
    o.model_id = std::move(id);
    o.preflight = std::move(rejection);
    return o;
}

bool has_file(const std::vector<std::string>& files, std::string_view name) {
    return std::find(files.begin(), files.end(), name) != files.end();
}

// GGUF repos carry no tokenizer.json: fetch it from the base repo (the -GGUF suffix stripped)
// into that repo's own cache, then place a copy beside the GGUF weights for the engine.
asio::awaitable<Status> ensure_gguf_tokenizer(State& state, const SourceConfig& source,
                                              const ModelSourceId& id, const std::string& dir,
                                              const std::string& base_repo) {
    std::error_code ec;
    if (fs::exists(fs::path(dir) / "tokenizer.json", ec)) {
        co_return ok();
    }
    auto base = parse_model_source_id(base_repo);
    if (!base) {
        co_return fail(std::move(base).error());
    }
    base->scheme = id.scheme;
    std::string found;
    if (auto local = find_local_snapshot(source.cache_dir, *base);
        local && has_file(local->files, "tokenizer.json")) {
        found = (fs::path(local->dir) / "tokenizer.json").string();
    } else {
        auto info = co_await state.hub->repo_info(source, base->repo_path());
        if (!info) {
            co_return fail(std::move(info).error().with_context(
                fmt::format("fetching tokenizer.json from base repo {}", base_repo)));
        }
        for (const auto& f : info->files) {
            if (f.path == "tokenizer.json" || f.path == "tokenizer_config.json") {
                auto path = co_await state.hub->download(source, *base, info->revision, f);
                if (!path) {
                    co_return fail(std::move(path).error().with_context(
                        fmt::format("fetching {} from base repo {}", f.path, base_repo)));
                }
                if (f.path == "tokenizer.json") {
                    found = *path;
                }
            }
        }
        if (found.empty()) {
            co_return fail(ErrorCode::kInvalidRequest,
                           fmt::format("base repo {} has no tokenizer.json", base_repo));
        }
        if (auto st = write_ref_main(source.cache_dir, *base, info->revision); !st) {
            co_return st;
        }
    }
    fs::copy_file(found, fs::path(dir) / "tokenizer.json", fs::copy_options::skip_existing, ec);
    if (ec) {
        co_return fail(ErrorCode::kIo, fmt::format("copy tokenizer.json into {}: {}", dir,
                                                   ec.message()));
    }
    co_return ok();
}

asio::awaitable<ResolveResult> resolve(State& state, const wire::ModelSpec& spec,
                                       const ModelSourceId& id, const std::string& canonical) {
    const auto& source = state.config.sources.at(id.scheme);
    int64_t tp = spec.tensor_parallel.value_or(1);
    std::string qualified = id.to_string();
    engine::LoadSpec load;
    load.model_id = canonical;
    load.tensor_parallel = static_cast<int>(tp);
    if (spec.devices) {
        for (auto d : *spec.devices) {
            load.devices.push_back(static_cast<int>(d));
        }
    }

    std::optional<PlacementPlan> plan;
    std::string dir;
    if (auto local = find_local_snapshot(source.cache_dir, id);
        local && classify_repo(local->files) != SourceFormat::kEmpty) {
        auto p = preflight(local->files, qualified, id.repo_path(), spec.quant, tp);
        if (!p) {
            co_return tl::unexpected(rejected(canonical, std::move(p).error()));
        }
        plan = std::move(*p);
        dir = local->dir;
        state.log->info("load {}: using cached snapshot {}", canonical, dir);
    } else {
        auto info = co_await state.hub->repo_info(source, id.repo_path());
        if (!info) {
            const auto& e = info.error();
            std::string kind = e.code() == ErrorCode::kModelNotFound ? "repo_not_found"
                                                                     : "repo_fetch_failed";
            co_return tl::unexpected(rejected(
                canonical, PreflightRejection{{kind, qualified, std::nullopt}, e.full_message()}));
        }
        auto p = preflight(info->file_names(), qualified, id.repo_path(), spec.quant, tp);
        if (!p) {
            co_return tl::unexpected(rejected(canonical, std::move(p).error()));
        }
        plan = std::move(*p);
        std::vector<std::string> wanted = plan->weight_files;
        wanted.insert(wanted.end(), plan->support_files.begin(), plan->support_files.end());
        for (const auto& f : info->files) {
            if (!has_file(wanted, f.path)) {
                continue;
            }
            auto path = co_await state.hub->download(source, id, info->revision, f);
            if (!path) {
                co_return tl::unexpected(failed(canonical, std::move(path).error()));
            }
        }
        if (auto st = write_ref_main(source.cache_dir, id, info->revision); !st) {
            co_return tl::unexpected(failed(canonical, std::move(st).error()));
        }
        dir = (fs::path(repo_cache_dir(source.cache_dir, id)) / "snapshots" / info->revision)
                  .string();
    }
    if (plan->use_gguf && plan->tokenizer_repo) {
        auto st = co_await ensure_gguf_tokenizer(state, source, id, dir, *plan->tokenizer_repo);
        if (!st) {
            co_return tl::unexpected(failed(canonical, std::move(st).error()));
        }
    }
    load.snapshot_dir = dir;
    load.quant = plan->use_gguf ? (plan->quant ? plan->quant : spec.quant) : spec.quant;
    co_return Resolved{std::move(load)};
}

}  // namespace

std::string registry_key(const State& state, const std::string& requested) {
    auto id = parse_model_source_id(requested);
    if (!id) {
        return requested;
    }
    return canonical_model_id(*id, state.config.default_source);
}

asio::awaitable<LoadOutcome> load_model(std::shared_ptr<State> state, wire::ModelSpec spec) {
    if (spec.harness && !spec.harness->empty() &&
        std::find(state->config.harnesses.begin(), state->config.harnesses.end(), *spec.harness) ==
            state->config.harnesses.end()) {
        co_return failed(spec.model_id,
                         Error(ErrorCode::kInvalidRequest,
                               fmt::format("unknown harness '{}' (configured: {})", *spec.harness,
                                           fmt::join(state->config.harnesses, ", "))));
    }
    if (state->cuda_reason) {
        co_return failed(spec.model_id, Error(ErrorCode::kCudaUnavailable, *state->cuda_reason));
    }
    if (!state->engine) {
        co_return failed(spec.model_id,
                         service_unavailable_error("no inference engine in this neuron", 5));
    }
    auto parsed = parse_model_source_id(spec.model_id);
    if (!parsed) {
        co_return failed(spec.model_id, std::move(parsed).error());
    }
    auto id = with_default_scheme(*parsed, state->config.default_source);
    if (!state->config.sources.contains(id.scheme)) {
        std::vector<std::string> known;
        for (const auto& [name, _] : state->config.sources) {
            known.push_back(name);
        }
        co_return failed(spec.model_id,
                         Error(ErrorCode::kInvalidRequest,
                               fmt::format("unknown source '{}' in '{}' (configured: {})",
                                           id.scheme, spec.model_id, fmt::join(known, ", "))));
    }
    std::string canonical = canonical_model_id(id, state->config.default_source);
    // A second load of a model that is loading waits for the first (racing cold loads).
    while (!state->registry.begin_loading(canonical, spec)) {
        auto existing = state->registry.find(canonical);
        if (existing && existing->status != wire::ModelStatus::kLoading) {
            LoadOutcome o;
            o.already_loaded = true;
            o.model_id = canonical;
            co_return o;
        }
        co_await net::sleep_for(std::chrono::milliseconds(100));
    }
    state->log->info("loading {} (quant {}, tp {})", canonical, spec.quant.value_or("-"),
                     spec.tensor_parallel.value_or(1));
    auto started = std::chrono::steady_clock::now();
    auto resolved = co_await resolve(*state, spec, id, canonical);
    if (!resolved) {
        state->registry.abandon(canonical);
        auto outcome = std::move(resolved).error();
        if (outcome.preflight) {
            state->log->warn("load {} rejected: reason={} detail={}", canonical,
                             outcome.preflight->error.kind, outcome.preflight->detail);
        } else if (outcome.error) {
            state->log->warn("load {} failed: {}", canonical, outcome.error->full_message());
        }
        co_return outcome;
    }
    auto engine = state->engine;
    auto load_spec = resolved->spec;
    auto job = [engine, load_spec] { return engine->load(load_spec); };
    auto model = co_await run_blocking(*state->load_pool, state->io->context().get_executor(),
                                       std::move(job));
    if (!model) {
        state->registry.abandon(canonical);
        state->log->warn("load {} failed: {}", canonical, model.error().full_message());
        co_return failed(canonical, std::move(model).error());
    }
    state->registry.finish_loading(canonical, std::move(*model));
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    state->log->info("loaded {} in {:.1f} s", canonical, secs);
    LoadOutcome o;
    o.model_id = canonical;
    co_return o;
}

}  // namespace helexa::node
