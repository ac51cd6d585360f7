// Normalizers: NFC, NFD, Prepend, Replace (literal or regex), Strip, Sequence.
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_nfc.h"
#include "tokenizer/utf8.h"

namespace helexa::text::detail {
namespace {

class NfcNormalizer final : public Normalizer {
public:
    void normalize(std::string& s) const override {
        if (!nfc_quick_check(s)) {
            s = to_nfc(s);
        }
    }
};

class NfdNormalizer final : public Normalizer {
public:
    void normalize(std::string& s) const override { s = to_nfd(s); }
};

class PrependNormalizer final : public Normalizer {
public:
    explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
    void normalize(std::string& s) const override {
        if (!s.empty()) {
            std::string out;
            out.reserve(prefix_.size() + s.size());
            out.append(prefix_);
            out.append(s);
            s = std::move(out);
        }
    }

private:
    std::string prefix_;
};

class ReplaceLiteral final : public Normalizer {
public:
    ReplaceLiteral(std::string pattern, std::string content)
        : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void normalize(std::string& s) const override {
        if (pattern_.empty() || s.find(pattern_) == std::string::npos) {
            return;
        }
        std::string out;
        out.reserve(s.size() + s.size() / 4);
        size_t pos = 0;
        while (true) {
            const size_t hit = s.find(pattern_, pos);
            if (hit == std::string::npos) {
                out.append(s, pos, std::string::npos);
                break;
            }
            out.append(s, pos, hit - pos);
            out += content_;
            pos = hit + pattern_.size();
        }
        s = std::move(out);
    }

private:
    std::string pattern_;
    std::string content_;
};

class ReplaceRegex final : public Normalizer {
public:
    ReplaceRegex(std::shared_ptr<const Regex> re, std::string content)
        : re_(std::move(re)), content_(std::move(content)) {}
    void normalize(std::string& s) const override {
        std::string out;
        size_t last = 0;
        re_->for_each_match(s, [&](size_t b, size_t e) {
            out.append(s, last, b - last);
            out += content_;
            last = e;
        });
        if (last == 0 && out.empty()) {
            return;
        }
        out.append(s, last, std::string::npos);
        s = std::move(out);
    }

private:
    std::shared_ptr<const Regex> re_;
    std::string content_;
};

class StripNormalizer final : public Normalizer {
public:
    StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
    void normalize(std::string& s) const override {
        size_t begin = 0;
        size_t end = s.size();
        if (left_) {
            while (begin < end) {
                size_t i = begin;
                if (!is_unicode_space(utf8_next(s, i))) {
                    break;
                }
                begin = i;
            }
        }
        if (right_) {
            while (end > begin) {
                size_t start = end - 1;
                while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
                    --start;
                }
                size_t i = start;
                if (!is_unicode_space(utf8_next(s, i))) {
                    break;
                }
                end = start;
            }
        }
        s = s.substr(begin, end - begin);
    }

private:
    bool left_;
    bool right_;
};

class SequenceNormalizer final : public Normalizer {
public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
        : steps_(std::move(steps)) {}
    void normalize(std::string& s) const override {
        for (const auto& step : steps_) {
            step->normalize(s);
        }
    }

private:
    std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j) {
    const std::string type = j.value("type", "");
    if (type == "NFC") {
        return std::make_unique<NfcNormalizer>();
    }
    if (type == "NFD") {
        return std::make_unique<NfdNormalizer>();
    }
    if (type == "Prepend") {
        return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
    }
    if (type == "Replace") {
        const auto& pat = j.at("pattern");
        std::string content = j.at("content").get<std::string>();
        if (pat.contains("String")) {
            return std::make_unique<ReplaceLiteral>(pat.at("String").get<std::string>(),
                                                    std::move(content));
        }
        auto re = Regex::compile(pat.at("Regex").get<std::string>());
        if (!re) {
            return fail(std::move(re).error().with_context("Replace normalizer"));
        }
        return std::make_unique<ReplaceRegex>(*re, std::move(content));
    }
    if (type == "Strip") {
        return std::make_unique<StripNormalizer>(j.value("strip_left", true),
                                                 j.value("strip_right", true));
    }
    if (type == "Sequence") {
        std::vector<std::unique_ptr<Normalizer>> steps;
        for (const auto& step : j.at("normalizers")) {
            auto n = make_normalizer(step);
            if (!n) {
                return fail(n.error());
            }
            steps.push_back(std::move(*n));
        }
        return std::make_unique<SequenceNormalizer>(std::move(steps));
    }
    // NFKC/NFKD need compatibility tables and Lowercase needs case tables we don't generate.
    return fail(ErrorCode::kConfig, "unsupported normalizer type: " + type);
}

}  // namespace helexa::text::detail
