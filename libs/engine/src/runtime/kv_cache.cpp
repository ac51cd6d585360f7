#include "helexa/engine/kv_cache.h"

#include <algorithm>
#include <cassert>

namespace helexa::engine {
namespace {

constexpr uint64_t kRootHash = 0x6a09e667f3bcc909ULL;

uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

KvBlockPool::KvBlockPool(int64_t n_blocks, PrefixCacheOptions options)
    : options_(options), blocks_(static_cast<size_t>(std::max<int64_t>(n_blocks, 0))) {
    free_.reserve(blocks_.size());
    for (int64_t b = n_blocks - 1; b >= 0; --b) {
        free_.push_back(static_cast<int32_t>(b));
    }
}

uint64_t KvBlockPool::chain_hash(uint64_t parent_hash, std::span<const int32_t> tokens) {
    uint64_t h = mix(kRootHash, parent_hash);
    for (int32_t t : tokens) {
        h = mix(h, static_cast<uint32_t>(t));
    }
    return mix(h, tokens.size());
}

std::optional<int32_t> KvBlockPool::allocate() {
    int32_t b = -1;
    if (!free_.empty()) {
        b = free_.back();
        free_.pop_back();
    } else if (!lru_.empty()) {
        b = lru_.front();
        unpublish(b);  // moves it from the LRU list to the free stack
        free_.pop_back();
    } else {
        return std::nullopt;
    }
    blocks_[static_cast<size_t>(b)].ref = 1;
    return b;
}

void KvBlockPool::retain(int32_t block) {
    auto& blk = blocks_.at(static_cast<size_t>(block));
    if (blk.ref == 0 && blk.published) {
        lru_.erase(blk.lru_pos);
    }
    ++blk.ref;
}

void KvBlockPool::release(int32_t block) {
    auto& blk = blocks_.at(static_cast<size_t>(block));
    assert(blk.ref > 0);
    if (--blk.ref > 0) {
        return;
    }
    if (blk.published) {
        blk.lru_pos = lru_.insert(lru_.end(), block);
    } else {
        free_.push_back(block);
    }
}

void KvBlockPool::unpublish(int32_t block) {
    auto& blk = blocks_.at(static_cast<size_t>(block));
    if (!blk.published) {
        return;
    }
    index_.erase(blk.hash);
    blk.published = false;
    blk.tokens.clear();
    if (blk.ref == 0) {
        lru_.erase(blk.lru_pos);
        free_.push_back(block);
    }
}

std::optional<int32_t> KvBlockPool::lookup(uint64_t hash, uint64_t parent_hash,
                                           std::span<const int32_t> tokens) {
    if (!options_.enabled) {
        return std::nullopt;
    }
    auto it = index_.find(hash);
    if (it == index_.end()) {
        return std::nullopt;
    }
    const auto& blk = blocks_[static_cast<size_t>(it->second)];
    if (blk.parent_hash != parent_hash ||
        !std::equal(blk.tokens.begin(), blk.tokens.end(), tokens.begin(), tokens.end())) {
        return std::nullopt;
    }
    retain(it->second);
    return it->second;
}

void KvBlockPool::publish(int32_t block, uint64_t hash, uint64_t parent_hash,
                          std::span<const int32_t> tokens) {
    auto& blk = blocks_.at(static_cast<size_t>(block));
    if (!options_.enabled || blk.published || index_.count(hash) != 0) {
        return;
    }
    if (options_.max_entries > 0 && n_published() >= options_.max_entries) {
        if (lru_.empty()) {
            return;  // every cached block is in use; skip rather than grow past the cap
        }
        unpublish(lru_.front());
    }
    blk.published = true;
    blk.hash = hash;
    blk.parent_hash = parent_hash;
    blk.tokens.assign(tokens.begin(), tokens.end());
    index_.emplace(hash, block);
}

KvBlockManager::KvBlockManager(const KvLayout& layout, PrefixCacheOptions options)
    : block_size_(std::max<int64_t>(layout.block_size, 1)), pool_(layout.n_blocks, options) {}

int64_t KvBlockManager::open(uint64_t seq, std::span<const int32_t> tokens) {
    assert(!contains(seq));
    Seq& s = seqs_[seq];
    s.last_hash = 0;
    if (tokens.empty()) {
        return 0;
    }
    // Leave at least the last token to compute: its logits pick the next token.
    const auto max_blocks = static_cast<int64_t>(tokens.size() - 1) / block_size_;
    for (int64_t i = 0; i < max_blocks; ++i) {
        auto block_tokens = tokens.subspan(static_cast<size_t>(i * block_size_),
                                           static_cast<size_t>(block_size_));
        const uint64_t h = KvBlockPool::chain_hash(s.last_hash, block_tokens);
        auto hit = pool_.lookup(h, s.last_hash, block_tokens);
        if (!hit) {
            break;
        }
        s.table.push_back(*hit);
        s.last_hash = h;
        s.n_hashed = i + 1;
    }
    return s.n_hashed * block_size_;
}

bool KvBlockManager::reserve(uint64_t seq, int64_t n_tokens) {
    Seq& s = seqs_.at(seq);
    const int64_t need = blocks_for(n_tokens) - static_cast<int64_t>(s.table.size());
    if (need <= 0) {
        return true;
    }
    if (need > pool_.n_available()) {
        return false;
    }
    for (int64_t i = 0; i < need; ++i) {
        auto b = pool_.allocate();
        assert(b.has_value());
        s.table.push_back(*b);
    }
    return true;
}

int64_t KvBlockManager::reservable_tokens(uint64_t seq) const {
    const Seq& s = seqs_.at(seq);
    return (static_cast<int64_t>(s.table.size()) + pool_.n_available()) * block_size_;
}

std::span<const int32_t> KvBlockManager::block_table(uint64_t seq) const {
    return seqs_.at(seq).table;
}

void KvBlockManager::commit(uint64_t seq, std::span<const int32_t> tokens, int64_t n_computed) {
    Seq& s = seqs_.at(seq);
    const int64_t full = std::min<int64_t>(n_computed, static_cast<int64_t>(tokens.size())) /
                         block_size_;
    for (int64_t i = s.n_hashed; i < full && i < static_cast<int64_t>(s.table.size()); ++i) {
        auto block_tokens = tokens.subspan(static_cast<size_t>(i * block_size_),
                                           static_cast<size_t>(block_size_));
        const uint64_t h = KvBlockPool::chain_hash(s.last_hash, block_tokens);
        pool_.publish(s.table[static_cast<size_t>(i)], h, s.last_hash, block_tokens);
        s.last_hash = h;
        s.n_hashed = i + 1;
    }
}

void KvBlockManager::close(uint64_t seq) {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) {
        return;
    }
    // Release from the tail so a prefix's later blocks are evicted before its earlier ones
    // (an earlier block is useful to more future prompts).
    for (auto b = it->second.table.rbegin(); b != it->second.table.rend(); ++b) {
        pool_.release(*b);
    }
    seqs_.erase(it);
}

}  // namespace helexa::engine
