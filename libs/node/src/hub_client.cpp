#include "helexa/node/hub_client.h"

#include <openssl/evp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "helexa/common/logging.h"
#include "helexa/net/http.h"

namespace helexa::node {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::shared_ptr<spdlog::logger>& hub_log() {
    static const auto kLog = log::get("neuron::hub");
    return kLog;
}

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
public:
    Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
    }
    void update(std::string_view bytes) { EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()); }
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx_.get(), md, &n);
        std::string out;
        for (unsigned i = 0; i < n; ++i) {
            out += fmt::format("{:02x}", md[i]);
        }
        return out;
    }

private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

std::string url_path_escape(std::string_view path) {
    std::string out;
    for (unsigned char c : path) {
        bool plain = std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~';
        out += plain ? std::string(1, static_cast<char>(c)) : fmt::format("%{:02X}", c);
    }
    return out;
}

net::Headers auth_headers(const SourceConfig& source) {
    net::Headers h;
    if (source.token && !source.token->empty()) {
        h.set("Authorization", "Bearer " + *source.token);
    }
    return h;
}

Error status_error(const SourceConfig& source, int status, const std::string& what) {
    if (status == 404) {
        return Error(ErrorCode::kModelNotFound,
                     fmt::format("{} not found on {} (404)", what, source.endpoint));
    }
    if (status == 401 || status == 403) {
        return Error(ErrorCode::kUpstream,
                     fmt::format("{} refused access to {} ({}); {}", source.endpoint, what, status,
                                 source.auth_env ? fmt::format("check the token in ${}",
                                                               *source.auth_env)
                                                 : std::string("configure auth_env for this "
                                                               "source")));
    }
    return Error(ErrorCode::kUpstream,
                 fmt::format("{} answered {} for {}", source.endpoint, status, what));
}

// Resolves a redirect target against the URL it came from.
std::string resolve_location(const std::string& base, std::string_view location) {
    if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) {
        return std::string(location);
    }
    auto scheme_end = base.find("://");
    auto host_end = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    std::string origin = host_end == std::string::npos ? base : base.substr(0, host_end);
    if (!location.empty() && location.front() == '/') {
        return origin + std::string(location);
    }
    auto dir = base.rfind('/');
    return base.substr(0, dir + 1) + std::string(location);
}

}  // namespace

std::vector<std::string> RepoInfo::file_names() const {
    std::vector<std::string> out;
    out.reserve(files.size());
    for (const auto& f : files) {
        out.push_back(f.path);
    }
    return out;
}

Result<RepoInfo> parse_repo_info(const std::string& body) {
    auto j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return fail(ErrorCode::kUpstream, "hub repo info is not a JSON object");
    }
    auto siblings = j.find("siblings");
    if (siblings == j.end() || !siblings->is_array()) {
        return fail(ErrorCode::kUpstream, "hub repo info has no 'siblings' array");
    }
    RepoInfo info;
    info.revision = "main";
    if (auto sha = j.find("sha"); sha != j.end() && sha->is_string() &&
                                  safe_revision(sha->get<std::string>())) {
        info.revision = sha->get<std::string>();
    }
    for (const auto& s : *siblings) {
        if (!s.is_object()) {
            continue;
        }
        auto name = s.find("rfilename");
        if (name == s.end() || !name->is_string() || !safe_relative_path(name->get<std::string>())) {
            continue;
        }
        HubFile f;
        f.path = name->get<std::string>();
        if (auto size = s.find("size"); size != s.end() && size->is_number_unsigned()) {
            f.size = size->get<int64_t>();
        }
        if (auto lfs = s.find("lfs"); lfs != s.end() && lfs->is_object()) {
            if (auto sha = lfs->find("sha256"); sha != lfs->end() && sha->is_string()) {
                f.sha256 = sha->get<std::string>();
            }
            if (auto size = lfs->find("size"); size != lfs->end() && size->is_number_unsigned()) {
                f.size = size->get<int64_t>();
            }
        }
        info.files.push_back(std::move(f));
    }
    return info;
}

HubClient::HubClient(asio::any_io_executor executor, net::ClientOptions options)
    : client_(std::move(executor), std::move(options)) {}

asio::awaitable<Result<RepoInfo>> HubClient::repo_info(const SourceConfig& source,
                                                      const std::string& repo_path,
                                                      const std::string& revision) {
    auto url = fmt::format("{}/api/models/{}/revision/{}?blobs=true", source.endpoint,
                           url_path_escape(repo_path), url_path_escape(revision));
    auto res = co_await client_.get(url, auth_headers(source));
    if (!res) {
        co_return fail(std::move(res).error().with_context("listing " + repo_path));
    }
    if (res->status != 200) {
        co_return fail(status_error(source, res->status, "repo " + repo_path));
    }
    co_return parse_repo_info(res->body);
}

asio::awaitable<Result<std::string>> HubClient::download(const SourceConfig& source,
                                                         const ModelSourceId& id,
                                                         const std::string& revision,
                                                         const HubFile& file) {
    if (!safe_relative_path(file.path) || !safe_revision(revision)) {
        co_return fail(ErrorCode::kUpstream, fmt::format("unsafe file name '{}'", file.path));
    }
    fs::path final_path =
        fs::path(repo_cache_dir(source.cache_dir, id)) / "snapshots" / revision / file.path;
    fs::path temp_path = final_path.string() + ".incomplete";
    std::error_code ec;
    if (fs::is_regular_file(final_path, ec) &&
        (!file.size || static_cast<int64_t>(fs::file_size(final_path, ec)) == *file.size)) {
        co_return final_path.string();
    }
    fs::create_directories(final_path.parent_path(), ec);
    if (ec) {
        co_return fail(ErrorCode::kIo, fmt::format("create {}: {}",
                                                   final_path.parent_path().string(),
                                                   ec.message()));
    }
    int64_t have = fs::exists(temp_path, ec) ? static_cast<int64_t>(fs::file_size(temp_path, ec))
                                             : 0;
    if (ec) {
        have = 0;
    }
    std::string url = fmt::format("{}/{}/resolve/{}/{}", source.endpoint,
                                  url_path_escape(id.repo_path()), revision,
                                  url_path_escape(file.path));
    std::string what = fmt::format("{}/{}", id.repo_path(), file.path);
    std::optional<net::StreamedResponse> stream;
    for (int hop = 0; hop < 6; ++hop) {
        net::ClientRequest req;
        req.url = url;
        req.headers = auth_headers(source);
        if (have > 0) {
            req.headers.set("Range", fmt::format("bytes={}-", have));
        }
        auto st = co_await client_.stream(std::move(req));
        if (!st) {
            co_return fail(std::move(st).error().with_context("downloading " + what));
        }
        int status = st->status();
        if (status >= 300 && status < 400) {
            auto location = st->headers().get("Location");
            if (!location) {
                co_return fail(ErrorCode::kUpstream,
                               fmt::format("redirect {} without Location for {}", status, what));
            }
            url = resolve_location(url, *location);
            continue;
        }
        if (status == 416 && have > 0) {  // our partial file is stale: start over
            fs::remove(temp_path, ec);
            have = 0;
            continue;
        }
        if (status != 200 && status != 206) {
            co_return fail(status_error(source, status, "file " + what));
        }
        if (status == 200) {
            have = 0;  // the server ignored the range: restart from scratch
        }
        stream.emplace(std::move(*st));
        break;
    }
    if (!stream) {
        co_return fail(ErrorCode::kUpstream, fmt::format("too many redirects for {}", what));
    }

    Sha256 hash;
    if (have > 0 && file.sha256) {
        std::ifstream existing(temp_path, std::ios::binary);
        std::string buf(1 << 16, '\0');
        while (existing.read(buf.data(), static_cast<std::streamsize>(buf.size())) ||
               existing.gcount() > 0) {
            hash.update(std::string_view(buf.data(), static_cast<size_t>(existing.gcount())));
        }
    }
    std::ofstream out(temp_path, have > 0 ? std::ios::binary | std::ios::app
                                          : std::ios::binary | std::ios::trunc);
    if (!out) {
        co_return fail(ErrorCode::kIo, fmt::format("open {}", temp_path.string()));
    }
    if (have > 0) {
        hub_log()->info("resuming {} at {} bytes", what, have);
    }
    int64_t written = have;
    auto last_log = std::chrono::steady_clock::now();
    for (;;) {
        auto piece = co_await stream->next();
        if (!piece) {
            out.flush();
            co_return fail(std::move(piece).error().with_context(
                fmt::format("downloading {} ({} bytes kept for resume)", what, written)));
        }
        if (!*piece) {
            break;
        }
        const std::string& bytes = **piece;
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) {
            co_return fail(ErrorCode::kIo, fmt::format("write {}", temp_path.string()));
        }
        if (file.sha256) {
            hash.update(bytes);
        }
        written += static_cast<int64_t>(bytes.size());
        auto now = std::chrono::steady_clock::now();
        if (now - last_log > std::chrono::seconds(5)) {
            last_log = now;
            hub_log()->info("downloading {}: {} / {} bytes", what, written,
                            file.size ? std::to_string(*file.size) : std::string("?"));
        }
    }
    out.close();
    if (file.size && written != *file.size) {
        co_return fail(ErrorCode::kUpstream,
                       fmt::format("size mismatch for {}: got {} bytes, listing says {}", what,
                                   written, *file.size));
    }
    if (file.sha256) {
        auto digest = hash.hex();
        if (digest != *file.sha256) {
            fs::remove(temp_path, ec);
            co_return fail(ErrorCode::kUpstream,
                           fmt::format("checksum mismatch for {}: sha256 {} != {}", what, digest,
                                       *file.sha256));
        }
    }
    fs::rename(temp_path, final_path, ec);
    if (ec) {
        co_return fail(ErrorCode::kIo,
                       fmt::format("rename into {}: {}", final_path.string(), ec.message()));
    }
    hub_log()->info("downloaded {} ({} bytes)", what, written);
    co_return final_path.string();
}

}  // namespace helexa::node
