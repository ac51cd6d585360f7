// The step planner (models/step_plan.h): packing, validation and graph-bucket padding.
#include <gtest/gtest.h>

#include <numeric>

#include "../src/models/step_plan.h"

namespace helexa::engine::models {
namespace {

KvLayout layout() {
    KvLayout l;
    l.n_layers = 2;
    l.n_kv_heads = 2;
    l.head_dim = 16;
    l.block_size = 4;
    l.n_blocks = 64;
    return l;
}

std::vector<int32_t> at(const StepPlan& p, int64_t offset, int64_t n) {
    return {p.packed.begin() + offset, p.packed.begin() + offset + n};
}

TEST(StepPlan, PacksEveryArrayOnce) {
    const std::vector<int32_t> a = {5, 6, 7, 8, 9};
    const std::vector<int32_t> b = {3};
    const std::vector<int32_t> ta = {10, 11};
    const std::vector<int32_t> tb = {20, 21, 22};
    StepBatch batch;
    batch.seqs.push_back({1, a, 0, ta, true});   // prefill of 5: blocks 10, 11
    batch.seqs.push_back({2, b, 9, tb, true});   // decode at position 9: block 22 offset 1
    auto p = plan_step(batch, layout(), 100);
    ASSERT_TRUE(p.has_value()) << p.error().full_message();
    EXPECT_EQ(p->n_tokens, 6);
    EXPECT_EQ(p->n_seqs, 2);
    EXPECT_EQ(p->max_blocks, 3);
    EXPECT_EQ(p->max_context, 10);
    EXPECT_EQ(p->max_query, 5);
    EXPECT_EQ(at(*p, p->ids, 6), (std::vector<int32_t>{5, 6, 7, 8, 9, 3}));
    EXPECT_EQ(at(*p, p->positions, 6), (std::vector<int32_t>{0, 1, 2, 3, 4, 9}));
    EXPECT_EQ(at(*p, p->slots, 6), (std::vector<int32_t>{40, 41, 42, 43, 44, 89}));
    EXPECT_EQ(at(*p, p->query_start, 3), (std::vector<int32_t>{0, 5, 6}));
    EXPECT_EQ(at(*p, p->context_len, 2), (std::vector<int32_t>{5, 10}));
    EXPECT_EQ(at(*p, p->rows, 2), (std::vector<int32_t>{4, 5}));
    EXPECT_EQ(at(*p, p->tables, 6), (std::vector<int32_t>{10, 11, 0, 20, 21, 22}));
    EXPECT_EQ(static_cast<int64_t>(p->packed.size()), p->tables + 6);
}

TEST(StepPlan, RejectsBadSlices) {
    const std::vector<int32_t> tok = {1, 2};
    const std::vector<int32_t> short_table = {0};
    const std::vector<int32_t> table = {0, 1};
    const std::vector<int32_t> outside = {70};
    const std::vector<int32_t> big_tok = {100};
    const std::vector<int32_t> none;
    auto fails = [](StepBatch b, const std::string& what) {
        auto p = plan_step(b, layout(), 100);
        ASSERT_FALSE(p.has_value()) << what;
        EXPECT_EQ(p.error().code(), ErrorCode::kInvalidRequest) << what;
    };
    StepBatch b1;
    b1.seqs.push_back({1, tok, 3, short_table, true});  // positions 3..4 need 2 blocks
    fails(b1, "short table");
    StepBatch b2;
    b2.seqs.push_back({1, tok, 0, outside, true});
    fails(b2, "block outside the pool");
    StepBatch b3;
    b3.seqs.push_back({1, big_tok, 0, table, true});
    fails(b3, "token outside the vocabulary");
    StepBatch b4;
    b4.seqs.push_back({1, none, 0, table, true});
    fails(b4, "empty slice");
}

TEST(StepPlan, GraphBucketsOnlyForDecodeSteps) {
    const std::vector<int32_t> one = {1};
    const std::vector<int32_t> two = {1, 2};
    std::vector<int32_t> table(64);
    std::iota(table.begin(), table.end(), 0);
    StepBatch decode;
    for (int i = 0; i < 9; ++i) {
        decode.seqs.push_back({static_cast<uint64_t>(i), one, 70, table, true});
    }
    auto bucket = graph_bucket(decode, layout());
    ASSERT_TRUE(bucket.has_value());
    EXPECT_EQ(bucket->seqs, 16);    // 9 -> next multiple of 8
    EXPECT_EQ(bucket->blocks, 32);  // position 70 needs 18 blocks of 4 -> 32
    StepBatch prefill = decode;
    prefill.seqs[3].tokens = two;
    EXPECT_FALSE(graph_bucket(prefill, layout()).has_value());
    StepBatch no_logits = decode;
    no_logits.seqs[0].need_logits = false;
    EXPECT_FALSE(graph_bucket(no_logits, layout()).has_value());
    StepBatch three;
    for (int i = 0; i < 3; ++i) {
        three.seqs.push_back({static_cast<uint64_t>(i), one, 0, table, true});
    }
    EXPECT_EQ(graph_bucket(three, layout())->seqs, 3);
    EXPECT_EQ(graph_bucket(three, layout())->blocks, 16);
}

TEST(StepPlan, PaddingWritesOnlyTheTrashBlock) {
    const std::vector<int32_t> one = {7};
    const std::vector<int32_t> table = {5, 6, 9};
    StepBatch batch;
    batch.seqs.push_back({1, one, 10, table, true});  // position 10: block 9, offset 2
    const GraphBucket pad{4, 16};
    const int32_t trash = 64;  // == n_blocks: outside what the scheduler hands out
    auto p = plan_step(batch, layout(), 100, pad, trash);
    ASSERT_TRUE(p.has_value()) << p.error().full_message();
    EXPECT_EQ(p->n_seqs, 4);
    EXPECT_EQ(p->n_real_seqs, 1);
    EXPECT_EQ(p->n_rows, 4);
    EXPECT_EQ(p->n_real_rows, 1);
    EXPECT_EQ(p->max_blocks, 16);
    EXPECT_EQ(p->max_context, 64);
    EXPECT_EQ(at(*p, p->ids, 4), (std::vector<int32_t>{7, 0, 0, 0}));
    EXPECT_EQ(at(*p, p->slots, 4), (std::vector<int32_t>{38, 256, 256, 256}));
    EXPECT_EQ(at(*p, p->context_len, 4), (std::vector<int32_t>{11, 1, 1, 1}));
    EXPECT_EQ(at(*p, p->query_start, 5), (std::vector<int32_t>{0, 1, 2, 3, 4}));
    // The real sequence's table, then the trash block everywhere else.
    const auto tables = at(*p, p->tables, 4 * 16);
    EXPECT_EQ(std::vector<int32_t>(tables.begin(), tables.begin() + 4),
              (std::vector<int32_t>{5, 6, 9, trash}));
    EXPECT_TRUE(std::all_of(tables.begin() + 16, tables.end(), [&](int32_t b) { return b == trash; }));
    // A batch that does not fit its bucket is an internal error, not silent truncation.
    EXPECT_FALSE(plan_step(batch, layout(), 100, GraphBucket{1, 1}, trash).has_value());
}

TEST(StepPlan, ContextSpreadSaysHowFarTheLongestContextIsFromEven) {
    EXPECT_EQ(context_spread({}), 1);
    EXPECT_EQ(context_spread({640, 640, 640, 640}), 1);
    EXPECT_EQ(context_spread({1000, 600}), 1);            // 2000 / 1600: within 2x of even
    EXPECT_EQ(context_spread({1000, 100, 100, 100}), 2);  // 4000 / 1300 = 3.08
    // One 32k-token sequence among 31 of 2k: 32768 * 32 / 94976 = 11.04.
    std::vector<int64_t> agents(31, 2048);
    agents.push_back(32768);
    EXPECT_EQ(context_spread(agents), 8);
    std::vector<int64_t> extreme(200, 1);
    extreme.push_back(1'000'000);
    EXPECT_EQ(context_spread(extreme), kMaxContextSpread);
}

TEST(StepPlan, GraphBucketsAndPaddedPlansCarryTheSpread) {
    const std::vector<int32_t> one = {1};
    std::vector<int32_t> table(64);
    std::iota(table.begin(), table.end(), 0);
    StepBatch even;
    StepBatch uneven;
    for (int i = 0; i < 8; ++i) {
        even.seqs.push_back({static_cast<uint64_t>(i), one, 199, table, true});
        uneven.seqs.push_back({static_cast<uint64_t>(i), one, i == 0 ? 199 : 9, table, true});
    }
    const auto even_bucket = graph_bucket(even, layout());
    const auto uneven_bucket = graph_bucket(uneven, layout());
    ASSERT_TRUE(even_bucket && uneven_bucket);
    EXPECT_EQ(even_bucket->spread, 1);
    EXPECT_EQ(uneven_bucket->spread, 4);  // 200 * 8 / 270 = 5.9
    // Same sequences and width, different spread: different graphs.
    EXPECT_EQ(even_bucket->blocks, uneven_bucket->blocks);
    EXPECT_TRUE(*even_bucket < *uneven_bucket);
    auto p = plan_step(uneven, layout(), 100, uneven_bucket, 64);
    ASSERT_TRUE(p.has_value()) << p.error().full_message();
    EXPECT_EQ(p->context_spread, 4);
    // Unpadded (a prefill's) plans take the spread of their own sequences.
    StepBatch mixed = uneven;
    const std::vector<int32_t> prompt = {1, 2, 3};
    mixed.seqs[1].tokens = prompt;
    auto q = plan_step(mixed, layout(), 100);
    ASSERT_TRUE(q.has_value()) << q.error().full_message();
    EXPECT_EQ(q->context_spread, 4);  // 200 * 8 / 272 = 5.9
}

}  // namespace
}  // namespace helexa::engine::models
