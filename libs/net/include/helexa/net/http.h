// HTTP message values shared by the server and the client: Headers (ordered, case-insensitive
// lookup), the server-side Request and the complete Response a handler returns.
//
// Use: handlers read a Request and return a Response (Response::json / text / error); the client
// hands back Headers verbatim so a proxy can forward them. No Asio or Beast here.
// Thread-safety: plain values; copy or move freely, no internal synchronisation.
#pragma once

#include <any>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/error.h"
#include "helexa/common/error_envelope.h"
#include "helexa/common/result.h"

namespace helexa::net {

// ASCII case-insensitive equality (HTTP field names, methods in lookups).
bool iequals(std::string_view a, std::string_view b);

// Header fields in arrival order. Names compare case-insensitively; duplicates are kept (add) so
// that forwarding is verbatim, `get` returns the first.
class Headers {
public:
    using Field = std::pair<std::string, std::string>;

    Headers() = default;
    Headers(std::initializer_list<Field> fields) : fields_(fields) {}

    // First value of `name`, if present.
    std::optional<std::string_view> get(std::string_view name) const;
    // First value of `name`, or `fallback`.
    std::string get_or(std::string_view name, std::string_view fallback) const;
    bool contains(std::string_view name) const;
    // Replaces every field called `name` by one field.
    void set(std::string name, std::string value);
    // Appends a field (keeps existing ones with the same name).
    void add(std::string name, std::string value);
    // Removes every field called `name`; returns how many were removed.
    size_t remove(std::string_view name);

    const std::vector<Field>& fields() const { return fields_; }
    bool empty() const { return fields_.empty(); }
    size_t size() const { return fields_.size(); }
    auto begin() const { return fields_.begin(); }
    auto end() const { return fields_.end(); }

private:
    std::vector<Field> fields_;
};

// A received request as a handler sees it. The server fills every field before the middleware
// chain runs (routing happens first, so middleware can read `route` and `path_params`).
struct Request {
    std::string method;        // upper case as sent: "GET", "POST", "HEAD", ...
    std::string target;        // raw request target: "/v1/messages?beta=true"
    std::string path;          // target before '?', still percent-encoded: "/v1/messages"
    std::string query_string;  // target after '?', raw: "beta=true" (empty when none)
    std::vector<std::pair<std::string, std::string>> query;  // decoded query parameters, in order
    Headers headers;
    std::string body;
    std::map<std::string, std::string, std::less<>> path_params;  // decoded: {"id": "Qwen/Qwen3-8B"}
    std::string route;           // matched route pattern ("/models/{id*}/endpoint"); empty if none
    std::string remote_address;  // "127.0.0.1:53422"
    bool keep_alive = true;      // what the client asked for (HTTP/1.1 default true)
    // Per-request values middleware hands to handlers (request id, identity, ...).
    std::map<std::string, std::any, std::less<>> locals;

    // First query parameter called `name` (decoded).
    std::optional<std::string_view> query_param(std::string_view name) const;
    // Path parameter `name`; empty view when absent.
    std::string_view path_param(std::string_view name) const;
    // Header lookup shortcut.
    std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }
    // Parses the body as JSON; kInvalidJson naming the parse error on failure.
    Result<nlohmann::json> json_body() const;
    bool is_head() const { return method == "HEAD"; }
};

// A complete response. For HEAD requests the server sends the headers and Content-Length of
// `body` without the body itself.
struct Response {
    int status = 200;
    Headers headers;
    std::string body;

    // `value` serialised, Content-Type application/json.
    static Response json(int status, const nlohmann::json& value);
    static Response json(const nlohmann::json& value) { return json(200, value); }
    static Response text(int status, std::string body,
                         std::string content_type = "text/plain; charset=utf-8");
    // No body (e.g. 204).
    static Response empty(int status);
    // The OpenAI error envelope for `error` (status, JSON body, Retry-After when set).
    static Response error(const Error& error);
    static Response from_envelope(const Envelope& envelope);
};

// Percent-decodes `text` ('+' stays '+' unless `plus_is_space`). Invalid escapes are kept as-is.
std::string percent_decode(std::string_view text, bool plus_is_space = false);

// Splits a raw query string into decoded (name, value) pairs ('+' means space).
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// The standard reason phrase for a status ("Not Found"), or "" when unknown.
std::string_view reason_phrase(int status);

}  // namespace helexa::net
