// Paged KV-cache bookkeeping: a fixed pool of ref-counted blocks, per-sequence block tables and
// a prefix cache over full blocks.
// When to use: the scheduler owns one KvBlockManager per loaded model, sized from the runner's
// KvLayout. It only hands out block ids; the ModelRunner owns the memory they index.
// Prefix cache: every full block whose K/V has been computed is published under a chain hash of
// (previous block's hash, its tokens). A new sequence reuses the longest run of matching leading
// full blocks (sharing them, ref-counted) and computes only the rest. Published blocks that no
// sequence uses stay cached and are evicted least-recently-used first when the pool is short
// (features.md D3, D15).
// Thread-safety: none; used only by the scheduler thread.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "helexa/engine/step.h"

namespace helexa::engine {

struct PrefixCacheOptions {
    bool enabled = true;
    int64_t max_entries = 0;  // cap on published blocks; 0 = bounded only by the pool
};

// Ref-counted blocks plus the prefix index. Block states: free (ref 0, unpublished), in use
// (ref > 0, published or not), evictable (ref 0, published, on the LRU list).
class KvBlockPool {
public:
    KvBlockPool(int64_t n_blocks, PrefixCacheOptions options = {});

    int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
    int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
    int64_t n_evictable() const { return static_cast<int64_t>(lru_.size()); }
    // Blocks an allocation can obtain: free plus evictable.
    int64_t n_available() const { return n_free() + n_evictable(); }
    int64_t n_published() const { return static_cast<int64_t>(index_.size()); }
    int32_t ref_count(int32_t block) const { return blocks_.at(static_cast<size_t>(block)).ref; }
    bool is_published(int32_t block) const {
        return blocks_.at(static_cast<size_t>(block)).published;
    }

    // A block with ref 1: a free one, else the least recently used evictable one (unpublished
    // first). nullopt when every block is in use.
    std::optional<int32_t> allocate();
    void retain(int32_t block);
    // Drops one reference; at zero the block becomes evictable (published) or free.
    void release(int32_t block);

    // Finds the published block holding `tokens` after the chain `parent_hash`, retains it and
    // returns it. Token contents are compared, so a hash collision never aliases blocks.
    std::optional<int32_t> lookup(uint64_t hash, uint64_t parent_hash,
                                  std::span<const int32_t> tokens);
    // Publishes a full, computed block. No-op when the hash is already published (another
    // sequence computed the same block first) or the cache is disabled or capped and full.
    void publish(int32_t block, uint64_t hash, uint64_t parent_hash,
                 std::span<const int32_t> tokens);

    static uint64_t chain_hash(uint64_t parent_hash, std::span<const int32_t> tokens);

private:
    struct Block {
        int32_t ref = 0;
        bool published = false;
        uint64_t hash = 0;
        uint64_t parent_hash = 0;
        std::vector<int32_t> tokens;  // contents, to verify index hits
        std::list<int32_t>::iterator lru_pos;
    };
    void unpublish(int32_t block);

    PrefixCacheOptions options_;
    std::vector<Block> blocks_;
    std::vector<int32_t> free_;  // stack: lowest ids handed out first
    std::list<int32_t> lru_;     // evictable, least recently used at the front
    std::unordered_map<uint64_t, int32_t> index_;
};

// Per-sequence block tables over a KvBlockPool.
class KvBlockManager {
public:
    explicit KvBlockManager(const KvLayout& layout, PrefixCacheOptions options = {});

    int64_t block_size() const { return block_size_; }
    int64_t n_blocks() const { return pool_.n_blocks(); }
    int64_t n_available_blocks() const { return pool_.n_available(); }
    int64_t capacity_tokens() const { return block_size_ * pool_.n_blocks(); }
    int64_t blocks_for(int64_t n_tokens) const { return (n_tokens + block_size_ - 1) / block_size_; }
    const KvBlockPool& pool() const { return pool_; }
    bool contains(uint64_t seq) const { return seqs_.count(seq) != 0; }

    // Starts a sequence over `tokens` (its prompt, or everything so far when re-admitted after
    // preemption). Reuses matching cached full blocks, leaving at least one token to compute so
    // the step yields logits. Returns the number of tokens whose K/V is already cached.
    // Precondition: seq is not open.
    int64_t open(uint64_t seq, std::span<const int32_t> tokens);

    // Grows seq's table to cover positions [0, n_tokens). All or nothing: false (and no change)
    // when the pool cannot supply enough blocks.
    bool reserve(uint64_t seq, int64_t n_tokens);

    // Largest n_tokens that reserve() could satisfy right now.
    int64_t reservable_tokens(uint64_t seq) const;

    std::span<const int32_t> block_table(uint64_t seq) const;

    // Records that K/V for tokens[0, n_computed) is written; publishes newly full blocks.
    void commit(uint64_t seq, std::span<const int32_t> tokens, int64_t n_computed);

    // Releases seq's blocks (cached ones stay evictable). Unknown ids are ignored.
    void close(uint64_t seq);

private:
    struct Seq {
        std::vector<int32_t> table;
        int64_t n_hashed = 0;  // leading full blocks already chained into last_hash
        uint64_t last_hash = 0;
    };

    int64_t block_size_;
    KvBlockPool pool_;
    std::unordered_map<uint64_t, Seq> seqs_;
};

}  // namespace helexa::engine
