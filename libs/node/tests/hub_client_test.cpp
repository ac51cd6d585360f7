// HubClient against a local mock hub: listing, download into the HF layout, resume with Range,
// auth header, 404 / 401, checksum mismatch leaving no final file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "helexa/node/hub_client.h"
#include "mock_hub.h"

namespace helexa::node {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using testing::MockHub;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class HubClientTest : public ::testing::Test {
protected:
    void SetUp() override {
        cache_ = fs::temp_directory_path() / ("helexa-hub-" + std::to_string(::getpid()) + "-" +
                                              ::testing::UnitTest::GetInstance()
                                                  ->current_test_info()
                                                  ->name());
        fs::remove_all(cache_);
        weights_ = std::string(200'000, 'w');
        for (size_t i = 0; i < weights_.size(); ++i) {
            weights_[i] = static_cast<char>('a' + i % 26);
        }
        hub_.repos["org/model"] = {{"config.json", R"({"model_type":"qwen3"})"},
                                   {"model.safetensors", weights_}};
        hub_.repos["org/secret"] = {{"config.json", "{}"}};
        hub_.private_repo = "org/secret";
        hub_.start();
        io_.start();
        source_.scheme = "huggingface";
        source_.endpoint = hub_.endpoint();
        source_.cache_dir = cache_.string();
        source_.auth_env = "HF_TOKEN";
    }
    void TearDown() override {
        hub_.stop();
        io_.stop();
        io_.join();
        fs::remove_all(cache_);
    }

    template <typename T>
    T run(asio::awaitable<T> aw) {
        return asio::co_spawn(io_.context(), std::move(aw), asio::use_future).get();
    }

    net::IoPool io_{2};
    MockHub hub_{io_};
    HubClient client_{io_.context().get_executor()};
    SourceConfig source_;
    fs::path cache_;
    std::string weights_;
};

TEST_F(HubClientTest, ListsSiblingsWithSizesAndChecksums) {
    auto info = run(client_.repo_info(source_, "org/model"));
    ASSERT_TRUE(info) << info.error().full_message();
    EXPECT_EQ(info->revision, "0123abcd");
    ASSERT_EQ(info->files.size(), 2U);
    EXPECT_EQ(info->file_names(), (std::vector<std::string>{"config.json", "model.safetensors"}));
    EXPECT_EQ(info->files[1].size, std::optional<int64_t>(200'000));
    EXPECT_EQ(info->files[1].sha256, std::optional<std::string>(testing::sha256_hex(weights_)));
    EXPECT_EQ(hub_.seen().back().path, "/api/models/org/model/revision/main");
}

TEST_F(HubClientTest, DownloadsIntoTheCacheLayout) {
    auto id = *parse_model_source_id("org/model");
    auto info = run(client_.repo_info(source_, "org/model"));
    ASSERT_TRUE(info);
    for (const auto& f : info->files) {
        auto path = run(client_.download(source_, id, info->revision, f));
        ASSERT_TRUE(path) << path.error().full_message();
    }
    ASSERT_TRUE(write_ref_main(cache_.string(), id, info->revision));
    auto snap = find_local_snapshot(cache_.string(), id);
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->revision, "0123abcd");
    EXPECT_EQ(read_file(fs::path(snap->dir) / "model.safetensors"), weights_);
    EXPECT_TRUE(hub_.seen().back().authorization.empty());  // no token configured
    // A second download of a complete file is a no-op.
    auto n_seen = hub_.seen().size();
    ASSERT_TRUE(run(client_.download(source_, id, info->revision, info->files[1])));
    EXPECT_EQ(hub_.seen().size(), n_seen);
}

TEST_F(HubClientTest, ResumesAnInterruptedDownload) {
    auto id = *parse_model_source_id("org/model");
    auto info = run(client_.repo_info(source_, "org/model"));
    ASSERT_TRUE(info);
    fs::path snap = cache_ / "models--org--model" / "snapshots" / info->revision;
    fs::create_directories(snap);
    std::ofstream(snap / "model.safetensors.incomplete", std::ios::binary)
        << weights_.substr(0, 70'000);
    auto path = run(client_.download(source_, id, info->revision, info->files[1]));
    ASSERT_TRUE(path) << path.error().full_message();
    EXPECT_EQ(hub_.seen().back().range, "bytes=70000-");
    EXPECT_EQ(read_file(*path), weights_);  // checksum verified over both parts
    EXPECT_FALSE(fs::exists(snap / "model.safetensors.incomplete"));
}

TEST_F(HubClientTest, ChecksumMismatchLeavesNoFinalFile) {
    hub_.corrupt_sha = true;
    auto id = *parse_model_source_id("org/model");
    auto info = run(client_.repo_info(source_, "org/model"));
    ASSERT_TRUE(info);
    auto path = run(client_.download(source_, id, info->revision, info->files[1]));
    ASSERT_FALSE(path);
    EXPECT_EQ(path.error().code(), ErrorCode::kUpstream);
    EXPECT_NE(path.error().message().find("checksum mismatch"), std::string::npos);
    fs::path snap = cache_ / "models--org--model" / "snapshots" / info->revision;
    EXPECT_FALSE(fs::exists(snap / "model.safetensors"));
    EXPECT_FALSE(fs::exists(snap / "model.safetensors.incomplete"));
}

TEST_F(HubClientTest, NotFoundAndUnauthorised) {
    auto missing = run(client_.repo_info(source_, "org/nothing"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kModelNotFound);

    auto denied = run(client_.repo_info(source_, "org/secret"));
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code(), ErrorCode::kUpstream);
    EXPECT_NE(denied.error().message().find("401"), std::string::npos);
    EXPECT_NE(denied.error().message().find("$HF_TOKEN"), std::string::npos);

    source_.token = "good-token";
    auto allowed = run(client_.repo_info(source_, "org/secret"));
    ASSERT_TRUE(allowed) << allowed.error().full_message();
    EXPECT_EQ(hub_.seen().back().authorization, "Bearer good-token");
    auto id = *parse_model_source_id("org/secret");
    auto file = run(client_.download(source_, id, allowed->revision, allowed->files[0]));
    ASSERT_TRUE(file);
    EXPECT_EQ(hub_.seen().back().authorization, "Bearer good-token");

    auto gone = run(client_.download(source_, id, allowed->revision, HubFile{"nope.json", {}, {}}));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code(), ErrorCode::kModelNotFound);
}

TEST(RepoInfo, HostileListingsAreFiltered) {
    auto info = parse_repo_info(
        R"({"sha":"../x","siblings":[{"rfilename":"../../etc/passwd"},{"rfilename":"ok.json"},
            {"rfilename":5},"junk",{"rfilename":"/abs"}]})");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->revision, "main");
    EXPECT_EQ(info->file_names(), std::vector<std::string>{"ok.json"});
    EXPECT_FALSE(parse_repo_info("not json"));
    EXPECT_FALSE(parse_repo_info(R"({"siblings":{}})"));
}

}  // namespace
}  // namespace helexa::node
