// Decoders (the decode_chain of `tokenizers`) and the streaming decoder.
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace helexa::text::detail {
namespace {

Status add_decoder_steps(const nlohmann::json& j, std::vector<DecoderStep>& steps) {
    const std::string type = j.value("type", "");
    DecoderStep step;
    if (type == "Sequence") {
        for (const auto& d : j.at("decoders")) {
            HELEXA_TRY_STATUS(add_decoder_steps(d, steps));
        }
        return ok();
    }
    if (type == "ByteLevel") {
        step.kind = DecodeStep::kByteLevel;
    } else if (type == "Metaspace") {
        step.kind = DecodeStep::kMetaspace;
        step.pattern = j.value("replacement", "\xE2\x96\x81");
        if (j.contains("prepend_scheme")) {
            step.prepend = j.value("prepend_scheme", "always") != "never";
        } else {
            step.prepend = j.value("add_prefix_space", true);
        }
    } else if (type == "Replace") {
        const auto& pat = j.at("pattern");
        if (!pat.contains("String")) {
            return fail(ErrorCode::kConfig, "unsupported decoder: Replace with a regex pattern");
        }
        step.kind = DecodeStep::kReplace;
        step.pattern = pat.at("String").get<std::string>();
        step.content = j.at("content").get<std::string>();
        if (step.pattern.empty()) {
            return fail(ErrorCode::kConfig, "Replace decoder with an empty pattern");
        }
    } else if (type == "ByteFallback") {
        step.kind = DecodeStep::kByteFallback;
    } else if (type == "Fuse") {
        step.kind = DecodeStep::kFuse;
    } else if (type == "Strip") {
        step.kind = DecodeStep::kStrip;
        step.content = j.value("content", " ");
        step.start = j.value("start", int64_t{0});
        step.stop = j.value("stop", int64_t{0});
        if (step.start < 0 || step.stop < 0) {
            return fail(ErrorCode::kConfig, "Strip decoder with negative counts");
        }
    } else {
        return fail(ErrorCode::kConfig, "unsupported decoder type: " + type);
    }
    steps.push_back(std::move(step));
    return ok();
}

void replace_all(std::string& s, std::string_view pattern, std::string_view content) {
    if (pattern.empty() || s.find(pattern) == std::string::npos) {
        return;
    }
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    while (true) {
        const size_t hit = s.find(pattern, pos);
        if (hit == std::string::npos) {
            out.append(s, pos, std::string::npos);
            break;
        }
        out.append(s, pos, hit - pos);
        out.append(content);
        pos = hit + pattern.size();
    }
    s = std::move(out);
}

// "<0xAB>" -> 0xAB.
std::optional<uint8_t> parse_byte_token(std::string_view t) {
    if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') {
        return std::nullopt;
    }
    int v = 0;
    for (size_t i = 3; i < 5; ++i) {
        const char c = t[i];
        int d = 0;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return std::nullopt;
        }
        v = v * 16 + d;
    }
    return static_cast<uint8_t>(v);
}

// Strips up to `start` leading and `stop` trailing chars equal to `content` (one code point).
void strip_token(std::string& t, std::string_view content, int64_t start, int64_t stop) {
    size_t begin = 0;
    for (int64_t k = 0; k < start && t.compare(begin, content.size(), content) == 0 &&
                        begin < t.size();
         ++k) {
        begin += content.size();
    }
    size_t end = t.size();
    for (int64_t k = 0; k < stop && end >= begin + content.size() &&
                        t.compare(end - content.size(), content.size(), content) == 0;
         ++k) {
        end -= content.size();
    }
    t = t.substr(begin, end - begin);
}

}  // namespace

Result<DecoderChain> make_decoder(const nlohmann::json& j) {
    DecoderChain chain;
    if (j.is_null()) {
        return chain;
    }
    chain.present = true;
    auto st = add_decoder_steps(j, chain.steps);
    if (!st) {
        return fail(st.error());
    }
    return chain;
}

std::string run_decoder(const DecoderChain& chain, std::vector<std::string> tokens) {
    if (!chain.present) {
        std::string out;
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (i > 0) {
                out.push_back(' ');
            }
            out += tokens[i];
        }
        return out;
    }
    for (const DecoderStep& step : chain.steps) {
        switch (step.kind) {
            case DecodeStep::kByteLevel: {
                std::string bytes;
                for (const std::string& t : tokens) {
                    if (auto raw = byte_level_decode_token(t)) {
                        bytes += *raw;
                    } else {
                        bytes += t;
                    }
                }
                std::string text;
                utf8_append_lossy(bytes, text);
                tokens.assign(1, std::move(text));
                break;
            }
            case DecodeStep::kMetaspace:
                for (size_t i = 0; i < tokens.size(); ++i) {
                    replace_all(tokens[i], step.pattern, " ");
                    if (i == 0 && step.prepend && !tokens[i].empty() && tokens[i][0] == ' ') {
                        tokens[i].erase(0, 1);
                    }
                }
                break;
            case DecodeStep::kReplace:
                for (std::string& t : tokens) {
                    replace_all(t, step.pattern, step.content);
                }
                break;
            case DecodeStep::kByteFallback: {
                std::vector<std::string> out;
                out.reserve(tokens.size());
                std::string pending;
                auto flush = [&] {
                    if (pending.empty()) {
                        return;
                    }
                    if (utf8_is_valid(pending)) {
                        out.push_back(pending);
                    } else {
                        for (size_t k = 0; k < pending.size(); ++k) {
                            out.emplace_back(kReplacementChar);
                        }
                    }
                    pending.clear();
                };
                for (std::string& t : tokens) {
                    if (auto b = parse_byte_token(t)) {
                        pending.push_back(static_cast<char>(*b));
                        continue;
                    }
                    flush();
                    out.push_back(std::move(t));
                }
                flush();
                tokens = std::move(out);
                break;
            }
            case DecodeStep::kFuse: {
                std::string all;
                for (const std::string& t : tokens) {
                    all += t;
                }
                tokens.assign(1, std::move(all));
                break;
            }
            case DecodeStep::kStrip:
                for (std::string& t : tokens) {
                    strip_token(t, step.content, step.start, step.stop);
                }
                break;
        }
    }
    std::string out;
    for (const std::string& t : tokens) {
        out += t;
    }
    return out;
}

}  // namespace helexa::text::detail

namespace helexa::text {

using detail::DecodeStep;

StreamingDecoder::StreamingDecoder(std::shared_ptr<const detail::TokenizerImpl> impl,
                                   bool skip_special)
    : impl_(std::move(impl)), skip_special_(skip_special) {}

void StreamingDecoder::emit_bytes(std::string_view bytes, std::string& out) {
    pending_.append(bytes);
    size_t i = 0;
    const std::string_view p = pending_;
    while (i < p.size()) {
        const size_t n = detail::utf8_valid_len(p, i);
        if (n > 0) {
            out.append(p.substr(i, n));
            i += n;
            continue;
        }
        const size_t partial = detail::utf8_partial_len(p, i);
        if (partial > 0 && i + partial == p.size()) {
            break;  // an unfinished character: wait for its remaining bytes
        }
        out.append(detail::kReplacementChar);
        i += partial == 0 ? 1 : partial;
    }
    pending_.erase(0, i);
}

std::string StreamingDecoder::push(int32_t id) {
    std::string out;
    const detail::TokenizerImpl& impl = *impl_;
    if (skip_special_ && impl.is_special(id)) {
        return out;
    }
    const std::string* token = impl.token_string(id);
    if (token == nullptr) {
        return out;
    }
    std::string piece = *token;
    const int64_t index = n_tokens_++;
    if (!impl.decoder.present) {
        if (index > 0) {
            emit_bytes(" ", out);  // no decoder: tokens are joined by spaces
        }
        emit_bytes(piece, out);
        return out;
    }
    bool fused = false;
    for (const detail::DecoderStep& step : impl.decoder.steps) {
        switch (step.kind) {
            case DecodeStep::kByteLevel:
                if (auto raw = detail::byte_level_decode_token(piece)) {
                    piece = std::move(*raw);
                }
                fused = true;
                break;
            case DecodeStep::kMetaspace:
                detail::replace_all(piece, step.pattern, " ");
                if (index == 0 && step.prepend && !piece.empty() && piece[0] == ' ') {
                    piece.erase(0, 1);
                }
                break;
            case DecodeStep::kReplace:
                detail::replace_all(piece, step.pattern, step.content);
                break;
            case DecodeStep::kByteFallback:
                if (auto b = detail::parse_byte_token(piece)) {
                    piece.assign(1, static_cast<char>(*b));
                }
                break;
            case DecodeStep::kFuse:
                fused = true;
                break;
            case DecodeStep::kStrip:
                if (!fused) {
                    detail::strip_token(piece, step.content, step.start, step.stop);
                    break;
                }
                // After Fuse the strip applies to the start of the whole output.
                // NOTE: a trailing strip (stop > 0) of the fused text is not applied when
                // streaming: it would need to hold back every trailing match indefinitely.
                while (!emitted_text_ && n_stripped_ < step.start && !piece.empty() &&
                       piece.compare(0, step.content.size(), step.content) == 0) {
                    piece.erase(0, step.content.size());
                    ++n_stripped_;
                }
                break;
        }
    }
    if (!piece.empty()) {
        emitted_text_ = true;
    }
    emit_bytes(piece, out);
    return out;
}

std::string StreamingDecoder::finish() {
    std::string out;
    detail::utf8_append_lossy(pending_, out);
    pending_.clear();
    n_tokens_ = 0;
    n_stripped_ = 0;
    emitted_text_ = false;
    return out;
}

}  // namespace helexa::text
