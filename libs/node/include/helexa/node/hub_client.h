// Client for HuggingFace-compatible hubs (huggingface.co, registry mirrors): repo info with its
// siblings listing, and file downloads into the HF cache layout.
//
//   GET {endpoint}/api/models/{org}/{name}/revision/{rev}?blobs=true
//       -> {"sha": "<commit>", "siblings": [{"rfilename", "size"?, "lfs"?: {"sha256", "size"}}]}
//   GET {endpoint}/{org}/{name}/resolve/{commit}/{file}   (redirects followed, up to 5)
//
// Downloads send `Authorization: Bearer <token>` when the source has one, write to
// "<final>.incomplete", resume it with `Range: bytes=N-` (206 appends, 200 restarts), check the
// size and the SHA-256 when the listing gives them, then rename atomically into
// snapshots/<commit>/<file>; an interrupted download never leaves a file under the final name.
// Progress goes to the log (neuron::hub). File names from the listing are checked with
// safe_relative_path so a hostile listing cannot write outside the cache.
// Errors: kModelNotFound (404), kUpstream (401/403 naming auth_env, other statuses, checksum or
// size mismatch, transport), kTimeout, kIo (local file system).
//
// Thread-safety: a HubClient may be shared; each call is an independent coroutine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "helexa/common/result.h"
#include "helexa/net/client.h"
#include "helexa/node/config.h"
#include "helexa/node/model_source.h"

namespace helexa::node {

struct HubFile {
    std::string path;  // relative to the repo root
    std::optional<int64_t> size;
    std::optional<std::string> sha256;  // hex, lower case
};

struct RepoInfo {
    std::string revision;  // commit sha ("main" when the hub gives none)
    std::vector<HubFile> files;
    std::vector<std::string> file_names() const;
};

// Parses a revision listing body; kUpstream when it has no siblings array. Entries with unsafe
// names are dropped.
Result<RepoInfo> parse_repo_info(const std::string& body);

class HubClient {
public:
    explicit HubClient(boost::asio::any_io_executor executor, net::ClientOptions options = {});

    boost::asio::awaitable<Result<RepoInfo>> repo_info(const SourceConfig& source,
                                                      const std::string& repo_path,
                                                      const std::string& revision = "main");

    // Downloads `file` of `repo_path` at `revision` into the cache of `source` (unless already
    // there with the right size); returns the final path.
    boost::asio::awaitable<Result<std::string>> download(const SourceConfig& source,
                                                         const ModelSourceId& id,
                                                         const std::string& revision,
                                                         const HubFile& file);

private:
    net::Client client_;
};

}  // namespace helexa::node
