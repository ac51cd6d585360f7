// Added-token matching: leftmost-longest over a byte trie, then the single_word / lstrip /
// rstrip rules of `tokenizers`' AddedVocabulary::find_matches.
#include <algorithm>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace helexa::text::detail {
namespace {

// \w as Oniguruma sees it: Unicode letters, marks, digits, connector punctuation.
bool is_word_char(char32_t c) {
    if (c < 0x80) {
        return std::isalnum(static_cast<int>(c)) != 0 || c == '_';
    }
    static const std::shared_ptr<const Regex> word = [] {
        auto re = Regex::compile(R"(^\w$)");
        return re ? *re : nullptr;
    }();
    std::string s;
    utf8_append(c, s);
    return word && word->search(s);
}

bool ends_with_word(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
        --start;
    }
    return is_word_char(utf8_next(s, start));
}

bool starts_with_word(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    size_t i = 0;
    return is_word_char(utf8_next(s, i));
}

}  // namespace

int32_t AddedMatcher::child(int32_t node, uint8_t b) const {
    const auto& ch = nodes_[static_cast<size_t>(node)].children;
    auto it = std::lower_bound(ch.begin(), ch.end(), b,
                               [](const std::pair<uint8_t, int32_t>& e, uint8_t v) {
                                   return e.first < v;
                               });
    return (it != ch.end() && it->first == b) ? it->second : -1;
}

void AddedMatcher::build(const std::vector<AddedToken>& tokens, const std::vector<size_t>& which,
                         const std::vector<std::string>& patterns) {
    nodes_.assign(1, Node{});
    first_byte_.fill(false);
    for (size_t k = 0; k < which.size(); ++k) {
        const std::string& p = patterns[k];
        if (p.empty()) {
            continue;
        }
        first_byte_[static_cast<unsigned char>(p[0])] = true;
        int32_t node = 0;
        for (char c : p) {
            const auto b = static_cast<uint8_t>(c);
            int32_t next = child(node, b);
            if (next < 0) {
                next = static_cast<int32_t>(nodes_.size());
                nodes_.push_back(Node{});
                auto& ch = nodes_[static_cast<size_t>(node)].children;
                ch.insert(std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t{-1})),
                          std::make_pair(b, next));
            }
            node = next;
        }
        // The first token listed with a given content wins (later duplicates are ignored).
        if (nodes_[static_cast<size_t>(node)].token < 0) {
            nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(which[k]);
        }
    }
    (void)tokens;
}

void AddedMatcher::split(std::string_view text, const std::vector<AddedToken>& tokens,
                         std::vector<Segment>& out) const {
    if (empty()) {
        if (!text.empty()) {
            out.push_back(Segment{text, -1});
        }
        return;
    }
    size_t start_offset = 0;
    size_t pos = 0;
    const size_t n = text.size();
    while (pos < n) {
        // Leftmost-longest match at or after pos.
        size_t match_start = n;
        size_t match_end = 0;
        int32_t match_token = -1;
        for (size_t i = pos; i < n && match_token < 0; ++i) {
            if (!first_byte_[static_cast<unsigned char>(text[i])]) {
                continue;
            }
            int32_t node = 0;
            for (size_t j = i; j < n; ++j) {
                node = child(node, static_cast<uint8_t>(text[j]));
                if (node < 0) {
                    break;
                }
                if (nodes_[static_cast<size_t>(node)].token >= 0) {
                    match_token = nodes_[static_cast<size_t>(node)].token;
                    match_start = i;
                    match_end = j + 1;
                }
            }
        }
        if (match_token < 0) {
            break;
        }
        pos = match_end;
        const AddedToken& tok = tokens[static_cast<size_t>(match_token)];
        size_t start = match_start;
        size_t stop = match_end;
        if (tok.single_word) {
            const bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
            const bool stop_space = stop == n || !starts_with_word(text.substr(stop));
            if (!start_space || !stop_space) {
                continue;
            }
        }
        if (tok.lstrip) {
            size_t s = start;
            while (s > start_offset) {
                size_t b = s - 1;
                while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) {
                    --b;
                }
                size_t k = b;
                if (!is_unicode_space(utf8_next(text, k))) {
                    break;
                }
                s = b;
            }
            start = s;
        }
        if (tok.rstrip) {
            while (stop < n) {
                size_t k = stop;
                if (!is_unicode_space(utf8_next(text, k))) {
                    break;
                }
                stop = k;
            }
            pos = stop;
        }
        if (start > start_offset) {
            out.push_back(Segment{text.substr(start_offset, start - start_offset), -1});
        }
        out.push_back(Segment{text.substr(start, stop - start), tok.id});
        start_offset = stop;
    }
    if (start_offset < n) {
        out.push_back(Segment{text.substr(start_offset), -1});
    }
}

}  // namespace helexa::text::detail
