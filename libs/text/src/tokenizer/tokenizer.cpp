// Tokenizer: loading tokenizer.json and the configs, the encode pipeline, decode.
#include "helexa/text/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace helexa::text {
namespace detail {
namespace {

Result<nlohmann::json> parse_json(std::string_view text, const char* what) {
    auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) {
        return fail(ErrorCode::kConfig, std::string(what) + ": invalid JSON");
    }
    return j;
}

Result<std::string> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return fail(ErrorCode::kIo, "cannot open " + path.string());
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        return fail(ErrorCode::kIo, "cannot read " + path.string());
    }
    return ss.str();
}

Result<PostProcessor> make_post(const nlohmann::json& j, const TokenMap& added,
                                const BpeModel& model) {
    PostProcessor p;
    if (j.is_null()) {
        return p;
    }
    const std::string type = j.value("type", "");
    if (type == "ByteLevel") {
        return p;  // only affects offsets
    }
    if (type == "Sequence") {
        for (const auto& sub : j.at("processors")) {
            auto inner = make_post(sub, added, model);
            if (!inner) {
                return fail(inner.error());
            }
            p.prefix.insert(p.prefix.begin(), inner->prefix.begin(), inner->prefix.end());
            p.suffix.insert(p.suffix.end(), inner->suffix.begin(), inner->suffix.end());
        }
        return p;
    }
    if (type == "BertProcessing" || type == "RobertaProcessing") {
        p.prefix.push_back(j.at("cls").at(1).get<int32_t>());
        p.suffix.push_back(j.at("sep").at(1).get<int32_t>());
        return p;
    }
    if (type == "TemplateProcessing") {
        bool seen_sequence = false;
        const auto& specials = j.at("special_tokens");
        for (const auto& item : j.at("single")) {
            if (item.contains("Sequence")) {
                seen_sequence = true;
                continue;
            }
            const std::string name = item.at("SpecialToken").at("id").get<std::string>();
            if (!specials.contains(name)) {
                return fail(ErrorCode::kConfig, "TemplateProcessing: unknown special " + name);
            }
            auto& dst = seen_sequence ? p.suffix : p.prefix;
            for (const auto& id : specials.at(name).at("ids")) {
                dst.push_back(id.get<int32_t>());
            }
        }
        (void)added;
        (void)model;
        return p;
    }
    return fail(ErrorCode::kConfig, "unsupported post_processor type: " + type);
}

std::optional<std::string> token_field(const nlohmann::json& cfg, const char* key) {
    const auto it = cfg.find(key);
    if (it == cfg.end()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_object() && it->contains("content") && it->at("content").is_string()) {
        return it->at("content").get<std::string>();
    }
    return std::nullopt;
}

void ids_from(const nlohmann::json& v, std::vector<int32_t>& out) {
    if (v.is_number_integer()) {
        out.push_back(v.get<int32_t>());
    } else if (v.is_array()) {
        for (const auto& e : v) {
            if (e.is_number_integer()) {
                out.push_back(e.get<int32_t>());
            }
        }
    }
}

}  // namespace

const std::string* TokenizerImpl::token_string(int32_t id) const {
    if (auto it = added_by_id.find(id); it != added_by_id.end()) {
        return &added[it->second].content;
    }
    return model->id_to_token(id);
}

std::string TokenizerImpl::normalize(std::string_view text) const {
    std::string s(text);
    for (const auto& n : normalizers) {
        n->normalize(s);
    }
    return s;
}

void TokenizerImpl::encode_text(std::string_view text, bool at_start,
                                std::vector<int32_t>& out) const {
    thread_local std::vector<Segment> segments;
    thread_local std::vector<std::string_view> cur;
    thread_local std::vector<std::string_view> next;
    thread_local PieceArena arena;

    std::string normalized_storage;
    std::string_view normalized = text;
    if (!normalizers.empty()) {
        normalized_storage = normalize(text);
        normalized = normalized_storage;
    }
    segments.clear();
    normalized_matcher.split(normalized, added, segments);
    // Copy: the pre-tokenizer below reuses no Segment storage, but recursion-free reuse of the
    // thread_local vector is simplest with a local snapshot of its size.
    const size_t n_segments = segments.size();
    for (size_t si = 0; si < n_segments; ++si) {
        const Segment seg = segments[si];
        if (seg.added_id >= 0) {
            out.push_back(seg.added_id);
            continue;
        }
        const bool first = at_start && seg.text.data() == normalized.data();
        if (pre_tokenizer.steps.empty()) {
            model->tokenize(seg.text, out);
            continue;
        }
        arena.clear();
        cur.clear();
        cur.push_back(seg.text);
        for (const auto& step : pre_tokenizer.steps) {
            next.clear();
            for (size_t i = 0; i < cur.size(); ++i) {
                step->split(cur[i], first && i == 0, next, arena);
            }
            cur.swap(next);
        }
        for (std::string_view word : cur) {
            model->tokenize(word, out);
        }
    }
}

void TokenizerImpl::encode(std::string_view text, bool add_special,
                           std::vector<int32_t>& out) const {
    std::string sanitized;
    if (!utf8_is_valid(text)) {
        utf8_append_lossy(text, sanitized);
        text = sanitized;
    }
    if (add_special && has_post) {
        out.insert(out.end(), post.prefix.begin(), post.prefix.end());
    }
    std::vector<Segment> segments;
    raw_matcher.split(text, added, segments);
    for (const Segment& seg : segments) {
        if (seg.added_id >= 0) {
            out.push_back(seg.added_id);
        } else {
            encode_text(seg.text, seg.text.data() == text.data(), out);
        }
    }
    if (add_special && has_post) {
        out.insert(out.end(), post.suffix.begin(), post.suffix.end());
    }
}

Result<std::shared_ptr<TokenizerImpl>> load(std::string_view tokenizer_json,
                                            std::string_view config_json,
                                            std::string_view generation_json) {
    auto tj = parse_json(tokenizer_json, "tokenizer.json");
    if (!tj) {
        return fail(tj.error());
    }
    auto impl = std::make_shared<TokenizerImpl>();
    const nlohmann::json& j = *tj;
    if (!j.is_object() || !j.contains("model")) {
        return fail(ErrorCode::kConfig, "tokenizer.json: no model");
    }
    auto pre = make_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()));
    if (!pre) {
        return fail(pre.error());
    }
    impl->pre_tokenizer = std::move(*pre);
    auto model = BpeModel::from_json(j.at("model"), impl->pre_tokenizer.byte_level);
    if (!model) {
        return fail(model.error());
    }
    impl->model = std::move(*model);
    const auto norm_json = j.value("normalizer", nlohmann::json());
    if (!norm_json.is_null()) {
        auto n = make_normalizer(norm_json);
        if (!n) {
            return fail(n.error());
        }
        impl->normalizers.push_back(std::move(*n));
    }
    int32_t max_id = impl->model->size() - 1;
    if (j.contains("added_tokens") && j.at("added_tokens").is_array()) {
        for (const auto& a : j.at("added_tokens")) {
            AddedToken t;
            t.id = a.at("id").get<int32_t>();
            if (t.id < 0) {
                return fail(ErrorCode::kConfig, "added token with negative id");
            }
            t.content = a.at("content").get<std::string>();
            t.single_word = a.value("single_word", false);
            t.lstrip = a.value("lstrip", false);
            t.rstrip = a.value("rstrip", false);
            t.normalized = a.value("normalized", false);
            t.special = a.value("special", false);
            impl->added_by_content.emplace(t.content, t.id);
            impl->added_by_id.emplace(t.id, impl->added.size());
            max_id = std::max(max_id, t.id);
            impl->added.push_back(std::move(t));
        }
    }
    impl->vocab_size = max_id + 1;
    impl->special_flag.assign(static_cast<size_t>(impl->vocab_size), 0);
    std::vector<size_t> raw_which;
    std::vector<std::string> raw_patterns;
    std::vector<size_t> norm_which;
    std::vector<std::string> norm_patterns;
    for (size_t i = 0; i < impl->added.size(); ++i) {
        const AddedToken& t = impl->added[i];
        if (t.special) {
            impl->special_flag[static_cast<size_t>(t.id)] = 1;
        }
        if (t.normalized) {
            norm_which.push_back(i);
            norm_patterns.push_back(impl->normalize(t.content));
        } else {
            raw_which.push_back(i);
            raw_patterns.push_back(t.content);
        }
    }
    impl->raw_matcher.build(impl->added, raw_which, raw_patterns);
    impl->normalized_matcher.build(impl->added, norm_which, norm_patterns);

    const auto post_json = j.value("post_processor", nlohmann::json());
    auto post = make_post(post_json, impl->added_by_content, *impl->model);
    if (!post) {
        return fail(post.error());
    }
    impl->post = std::move(*post);
    impl->has_post = !post_json.is_null();
    auto dec = make_decoder(j.value("decoder", nlohmann::json()));
    if (!dec) {
        return fail(dec.error());
    }
    impl->decoder = std::move(*dec);

    auto lookup = [&](const std::string& tok) -> std::optional<int32_t> {
        if (auto it = impl->added_by_content.find(tok); it != impl->added_by_content.end()) {
            return it->second;
        }
        return impl->model->token_to_id(tok);
    };
    SpecialTokens& sp = impl->specials;
    std::vector<int32_t> gen_eos;
    if (!config_json.empty()) {
        auto cfg = parse_json(config_json, "tokenizer_config.json");
        if (!cfg) {
            return fail(cfg.error());
        }
        sp.bos_token = token_field(*cfg, "bos_token");
        sp.eos_token = token_field(*cfg, "eos_token");
        sp.pad_token = token_field(*cfg, "pad_token");
        sp.unk_token = token_field(*cfg, "unk_token");
        const auto bool_field = [&](const char* key) {
            const auto it = cfg->find(key);
            return it != cfg->end() && it->is_boolean() && it->get<bool>();
        };
        sp.add_bos_token = bool_field("add_bos_token");
        sp.add_eos_token = bool_field("add_eos_token");
    }
    if (sp.bos_token) {
        sp.bos_id = lookup(*sp.bos_token);
    }
    if (sp.eos_token) {
        sp.eos_id = lookup(*sp.eos_token);
    }
    if (sp.pad_token) {
        sp.pad_id = lookup(*sp.pad_token);
    }
    if (sp.unk_token) {
        sp.unk_id = lookup(*sp.unk_token);
    }
    if (!generation_json.empty()) {
        auto gen = parse_json(generation_json, "generation_config.json");
        if (!gen) {
            return fail(gen.error());
        }
        if (gen->contains("eos_token_id")) {
            ids_from(gen->at("eos_token_id"), gen_eos);
        }
        if (!sp.bos_id && gen->contains("bos_token_id") &&
            gen->at("bos_token_id").is_number_integer()) {
            sp.bos_id = gen->at("bos_token_id").get<int32_t>();
        }
    }
    for (int32_t id : gen_eos) {
        if (std::find(sp.eos_ids.begin(), sp.eos_ids.end(), id) == sp.eos_ids.end()) {
            sp.eos_ids.push_back(id);
        }
    }
    if (sp.eos_id &&
        std::find(sp.eos_ids.begin(), sp.eos_ids.end(), *sp.eos_id) == sp.eos_ids.end()) {
        sp.eos_ids.push_back(*sp.eos_id);
    }
    return impl;
}

}  // namespace detail

Tokenizer::Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl) : impl_(std::move(impl)) {}

Result<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json,
                                       std::string_view tokenizer_config_json,
                                       std::string_view generation_config_json) {
    try {
        auto impl = detail::load(tokenizer_json, tokenizer_config_json, generation_config_json);
        if (!impl) {
            return fail(impl.error());
        }
        return Tokenizer(std::move(*impl));
    } catch (const nlohmann::json::exception& e) {
        return fail(ErrorCode::kConfig, std::string("tokenizer.json: ") + e.what());
    }
}

Result<Tokenizer> Tokenizer::from_files(const TokenizerFiles& files) {
    auto tok = detail::read_file(files.tokenizer_json);
    if (!tok) {
        return fail(tok.error());
    }
    std::string cfg;
    std::string gen;
    if (files.tokenizer_config_json) {
        auto c = detail::read_file(*files.tokenizer_config_json);
        if (!c) {
            return fail(c.error());
        }
        cfg = std::move(*c);
    }
    if (files.generation_config_json) {
        auto g = detail::read_file(*files.generation_config_json);
        if (!g) {
            return fail(g.error());
        }
        gen = std::move(*g);
    }
    auto t = from_json(*tok, cfg, gen);
    if (!t) {
        return fail(std::move(t).error().with_context("loading " + files.tokenizer_json.string()));
    }
    return t;
}

Result<Tokenizer> Tokenizer::from_dir(const std::filesystem::path& dir) {
    TokenizerFiles files;
    files.tokenizer_json = dir / "tokenizer.json";
    std::error_code ec;
    if (std::filesystem::exists(dir / "tokenizer_config.json", ec)) {
        files.tokenizer_config_json = dir / "tokenizer_config.json";
    }
    if (std::filesystem::exists(dir / "generation_config.json", ec)) {
        files.generation_config_json = dir / "generation_config.json";
    }
    return from_files(files);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    impl_->encode(text, add_special_tokens, out);
    return out;
}

void Tokenizer::encode_into(std::string_view text, bool add_special_tokens,
                            std::vector<int32_t>& out) const {
    impl_->encode(text, add_special_tokens, out);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
    const detail::TokenizerImpl& impl = *impl_;
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        if (skip_special_tokens && impl.is_special(id)) {
            continue;
        }
        if (const std::string* t = impl.token_string(id)) {
            tokens.push_back(*t);
        }
    }
    return detail::run_decoder(impl.decoder, std::move(tokens));
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
    if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) {
        return it->second;
    }
    return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
    if (const std::string* t = impl_->token_string(id)) {
        return *t;
    }
    return std::nullopt;
}

int32_t Tokenizer::vocab_size() const {
    return impl_->vocab_size;
}

bool Tokenizer::is_special(int32_t id) const {
    return impl_->is_special(id);
}

std::vector<std::pair<int32_t, std::string>> Tokenizer::added_tokens() const {
    std::vector<std::pair<int32_t, std::string>> out;
    out.reserve(impl_->added.size());
    for (const auto& t : impl_->added) {
        out.emplace_back(t.id, t.content);
    }
    std::sort(out.begin(), out.end());
    return out;
}

const SpecialTokens& Tokenizer::special_tokens() const {
    return impl_->specials;
}

StreamingDecoder Tokenizer::streaming_decoder(bool skip_special_tokens) const {
    return StreamingDecoder(impl_, skip_special_tokens);
}

}  // namespace helexa::text
