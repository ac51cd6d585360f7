// Regex (PCRE2 with UTF + UCP: \p{L}, \p{N}, lookahead as Oniguruma runs them in `tokenizers`),
// the GPT-2 byte map, and the pre-tokenizers.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace helexa::text::detail {
namespace {

// Per-thread PCRE2 match state, so that a shared const Regex needs no lock.
struct MatchScratch {
    pcre2_match_data* data = nullptr;
    pcre2_match_context* context = nullptr;
    pcre2_jit_stack* jit_stack = nullptr;
    MatchScratch() {
        data = pcre2_match_data_create(4, nullptr);
        context = pcre2_match_context_create(nullptr);
        jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
        if (context != nullptr && jit_stack != nullptr) {
            pcre2_jit_stack_assign(context, nullptr, jit_stack);
        }
    }
    ~MatchScratch() {
        pcre2_match_data_free(data);
        pcre2_match_context_free(context);
        pcre2_jit_stack_free(jit_stack);
    }
    MatchScratch(const MatchScratch&) = delete;
    MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
    thread_local MatchScratch s;
    return s;
}

// Oniguruma (which `tokenizers` uses) matches \s against Unicode White_Space, which includes
// U+0085; PCRE2's \s under UCP is Z + \t\n\v\f\r and lacks it. Rewrite \s and \S so the two
// engines agree.
std::string onig_compatible(std::string_view pattern) {
    std::string out;
    out.reserve(pattern.size() + 16);
    bool in_class = false;
    size_t class_start = 0;
    for (size_t i = 0; i < pattern.size(); ++i) {
        const char c = pattern[i];
        if (c == '\\' && i + 1 < pattern.size()) {
            const char e = pattern[i + 1];
            ++i;
            if (e == 's') {
                out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
            } else if (e == 'S' && !in_class) {
                out += "[^\\s\\x{85}]";
            } else {
                out.push_back(c);
                out.push_back(e);
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            class_start = i + 1;
            if (class_start < pattern.size() && pattern[class_start] == '^') {
                ++class_start;
            }
        } else if (in_class && c == ']' && i != class_start) {
            in_class = false;
        }
        out.push_back(c);
    }
    return out;
}

}  // namespace

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern_in) {
    const std::string rewritten = onig_compatible(pattern_in);
    const std::string_view pattern = rewritten;
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
    if (code == nullptr) {
        std::array<PCRE2_UCHAR, 256> buf{};
        pcre2_get_error_message(error_code, buf.data(), buf.size());
        return fail(ErrorCode::kConfig,
                    fmt::format("bad regex at offset {}: {}", error_offset,
                                reinterpret_cast<const char*>(buf.data())));
    }
    std::shared_ptr<Regex> re(new Regex());
    re->code_ = code;
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return std::shared_ptr<const Regex>(std::move(re));
}

Regex::~Regex() {
    pcre2_code_free(static_cast<pcre2_code*>(code_));
}

std::string Regex::escape(std::string_view literal) {
    std::string out;
    out.reserve(literal.size() * 2);
    for (char c : literal) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && !std::isalnum(u) && c != '_' && c != ' ') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    return out;
}

bool Regex::next_match(std::string_view text, size_t offset, size_t& start, size_t& end) const {
    auto* code = static_cast<pcre2_code*>(code_);
    MatchScratch& s = scratch();
    if (s.data == nullptr) {
        return false;
    }
    while (offset <= text.size()) {
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
        const int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), offset,
                                              PCRE2_NO_UTF_CHECK, s.data, s.context)
                            : pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                                          s.data, s.context);
        if (rc < 0) {
            return false;  // no match, or a match limit: the caller keeps the rest whole
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
        if (ov[1] > ov[0]) {
            start = ov[0];
            end = ov[1];
            return true;
        }
        // Empty match: HF ignores it; retry one character later.
        if (ov[0] >= text.size()) {
            return false;
        }
        offset = ov[0] + utf8_char_len(static_cast<unsigned char>(text[ov[0]]));
    }
    return false;
}

bool Regex::search(std::string_view text) const {
    size_t s = 0;
    size_t e = 0;
    return next_match(text, 0, s, e);
}

const ByteLevelMap& ByteLevelMap::get() {
    static const ByteLevelMap map = [] {
        ByteLevelMap m;
        m.char_to_byte.fill(-1);
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            m.byte_to_char[b] = printable ? static_cast<char32_t>(b) : next++;
            m.char_to_byte[m.byte_to_char[b]] = static_cast<int16_t>(b);
        }
        return m;
    }();
    return map;
}

std::optional<std::string> byte_level_decode_token(std::string_view token) {
    const ByteLevelMap& map = ByteLevelMap::get();
    std::string out;
    out.reserve(token.size());
    for (size_t i = 0; i < token.size();) {
        const char32_t cp = utf8_next(token, i);
        if (cp >= ByteLevelMap::kMaxChar || map.char_to_byte[cp] < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(map.char_to_byte[cp]));
    }
    return out;
}

namespace {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext,
                           kContiguous };

Result<SplitBehavior> parse_behavior(const std::string& name) {
    if (name == "Removed") {
        return SplitBehavior::kRemoved;
    }
    if (name == "Isolated") {
        return SplitBehavior::kIsolated;
    }
    if (name == "MergedWithPrevious") {
        return SplitBehavior::kMergedWithPrevious;
    }
    if (name == "MergedWithNext") {
        return SplitBehavior::kMergedWithNext;
    }
    if (name == "Contiguous") {
        return SplitBehavior::kContiguous;
    }
    return fail(ErrorCode::kConfig, "unknown split behavior: " + name);
}

// Splits `text` by the matches of `re`, as NormalizedString::split does in `tokenizers`.
void split_by_regex(const Regex& re, std::string_view text, SplitBehavior behavior, bool invert,
                    std::vector<std::string_view>& out) {
    struct Span {
        size_t start;
        size_t end;
        bool is_match;
    };
    thread_local std::vector<Span> spans;
    spans.clear();
    size_t last = 0;
    re.for_each_match(text, [&](size_t s, size_t e) {
        if (s > last) {
            spans.push_back({last, s, invert});
        }
        spans.push_back({s, e, !invert});
        last = e;
    });
    if (last < text.size()) {
        spans.push_back({last, text.size(), invert});
    }
    auto emit = [&](size_t s, size_t e) {
        if (e > s) {
            out.push_back(text.substr(s, e - s));
        }
    };
    switch (behavior) {
        case SplitBehavior::kRemoved:
            for (const Span& sp : spans) {
                if (!sp.is_match) {
                    emit(sp.start, sp.end);
                }
            }
            return;
        case SplitBehavior::kIsolated:
            for (const Span& sp : spans) {
                emit(sp.start, sp.end);
            }
            return;
        case SplitBehavior::kMergedWithPrevious: {
            bool prev_match = false;
            thread_local std::vector<Span> acc;
            acc.clear();
            for (const Span& sp : spans) {
                if (sp.is_match && !prev_match && !acc.empty()) {
                    acc.back().end = sp.end;
                } else {
                    acc.push_back(sp);
                }
                prev_match = sp.is_match;
            }
            for (const Span& sp : acc) {
                emit(sp.start, sp.end);
            }
            return;
        }
        case SplitBehavior::kMergedWithNext: {
            bool prev_match = false;
            thread_local std::vector<Span> acc;
            acc.clear();
            for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
                if (it->is_match && !prev_match && !acc.empty()) {
                    acc.back().start = it->start;
                } else {
                    acc.push_back(*it);
                }
                prev_match = it->is_match;
            }
            for (auto it = acc.rbegin(); it != acc.rend(); ++it) {
                emit(it->start, it->end);
            }
            return;
        }
        case SplitBehavior::kContiguous: {
            bool prev_match = false;
            thread_local std::vector<Span> acc;
            acc.clear();
            for (const Span& sp : spans) {
                if (sp.is_match && prev_match && !acc.empty()) {
                    acc.back().end = sp.end;
                } else {
                    acc.push_back(sp);
                }
                prev_match = sp.is_match;
            }
            for (const Span& sp : acc) {
                emit(sp.start, sp.end);
            }
            return;
        }
    }
}

class SplitPre final : public PreTokenizer {
public:
    SplitPre(std::shared_ptr<const Regex> re, SplitBehavior behavior, bool invert)
        : re_(std::move(re)), behavior_(behavior), invert_(invert) {}
    void split(std::string_view piece, bool /*at_start*/, std::vector<std::string_view>& out,
               PieceArena& /*arena*/) const override {
        split_by_regex(*re_, piece, behavior_, invert_, out);
    }

private:
    std::shared_ptr<const Regex> re_;
    SplitBehavior behavior_;
    bool invert_;
};

// The byte-level step itself only optionally prefixes a space and applies the GPT-2 regex;
// the byte -> char mapping is folded into the BPE model, which works on raw bytes.
class ByteLevelPre final : public PreTokenizer {
public:
    ByteLevelPre(bool add_prefix_space, std::shared_ptr<const Regex> re)
        : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
    void split(std::string_view piece, bool /*at_start*/, std::vector<std::string_view>& out,
               PieceArena& arena) const override {
        if (add_prefix_space_ && !piece.empty() && piece.front() != ' ') {
            std::string prefixed;
            prefixed.reserve(piece.size() + 1);
            prefixed.push_back(' ');
            prefixed.append(piece);
            arena.push_back(std::move(prefixed));
            piece = arena.back();
        }
        if (re_) {
            split_by_regex(*re_, piece, SplitBehavior::kIsolated, false, out);
        } else if (!piece.empty()) {
            out.push_back(piece);
        }
    }

private:
    bool add_prefix_space_;
    std::shared_ptr<const Regex> re_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePre final : public PreTokenizer {
public:
    MetaspacePre(std::string replacement, PrependScheme scheme, bool split)
        : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
    void split(std::string_view piece, bool at_start, std::vector<std::string_view>& out,
               PieceArena& arena) const override {
        std::string s;
        s.reserve(piece.size() + 8);
        const bool prepend = scheme_ == PrependScheme::kAlways ||
                             (scheme_ == PrependScheme::kFirst && at_start);
        const bool starts_with_replacement =
            piece.substr(0, 1) == " " || piece.substr(0, replacement_.size()) == replacement_;
        if (prepend && !starts_with_replacement) {
            s.append(replacement_);
        }
        for (char c : piece) {
            if (c == ' ') {
                s += replacement_;
            } else {
                s.push_back(c);
            }
        }
        arena.push_back(std::move(s));
        std::string_view v = arena.back();
        if (!split_) {
            if (!v.empty()) {
                out.push_back(v);
            }
            return;
        }
        // MergedWithNext on the replacement char: each piece starts at a replacement.
        size_t begin = 0;
        size_t pos = v.find(replacement_, replacement_.size() > 0 ? 1 : 0);
        while (pos != std::string_view::npos && pos > 0) {
            if (pos > begin) {
                out.push_back(v.substr(begin, pos - begin));
            }
            begin = pos;
            pos = v.find(replacement_, pos + replacement_.size());
        }
        if (begin < v.size()) {
            out.push_back(v.substr(begin));
        }
    }

private:
    std::string replacement_;
    PrependScheme scheme_;
    bool split_;
};

Result<std::unique_ptr<PreTokenizer>> make_step(const nlohmann::json& j, bool& byte_level) {
    const std::string type = j.value("type", "");
    if (type == "Split") {
        const auto& pat = j.at("pattern");
        std::string pattern;
        if (pat.contains("Regex")) {
            pattern = pat.at("Regex").get<std::string>();
        } else {
            pattern = Regex::escape(pat.at("String").get<std::string>());
        }
        auto re = Regex::compile(pattern);
        if (!re) {
            return fail(std::move(re).error().with_context("Split pre-tokenizer"));
        }
        auto behavior = parse_behavior(j.value("behavior", "Isolated"));
        if (!behavior) {
            return fail(behavior.error());
        }
        return std::make_unique<SplitPre>(*re, *behavior, j.value("invert", false));
    }
    if (type == "ByteLevel") {
        byte_level = true;
        std::shared_ptr<const Regex> re;
        if (j.value("use_regex", true)) {
            auto compiled = Regex::compile(
                R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
            if (!compiled) {
                return fail(compiled.error());
            }
            re = *compiled;
        }
        return std::make_unique<ByteLevelPre>(j.value("add_prefix_space", false), re);
    }
    if (type == "Metaspace") {
        PrependScheme scheme = PrependScheme::kAlways;
        const std::string s = j.value("prepend_scheme", "always");
        if (s == "first") {
            scheme = PrependScheme::kFirst;
        } else if (s == "never") {
            scheme = PrependScheme::kNever;
        }
        if (j.contains("add_prefix_space") && !j.contains("prepend_scheme")) {
            scheme = j.value("add_prefix_space", true) ? PrependScheme::kAlways
                                                       : PrependScheme::kNever;
        }
        return std::make_unique<MetaspacePre>(j.value("replacement", "\xE2\x96\x81"), scheme,
                                              j.value("split", true));
    }
    if (type == "Digits") {
        auto re = Regex::compile(j.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
        if (!re) {
            return fail(re.error());
        }
        return std::make_unique<SplitPre>(*re, SplitBehavior::kIsolated, false);
    }
    if (type == "Whitespace") {
        auto re = Regex::compile(R"(\w+|[^\w\s]+)");
        if (!re) {
            return fail(re.error());
        }
        return std::make_unique<SplitPre>(*re, SplitBehavior::kRemoved, true);
    }
    if (type == "WhitespaceSplit") {
        auto re = Regex::compile(R"(\s+)");
        if (!re) {
            return fail(re.error());
        }
        return std::make_unique<SplitPre>(*re, SplitBehavior::kRemoved, false);
    }
    return fail(ErrorCode::kConfig, "unsupported pre_tokenizer type: " + type);
}

}  // namespace

Result<PreTokenizerChain> make_pre_tokenizer(const nlohmann::json& j) {
    PreTokenizerChain chain;
    if (j.is_null()) {
        return chain;
    }
    std::vector<const nlohmann::json*> steps;
    if (j.value("type", "") == "Sequence") {
        for (const auto& s : j.at("pretokenizers")) {
            steps.push_back(&s);
        }
    } else {
        steps.push_back(&j);
    }
    for (size_t i = 0; i < steps.size(); ++i) {
        bool byte_level = false;
        auto step = make_step(*steps[i], byte_level);
        if (!step) {
            return fail(step.error());
        }
        if (byte_level && i + 1 != steps.size()) {
            return fail(ErrorCode::kConfig, "ByteLevel pre-tokenizer must be the last step");
        }
        chain.byte_level = chain.byte_level || byte_level;
        chain.steps.push_back(std::move(*step));
    }
    return chain;
}

}  // namespace helexa::text::detail
