// Tool-call body parsing: JSON form with light repair, Qwen XML form with schema coercion.
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "helexa/common/strings.h"
#include "helexa/text/tool_call.h"

namespace helexa::text {

namespace {

using nlohmann::json;

// Never throws: invalid UTF-8 in XML-form strings is replaced, not rejected.
std::string dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json parse_json(std::string_view text) {
    return json::parse(text.begin(), text.end(), nullptr, false);
}

bool is_integer_text(std::string_view s) {
    std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i >= s.size() || s.size() - i > 19) {
        return false;
    }
    for (; i < s.size(); ++i) {
        if (std::isdigit(static_cast<unsigned char>(s[i])) == 0) {
            return false;
        }
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// Turns a parsed JSON body into a call, applying the structural repairs.
std::optional<ParsedToolCall> call_from_json(json body) {
    if (!body.is_object()) {
        return std::nullopt;
    }
    json args = json::object();
    if (auto it = body.find("arguments"); it != body.end()) {
        args = *it;
    } else if (auto it2 = body.find("parameters"); it2 != body.end()) {
        args = *it2;
    }
    if (args.is_string()) {
        // Arguments double-encoded as a JSON string (the OpenAI wire habit).
        json inner = parse_json(args.get_ref<const std::string&>());
        if (inner.is_discarded()) {
            return std::nullopt;
        }
        args = std::move(inner);
    }
    if (args.is_null()) {
        args = json::object();
    }
    if (!args.is_object()) {
        return std::nullopt;
    }
    std::string name;
    if (auto it = body.find("name"); it != body.end() && it->is_string()) {
        name = it->get<std::string>();
    } else if (auto nested = args.find("name"); nested != args.end() && nested->is_string()) {
        // `name` landed inside `arguments`: hoist it.
        name = nested->get<std::string>();
        args.erase(nested);
    }
    if (trim_space(name).empty()) {
        return std::nullopt;
    }
    return ParsedToolCall{std::string(trim_space(name)), dump(args)};
}

std::optional<ParsedToolCall> parse_json_body(std::string_view body) {
    json parsed = parse_json(body);
    // Repair: the model overshoots its closing braces by up to three.
    std::string_view cut = body;
    for (int extra = 0; parsed.is_discarded() && extra < 3; ++extra) {
        cut = trim_space(cut);
        if (cut.empty() || cut.back() != '}') {
            break;
        }
        cut.remove_suffix(1);
        parsed = parse_json(cut);
    }
    if (parsed.is_discarded()) {
        return std::nullopt;
    }
    return call_from_json(std::move(parsed));
}

// Qwen3-Coder values put the value on its own line(s): strip one newline on each side.
std::string_view strip_value_newlines(std::string_view v) {
    if (!v.empty() && v.front() == '\n') {
        v.remove_prefix(1);
    } else if (v.size() >= 2 && v.substr(0, 2) == "\r\n") {
        v.remove_prefix(2);
    }
    if (!v.empty() && v.back() == '\n') {
        v.remove_suffix(1);
        if (!v.empty() && v.back() == '\r') {
            v.remove_suffix(1);
        }
    }
    return v;
}

std::optional<ParsedToolCall> parse_xml_body(std::string_view body, const ToolSchemas& schemas,
                                             bool require_complete) {
    constexpr std::string_view kFunction = "<function=";
    constexpr std::string_view kFunctionEnd = "</function>";
    constexpr std::string_view kParam = "<parameter=";
    constexpr std::string_view kParamEnd = "</parameter>";
    const std::size_t fn = body.find(kFunction);
    if (fn == std::string_view::npos || !trim_space(body.substr(0, fn)).empty()) {
        return std::nullopt;
    }
    std::string_view rest = body.substr(fn + kFunction.size());
    const std::size_t gt = rest.find('>');
    if (gt == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string name(trim_space(rest.substr(0, gt)));
    if (name.empty() || name.find('<') != std::string::npos) {
        return std::nullopt;
    }
    rest.remove_prefix(gt + 1);
    const std::size_t end = rest.find(kFunctionEnd);
    if (end == std::string_view::npos && require_complete) {
        return std::nullopt;
    }
    if (end != std::string_view::npos) {
        rest = rest.substr(0, end);
    }
    json args = json::object();
    for (std::size_t p = rest.find(kParam); p != std::string_view::npos; p = rest.find(kParam)) {
        rest.remove_prefix(p + kParam.size());
        const std::size_t pgt = rest.find('>');
        if (pgt == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string param(trim_space(rest.substr(0, pgt)));
        if (param.empty()) {
            return std::nullopt;
        }
        rest.remove_prefix(pgt + 1);
        // A missing </parameter> ends the value at the next parameter or the end.
        std::size_t vend = rest.find(kParamEnd);
        std::size_t skip = kParamEnd.size();
        if (const std::size_t next = rest.find(kParam); next < vend) {
            vend = next;
            skip = 0;
        }
        if (vend == std::string_view::npos) {
            vend = rest.size();
            skip = 0;
        }
        const std::string_view value = strip_value_newlines(rest.substr(0, vend));
        args[param] = coerce_parameter(value, schemas.type_of(name, param));
        rest.remove_prefix(vend + skip);
    }
    return ParsedToolCall{name, dump(args)};
}

}  // namespace

std::string_view ToolSchemas::type_of(std::string_view tool, std::string_view param) const {
    const auto t = types.find(std::string(tool));
    if (t == types.end()) {
        return {};
    }
    const auto p = t->second.find(std::string(param));
    return p == t->second.end() ? std::string_view{} : std::string_view(p->second);
}

ToolSchemas build_tool_schemas(const json& tools) {
    ToolSchemas schemas;
    if (!tools.is_array()) {
        return schemas;
    }
    for (const json& tool : tools) {
        if (!tool.is_object()) {
            continue;
        }
        const json* fn = &tool;
        if (auto it = tool.find("function"); it != tool.end() && it->is_object()) {
            fn = &*it;
        }
        const auto name = fn->find("name");
        if (name == fn->end() || !name->is_string()) {
            continue;
        }
        const json* params = nullptr;
        for (const char* key : {"parameters", "input_schema"}) {
            if (auto it = fn->find(key); it != fn->end() && it->is_object()) {
                params = &*it;
                break;
            }
        }
        auto& out = schemas.types[name->get<std::string>()];
        if (params == nullptr) {
            continue;
        }
        const auto props = params->find("properties");
        if (props == params->end() || !props->is_object()) {
            continue;
        }
        for (const auto& [param, schema] : props->items()) {
            if (!schema.is_object()) {
                continue;
            }
            const auto type = schema.find("type");
            if (type == schema.end()) {
                continue;
            }
            if (type->is_string()) {
                out[param] = type->get<std::string>();
            } else if (type->is_array()) {
                for (const json& t : *type) {
                    if (t.is_string() && t.get_ref<const std::string&>() != "null") {
                        out[param] = t.get<std::string>();
                        break;
                    }
                }
            }
        }
    }
    return schemas;
}

json coerce_parameter(std::string_view raw, std::string_view type) {
    const std::string_view v = trim_space(raw);
    if (type == "string") {
        return json(std::string(raw));
    }
    if (type == "integer") {
        if (is_integer_text(v)) {
            errno = 0;
            const std::string s(v);
            const long long n = std::strtoll(s.c_str(), nullptr, 10);
            if (errno == 0) {
                return json(static_cast<int64_t>(n));
            }
        }
        return json(std::string(raw));
    }
    if (type == "number") {
        if (is_integer_text(v)) {
            return coerce_parameter(v, "integer");
        }
        const json parsed = parse_json(v);
        if (parsed.is_number() && std::isfinite(parsed.get<double>())) {
            return parsed;
        }
        return json(std::string(raw));
    }
    if (type == "boolean") {
        const std::string l = lower(v);
        if (l == "true") {
            return json(true);
        }
        if (l == "false") {
            return json(false);
        }
        return json(std::string(raw));
    }
    if (type == "null") {
        return v == "null" ? json(nullptr) : json(std::string(raw));
    }
    if (type == "object" || type == "array") {
        const json parsed = parse_json(v);
        if (!parsed.is_discarded() && (type == "object" ? parsed.is_object() : parsed.is_array())) {
            return parsed;
        }
        return json(std::string(raw));
    }
    // Unknown or undeclared type: sniff JSON, else keep the text.
    const json parsed = parse_json(v);
    if (!parsed.is_discarded() && !parsed.is_string() && !v.empty()) {
        return parsed;
    }
    return json(std::string(raw));
}

std::optional<ParsedToolCall> parse_tool_call_body(std::string_view body,
                                                   const ToolSchemas& schemas,
                                                   bool require_complete) {
    const std::string_view t = trim_space(body);
    if (t.empty()) {
        return std::nullopt;
    }
    if (t.front() == '{') {
        return parse_json_body(t);
    }
    return parse_xml_body(t, schemas, require_complete);
}

}  // namespace helexa::text
