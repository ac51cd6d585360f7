// Tool-call bodies: parsing the text a model writes between tool-call markers into a name and
// a JSON arguments object, with the request's tool schemas used to type XML-form parameters.
// Formats:
//   JSON  {"name":"f","arguments":{...}}   (Hermes / Qwen3-Instruct; "parameters" also accepted)
//   XML   <function=f><parameter=p>value</parameter>...</function>   (Qwen3-Coder / Qwen3.6)
// Light repair of near-JSON: up to 3 extra trailing '}', `name` nested inside `arguments`
// hoisted when there is no top-level name, `arguments` given as a JSON string parsed.
// Coercion: a parameter is converted to its declared schema type (integer, number, boolean,
// null, object, array parsed from JSON text, string kept verbatim); a value that does not fit
// its type falls back to the string, so nothing is dropped. Without a declared type the value
// is sniffed (JSON scalar/object/array if it parses as one, else string).
// Thread-safety: pure functions; ToolSchemas is immutable after construction.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace helexa::text {

// tool name -> parameter name -> JSON schema type ("integer", "string", ...).
struct ToolSchemas {
    std::unordered_map<std::string, std::unordered_map<std::string, std::string>> types;

    // Declared type of `param` of `tool`, or "" when unknown.
    std::string_view type_of(std::string_view tool, std::string_view param) const;
};

// Builds the schema map from a request's tools: OpenAI form
// [{"type":"function","function":{"name","parameters":{"properties":{...}}}}] and Anthropic form
// [{"name","input_schema":{...}}]. A type given as a list (["integer","null"]) uses its first
// non-null entry. Malformed entries are skipped; never throws.
ToolSchemas build_tool_schemas(const nlohmann::json& tools);

// Converts one raw parameter value to `type` (see above); "" means sniff.
nlohmann::json coerce_parameter(std::string_view raw, std::string_view type);

struct ParsedToolCall {
    std::string name;
    std::string arguments_json;  // serialized JSON object
};

// Parses a body (the text between the markers). `require_complete` is used for a call left
// open at the end of generation: the XML form must then contain </function> (JSON is complete
// by construction once it parses). Returns nullopt when the body is not a recognisable call.
std::optional<ParsedToolCall> parse_tool_call_body(std::string_view body,
                                                   const ToolSchemas& schemas,
                                                   bool require_complete = false);

}  // namespace helexa::text
