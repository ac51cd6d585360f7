// Model source ids (`scheme:org/name` or bare `org/name`) and the HuggingFace cache layout
//   <cache>/models--<org>--<name>/refs/main            -> "<revision>"
//   <cache>/models--<org>--<name>/snapshots/<revision>/<files>
// shared with the huggingface_hub tools, so a cache filled by `huggingface-cli` is used as is.
//
// Ids are validated so that no id can name a path outside the cache: org and name are limited to
// [A-Za-z0-9._-], never "." or "..", never starting with '.'; file names from a hub listing go
// through safe_relative_path (no absolute paths, no "..", no empty or odd segments).
// Thread-safety: pure functions, plus read-only file-system probes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/common/result.h"

namespace helexa::node {

struct ModelSourceId {
    std::string scheme;  // empty when the id was bare (before default substitution)
    std::string org;
    std::string name;

    // "org/name" — the repo path on any HF-compatible hub.
    std::string repo_path() const { return org + "/" + name; }
    // "scheme:org/name", or "org/name" when the scheme is empty.
    std::string to_string() const;
    bool operator==(const ModelSourceId&) const = default;
};

// Parses an id. Errors (kInvalidRequest) name the id and the rule it breaks: empty scheme,
// missing '/', more than one '/', a scheme containing '/', a name containing ':', characters
// outside [A-Za-z0-9._-], "." / ".." / leading '.' segments, over 256 bytes.
Result<ModelSourceId> parse_model_source_id(std::string_view text);

// The id with `default_scheme` substituted when it was bare.
ModelSourceId with_default_scheme(ModelSourceId id, const std::string& default_scheme);

// The id a model is known by in /models and in inference requests: "org/name" when it comes
// from the default source, else "scheme:org/name".
std::string canonical_model_id(const ModelSourceId& id, const std::string& default_scheme);

// "<cache>/models--<org>--<name>".
std::string repo_cache_dir(const std::string& cache_root, const ModelSourceId& id);

// True when `rel` is a plain relative path: segments of [A-Za-z0-9._+-=@ ], no "." or ".."
// segments, no leading '/', no backslash, at most 512 bytes.
bool safe_relative_path(std::string_view rel);

// True for a revision directory name (hex commit or a ref-like [A-Za-z0-9._-] name, no "..").
bool safe_revision(std::string_view rev);

struct LocalSnapshot {
    std::string revision;
    std::string dir;                 // snapshots/<revision>
    std::vector<std::string> files;  // relative paths of regular files (symlinks followed), sorted
};

// The snapshot refs/main points at; without refs/main, the only snapshot when there is exactly
// one. nullopt when the repo is not cached (or the ref is unusable).
std::optional<LocalSnapshot> find_local_snapshot(const std::string& cache_root,
                                                 const ModelSourceId& id);

// Writes refs/main atomically (temp file + rename). kIo on failure.
Status write_ref_main(const std::string& cache_root, const ModelSourceId& id,
                      const std::string& revision);

}  // namespace helexa::node
