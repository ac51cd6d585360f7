// BPE model: merges by rank through a hash table on id pairs and a binary heap over a per-word
// linked list of symbols (the same order of merges as `tokenizers`' Word::merge_all: lowest rank
// first, leftmost on ties), with a sharded word cache.
#include <algorithm>

#include <fmt/format.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace helexa::text::detail {

void MergeTable::reserve(size_t n) {
    size_t cap = 16;
    int bits = 4;
    while (cap < n * 2) {
        cap <<= 1;
        ++bits;
    }
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    shift_ = 64 - bits;
}

void MergeTable::insert(int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    const uint64_t key = pack(a, b);
    size_t i = hash(key);
    while (slots_[i].key != kEmpty && slots_[i].key != key) {
        i = (i + 1) & mask_;
    }
    slots_[i] = Slot{key, rank, new_id};  // a later duplicate wins, as in `tokenizers`
}

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"

// Whether merge (a, b) cannot join across a cut before a "▁" that follows another character: it
// can only when b starts with "▁" and a does not end with it.
bool split_safe(std::string_view a, std::string_view b) {
    const bool b_starts = b.substr(0, kMetaspace.size()) == kMetaspace;
    const bool a_ends = a.size() >= kMetaspace.size() &&
                        a.substr(a.size() - kMetaspace.size()) == kMetaspace;
    return !b_starts || a_ends;
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::from_json(const nlohmann::json& model,
                                                      bool byte_level) {
    const std::string type = model.value("type", "BPE");
    if (type != "BPE") {
        return fail(ErrorCode::kConfig, "unsupported model type: " + type);
    }
    if (!model.contains("vocab") || !model.at("vocab").is_object()) {
        return fail(ErrorCode::kConfig, "model.vocab missing or not an object");
    }
    auto m = std::make_unique<BpeModel>();
    m->byte_level_ = byte_level;
    m->byte_fallback_ = model.value("byte_fallback", false);
    m->fuse_unk_ = model.value("fuse_unk", false);
    m->ignore_merges_ = model.value("ignore_merges", false);
    auto str_or_empty = [&](const char* key) {
        const auto it = model.find(key);
        return (it != model.end() && it->is_string()) ? it->get<std::string>() : std::string();
    };
    m->continuing_prefix_ = str_or_empty("continuing_subword_prefix");
    m->end_suffix_ = str_or_empty("end_of_word_suffix");

    const auto& vocab = model.at("vocab");
    m->vocab_.reserve(vocab.size());
    int32_t max_id = -1;
    for (const auto& [token, id_json] : vocab.items()) {
        if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
            id_json.get<int64_t>() > 0x7FFFFFF) {
            return fail(ErrorCode::kConfig, "model.vocab: bad id for token " + token);
        }
        const auto id = id_json.get<int32_t>();
        m->vocab_.emplace(token, id);
        max_id = std::max(max_id, id);
    }
    m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
    for (const auto& [token, id] : m->vocab_) {
        m->id_to_token_[static_cast<size_t>(id)] = token;
    }
    const std::string unk = str_or_empty("unk_token");
    if (!unk.empty()) {
        if (auto it = m->vocab_.find(unk); it != m->vocab_.end()) {
            m->unk_id_ = it->second;
        }
    }

    m->byte_id_.fill(-1);
    m->fallback_id_.fill(-1);
    m->ascii_id_.fill(-1);
    for (int c = 0; c < 0x80; ++c) {
        if (auto it = m->vocab_.find(std::string(1, static_cast<char>(c)));
            it != m->vocab_.end()) {
            m->ascii_id_[c] = it->second;
        }
    }
    const ByteLevelMap& blm = ByteLevelMap::get();
    for (int b = 0; b < 256; ++b) {
        if (byte_level) {
            std::string c;
            utf8_append(blm.byte_to_char[b], c);
            if (auto it = m->vocab_.find(c); it != m->vocab_.end()) {
                m->byte_id_[b] = it->second;
            }
        }
        if (auto it = m->vocab_.find(fmt::format("<0x{:02X}>", b)); it != m->vocab_.end()) {
            m->fallback_id_[b] = it->second;
        }
    }
    if (byte_level && m->ignore_merges_) {
        for (const auto& [token, id] : m->vocab_) {
            if (auto raw = byte_level_decode_token(token)) {
                m->raw_vocab_.emplace(std::move(*raw), id);
            }
        }
    }

    bool crossing_merge = false;
    const auto merges_it = model.find("merges");
    if (merges_it != model.end() && merges_it->is_array()) {
        const auto& merges = *merges_it;
        m->merges_.reserve(merges.size());
        const size_t prefix_len = m->continuing_prefix_.size();
        for (size_t rank = 0; rank < merges.size(); ++rank) {
            const auto& entry = merges[rank];
            std::string a;
            std::string b;
            if (entry.is_string()) {
                const auto& s = entry.get_ref<const std::string&>();
                const size_t sp = s.find(' ');
                if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
                    return fail(ErrorCode::kConfig, "model.merges: bad entry '" + s + "'");
                }
                a = s.substr(0, sp);
                b = s.substr(sp + 1);
            } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
                       entry[1].is_string()) {
                a = entry[0].get<std::string>();
                b = entry[1].get<std::string>();
            } else {
                return fail(ErrorCode::kConfig, "model.merges: bad entry at " +
                                                    std::to_string(rank));
            }
            const auto ia = m->vocab_.find(a);
            const auto ib = m->vocab_.find(b);
            if (ia == m->vocab_.end() || ib == m->vocab_.end()) {
                return fail(ErrorCode::kConfig, "model.merges: token not in vocab: " + a + " " + b);
            }
            const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : b);
            const auto in = m->vocab_.find(merged);
            if (in == m->vocab_.end()) {
                return fail(ErrorCode::kConfig, "model.merges: merged token not in vocab: " +
                                                    merged);
            }
            m->merges_.insert(ia->second, ib->second, static_cast<int32_t>(rank), in->second);
            if (!split_safe(a, b)) {
                crossing_merge = true;
            }
        }
    }
    // A word may be cut before each "▁" that follows another character when no merge can join
    // a symbol ending in a non-"▁" character to one starting with "▁": then BPE on the pieces
    // gives exactly the ids of BPE on the whole word, and the pieces are short enough to cache.
    // SentencePiece-style models (Llama 2) have no pre-tokenizer, so without this a whole
    // document is one word with hundreds of symbols and no cache hit.
    if (!byte_level && !crossing_merge && !m->ignore_merges_ && m->continuing_prefix_.empty() &&
        m->end_suffix_.empty() && m->vocab_.count(kMetaspace) != 0) {
        m->split_marker_ = kMetaspace;
    }
    return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
    if (auto it = vocab_.find(token); it != vocab_.end()) {
        return it->second;
    }
    return std::nullopt;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) {
        return nullptr;
    }
    const std::string& s = id_to_token_[static_cast<size_t>(id)];
    return s.empty() ? nullptr : &s;
}

bool BpeModel::cache_lookup(std::string_view word, size_t hash, std::vector<int32_t>& out) const {
    CacheShard& shard = cache_[hash % kCacheShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(word);
    if (it == shard.map.end()) {
        return false;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
}

void BpeModel::cache_store(std::string_view word, size_t hash, const int32_t* ids,
                           size_t n) const {
    CacheShard& shard = cache_[hash % kCacheShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.map.size() >= kCacheMaxPerShard) {
        return;  // full: stop caching, as `tokenizers` does
    }
    shard.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n));
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
    if (split_marker_.empty()) {
        tokenize_piece(word, out);
        return;
    }
    const std::string_view marker = split_marker_;
    const size_t m = marker.size();
    size_t start = 0;
    size_t p = word.find(marker);
    while (p != std::string_view::npos) {
        // Cut before a "▁" unless the character before it is also "▁" (runs stay together).
        if (p > start && !(p >= m && word.compare(p - m, m, marker) == 0)) {
            tokenize_piece(word.substr(start, p - start), out);
            start = p;
        }
        p = word.find(marker, p + m);
    }
    tokenize_piece(word.substr(start), out);
}

void BpeModel::tokenize_piece(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) {
        return;
    }
    if (ignore_merges_) {
        const TokenMap& map = byte_level_ ? raw_vocab_ : vocab_;
        if (auto it = map.find(word); it != map.end()) {
            out.push_back(it->second);
            return;
        }
    }
    const bool cacheable = word.size() <= kCacheMaxWordLen;
    size_t hash = 0;
    if (cacheable) {
        hash = StringHash{}(word);
        if (cache_lookup(word, hash, out)) {
            return;
        }
    }
    const size_t before = out.size();
    merge_word(word, out);
    if (cacheable) {
        cache_store(word, hash, out.data() + before, out.size() - before);
    }
}

namespace {

struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    int32_t len;
};

struct Merge {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
};

// Min-heap order on (rank, pos).
struct MergeAfter {
    bool operator()(const Merge& a, const Merge& b) const {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    }
};

}  // namespace

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Merge> heap;
    thread_local std::string key;
    symbols.clear();
    heap.clear();

    auto push_symbol = [&](int32_t id, int32_t len) {
        const auto n = static_cast<int32_t>(symbols.size());
        symbols.push_back(Symbol{id, n - 1, n + 1, len});
    };
    auto push_unk = [&](int32_t len) {
        if (!unk_id_) {
            return;  // `tokenizers` would fail; we drop the character instead
        }
        if (fuse_unk_ && !symbols.empty() && symbols.back().id == *unk_id_) {
            symbols.back().len += len;
            return;
        }
        push_symbol(*unk_id_, len);
    };

    if (byte_level_) {
        for (char c : word) {
            const int32_t id = byte_id_[static_cast<unsigned char>(c)];
            if (id >= 0) {
                push_symbol(id, 1);
            } else {
                push_unk(1);
            }
        }
    } else {
        const bool affixed = !continuing_prefix_.empty() || !end_suffix_.empty();
        for (size_t i = 0; i < word.size();) {
            const size_t n = std::min(utf8_char_len(static_cast<unsigned char>(word[i])),
                                      word.size() - i);
            const auto lead = static_cast<unsigned char>(word[i]);
            if (!affixed && lead < 0x80 && ascii_id_[lead] >= 0) {
                push_symbol(ascii_id_[lead], 1);  // skips hashing the common case
                ++i;
                continue;
            }
            std::string_view ch = word.substr(i, n);
            std::string_view lookup = ch;
            if (affixed) {
                key.clear();
                if (i > 0) {
                    key += continuing_prefix_;
                }
                key += ch;
                if (i + n == word.size()) {
                    key += end_suffix_;
                }
                lookup = key;
            }
            i += n;
            if (auto it = vocab_.find(lookup); it != vocab_.end()) {
                push_symbol(it->second, static_cast<int32_t>(n));
                continue;
            }
            if (byte_fallback_) {
                bool all = true;
                for (char b : ch) {
                    all = all && fallback_id_[static_cast<unsigned char>(b)] >= 0;
                }
                if (all) {
                    for (char b : ch) {
                        push_symbol(fallback_id_[static_cast<unsigned char>(b)], 1);
                    }
                    continue;
                }
            }
            push_unk(static_cast<int32_t>(n));
        }
    }
    if (symbols.empty()) {
        return;
    }
    symbols.back().next = -1;

    const auto n_symbols = static_cast<int32_t>(symbols.size());
    for (int32_t i = 0; i + 1 < n_symbols; ++i) {
        int32_t rank = 0;
        int32_t new_id = 0;
        if (merges_.find(symbols[i].id, symbols[i + 1].id, rank, new_id)) {
            heap.push_back(Merge{rank, i, new_id});
        }
    }
    std::make_heap(heap.begin(), heap.end(), MergeAfter{});
    auto push_merge = [&](int32_t pos, int32_t rank, int32_t new_id) {
        heap.push_back(Merge{rank, pos, new_id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
    };

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), MergeAfter{});
        const Merge top = heap.back();
        heap.pop_back();
        Symbol& left = symbols[top.pos];
        if (left.len == 0 || left.next < 0) {
            continue;
        }
        const int32_t right_pos = left.next;
        const Symbol right = symbols[right_pos];
        int32_t rank = 0;
        int32_t new_id = 0;
        if (!merges_.find(left.id, right.id, rank, new_id) || new_id != top.new_id) {
            continue;  // stale entry: the pair changed since it was queued
        }
        left.id = top.new_id;
        left.len += right.len;
        left.next = right.next;
        symbols[right_pos].len = 0;
        if (right.next >= 0) {
            symbols[right.next].prev = top.pos;
        }
        if (left.prev >= 0 && merges_.find(symbols[left.prev].id, left.id, rank, new_id)) {
            push_merge(left.prev, rank, new_id);
        }
        if (left.next >= 0 && merges_.find(left.id, symbols[left.next].id, rank, new_id)) {
            push_merge(top.pos, rank, new_id);
        }
    }
    for (const Symbol& s : symbols) {
        if (s.len > 0) {
            out.push_back(s.id);
        }
    }
}

}  // namespace helexa::text::detail
