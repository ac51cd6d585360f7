// Paged KV bookkeeping: block accounting, ref counts, prefix publication and LRU eviction.
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "helexa/engine/kv_cache.h"

namespace helexa::engine {
namespace {

KvLayout layout(int64_t block_size, int64_t n_blocks) {
    KvLayout l;
    l.block_size = block_size;
    l.n_blocks = n_blocks;
    return l;
}

std::vector<int32_t> seq_tokens(int64_t n, int32_t base) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    std::iota(t.begin(), t.end(), base);
    return t;
}

TEST(KvPool, AllocateReleaseAndRefCounts) {
    KvBlockPool pool(3);
    EXPECT_EQ(pool.n_available(), 3);
    auto a = pool.allocate();
    auto b = pool.allocate();
    auto c = pool.allocate();
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(std::set<int32_t>({*a, *b, *c}).size(), 3U);
    EXPECT_FALSE(pool.allocate());
    pool.retain(*a);
    EXPECT_EQ(pool.ref_count(*a), 2);
    pool.release(*a);
    EXPECT_EQ(pool.n_available(), 0);
    pool.release(*a);
    EXPECT_EQ(pool.n_free(), 1);
    pool.release(*b);
    pool.release(*c);
    EXPECT_EQ(pool.n_available(), 3);
}

TEST(KvPool, PublishedBlocksAreSharedThenEvictedLeastRecentlyUsed) {
    KvBlockPool pool(2);
    const std::vector<int32_t> t1 = {1, 2};
    const std::vector<int32_t> t2 = {3, 4};
    const uint64_t h1 = KvBlockPool::chain_hash(0, t1);
    const uint64_t h2 = KvBlockPool::chain_hash(0, t2);
    const int32_t b1 = *pool.allocate();
    const int32_t b2 = *pool.allocate();
    pool.publish(b1, h1, 0, t1);
    pool.publish(b2, h2, 0, t2);
    pool.release(b1);  // b1 becomes evictable first
    pool.release(b2);
    EXPECT_EQ(pool.n_evictable(), 2);
    EXPECT_EQ(pool.n_available(), 2);

    // A hit retains the block and takes it off the LRU list.
    auto hit = pool.lookup(h2, 0, t2);
    ASSERT_EQ(hit, std::optional<int32_t>(b2));
    EXPECT_EQ(pool.n_evictable(), 1);

    // Allocation evicts b1 (the only evictable one) and forgets its hash.
    auto fresh = pool.allocate();
    ASSERT_EQ(fresh, std::optional<int32_t>(b1));
    EXPECT_FALSE(pool.lookup(h1, 0, t1));
    EXPECT_FALSE(pool.allocate());
    pool.release(*fresh);
    pool.release(b2);
    EXPECT_EQ(pool.n_available(), 2);
}

TEST(KvPool, LookupVerifiesContentsNotJustTheHash) {
    KvBlockPool pool(1);
    const std::vector<int32_t> t = {5, 6};
    const int32_t b = *pool.allocate();
    pool.publish(b, 42, 0, t);
    EXPECT_FALSE(pool.lookup(42, 0, std::vector<int32_t>{5, 7}));
    EXPECT_FALSE(pool.lookup(42, 1, t));
    EXPECT_EQ(pool.lookup(42, 0, t), std::optional<int32_t>(b));
}

TEST(KvPool, MaxEntriesCapsPublishedBlocks) {
    PrefixCacheOptions opts;
    opts.max_entries = 1;
    KvBlockPool pool(3, opts);
    const int32_t a = *pool.allocate();
    const int32_t b = *pool.allocate();
    pool.publish(a, 1, 0, std::vector<int32_t>{1});
    pool.publish(b, 2, 0, std::vector<int32_t>{2});  // a still in use: skipped
    EXPECT_EQ(pool.n_published(), 1);
    EXPECT_FALSE(pool.is_published(b));
    pool.release(a);
    pool.publish(b, 2, 0, std::vector<int32_t>{2});  // evicts a's entry
    EXPECT_EQ(pool.n_published(), 1);
    EXPECT_TRUE(pool.is_published(b));
    EXPECT_FALSE(pool.is_published(a));
    pool.release(b);
    EXPECT_EQ(pool.n_available(), 3);
}

TEST(KvCacheTables, ReserveGrowsAllOrNothing) {
    KvBlockManager kv(layout(4, 4));
    kv.open(1, seq_tokens(3, 0));
    EXPECT_TRUE(kv.reserve(1, 3));
    EXPECT_EQ(kv.block_table(1).size(), 1U);
    EXPECT_TRUE(kv.reserve(1, 4));
    EXPECT_EQ(kv.block_table(1).size(), 1U);
    EXPECT_TRUE(kv.reserve(1, 9));
    EXPECT_EQ(kv.block_table(1).size(), 3U);
    kv.open(2, seq_tokens(3, 0));
    EXPECT_FALSE(kv.reserve(2, 8));  // needs 2, one left: nothing taken
    EXPECT_EQ(kv.block_table(2).size(), 0U);
    EXPECT_EQ(kv.n_available_blocks(), 1);
    EXPECT_EQ(kv.reservable_tokens(2), 4);
    kv.close(1);
    kv.close(2);
    kv.close(3);  // unknown: ignored
    EXPECT_EQ(kv.n_available_blocks(), 4);
}

TEST(KvCacheTables, CommittedFullBlocksAreReusedByTheNextSequence) {
    KvBlockManager kv(layout(4, 8));
    const auto a = seq_tokens(10, 100);
    EXPECT_EQ(kv.open(1, a), 0);
    ASSERT_TRUE(kv.reserve(1, 10));
    kv.commit(1, a, 10);  // two full blocks published, the third is partial
    EXPECT_EQ(kv.pool().n_published(), 2);
    const std::vector<int32_t> table_a(kv.block_table(1).begin(), kv.block_table(1).end());

    auto b = a;
    b.resize(9);
    b.push_back(7);
    b.push_back(8);
    EXPECT_EQ(kv.open(2, b), 8);
    ASSERT_EQ(kv.block_table(2).size(), 2U);
    EXPECT_EQ(kv.block_table(2)[0], table_a[0]);
    EXPECT_EQ(kv.block_table(2)[1], table_a[1]);
    EXPECT_EQ(kv.pool().ref_count(table_a[0]), 2);

    // A different first block breaks the chain even if the second block's tokens match.
    auto c = a;
    c[0] = 999;
    EXPECT_EQ(kv.open(3, c), 0);

    kv.close(1);
    kv.close(2);
    kv.close(3);
    EXPECT_EQ(kv.n_available_blocks(), 8);
    EXPECT_EQ(kv.pool().n_evictable(), 2);
}

TEST(KvCacheTables, OpenLeavesTheLastTokenToCompute) {
    KvBlockManager kv(layout(4, 8));
    const auto a = seq_tokens(8, 0);
    kv.open(1, a);
    ASSERT_TRUE(kv.reserve(1, 8));
    kv.commit(1, a, 8);
    kv.close(1);
    EXPECT_EQ(kv.open(2, a), 4);  // not 8: position 7 must run to produce logits
    kv.close(2);
}

TEST(KvCacheTables, DisabledPrefixCacheNeverShares) {
    PrefixCacheOptions off;
    off.enabled = false;
    KvBlockManager kv(layout(2, 4), off);
    const auto a = seq_tokens(5, 0);
    kv.open(1, a);
    ASSERT_TRUE(kv.reserve(1, 5));
    kv.commit(1, a, 5);
    EXPECT_EQ(kv.pool().n_published(), 0);
    kv.close(1);
    EXPECT_EQ(kv.open(2, a), 0);
    EXPECT_EQ(kv.pool().n_free(), 4);
}

}  // namespace
}  // namespace helexa::engine
