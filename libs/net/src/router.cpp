// Route table: patterns split into segments (literal, {param}, {param*}); matching walks the
// literal prefix and suffix around the one catch-all.
#include <algorithm>
#include <stdexcept>

#include "helexa/net/server.h"

namespace helexa::net {

namespace {

struct Segment {
    enum class Kind { kLiteral, kParam, kCatchAll };
    Kind kind = Kind::kLiteral;
    std::string text;  // literal text, or the parameter name
};

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    if (!path.empty() && path.front() == '/') {
        path.remove_prefix(1);
    }
    for (;;) {
        auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) {
            break;
        }
        path.remove_prefix(slash + 1);
    }
    return out;
}

std::vector<Segment> parse_pattern(std::string_view pattern) {
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
    }
    std::vector<Segment> out;
    bool seen_catch_all = false;
    for (auto part : split_path(pattern)) {
        Segment seg;
        if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
            std::string_view name = part.substr(1, part.size() - 2);
            seg.kind = Segment::Kind::kParam;
            if (!name.empty() && name.back() == '*') {
                if (seen_catch_all) {
                    throw std::invalid_argument("route pattern has two catch-alls: " +
                                                std::string(pattern));
                }
                seen_catch_all = true;
                seg.kind = Segment::Kind::kCatchAll;
                name.remove_suffix(1);
            }
            if (name.empty() || name.find_first_of("{}*/") != std::string_view::npos) {
                throw std::invalid_argument("bad parameter in route pattern: " +
                                            std::string(pattern));
            }
            seg.text = std::string(name);
        } else {
            if (part.find_first_of("{}") != std::string_view::npos) {
                throw std::invalid_argument("braces must enclose a whole segment: " +
                                            std::string(pattern));
            }
            seg.text = std::string(part);
        }
        out.push_back(std::move(seg));
    }
    return out;
}

struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    int n_params = 0;
    bool catch_all = false;
};

bool match_one(const Segment& seg, std::string_view part,
               std::map<std::string, std::string, std::less<>>& params) {
    if (seg.kind == Segment::Kind::kLiteral) {
        return seg.text == part;
    }
    if (part.empty()) {
        return false;  // a parameter never matches an empty segment
    }
    params[seg.text] = percent_decode(part);
    return true;
}

// Matches `parts` against `route`, filling params; false when it does not match.
bool match_route(const Route& route, const std::vector<std::string_view>& parts,
                 std::map<std::string, std::string, std::less<>>& params) {
    const auto& segs = route.segments;
    if (!route.catch_all) {
        if (segs.size() != parts.size()) {
            return false;
        }
        for (size_t i = 0; i < segs.size(); ++i) {
            if (!match_one(segs[i], parts[i], params)) {
                return false;
            }
        }
        return true;
    }
    if (parts.size() < segs.size()) {
        return false;
    }
    size_t star = 0;
    while (segs[star].kind != Segment::Kind::kCatchAll) {
        ++star;
    }
    for (size_t i = 0; i < star; ++i) {
        if (!match_one(segs[i], parts[i], params)) {
            return false;
        }
    }
    size_t n_suffix = segs.size() - star - 1;
    for (size_t k = 0; k < n_suffix; ++k) {
        if (!match_one(segs[segs.size() - 1 - k], parts[parts.size() - 1 - k], params)) {
            return false;
        }
    }
    // The catch-all takes the segments in between (at least one, none of them empty).
    std::string joined;
    for (size_t i = star; i < parts.size() - n_suffix; ++i) {
        if (parts[i].empty()) {
            return false;
        }
        if (!joined.empty()) {
            joined.push_back('/');
        }
        joined.append(percent_decode(parts[i]));
    }
    params[segs[star].text] = std::move(joined);
    return true;
}

}  // namespace

struct Router::Impl {
    std::vector<Route> routes;
    std::vector<Middleware> middleware;
};

Router::Router() : impl_(std::make_unique<Impl>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

void Router::add(std::string method, std::string_view pattern, Handler handler) {
    Route r;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; });
    r.method = std::move(method);
    r.pattern = std::string(pattern);
    r.segments = parse_pattern(pattern);
    for (const auto& s : r.segments) {
        r.n_params += s.kind != Segment::Kind::kLiteral ? 1 : 0;
        r.catch_all = r.catch_all || s.kind == Segment::Kind::kCatchAll;
    }
    r.handler = std::move(handler);
    impl_->routes.push_back(std::move(r));
}

void Router::add(std::string method, std::string_view pattern, SimpleHandler handler) {
    add(std::move(method), pattern,
        Handler([h = std::move(handler)](Request& req, ResponseWriter&) { return h(req); }));
}

void Router::use(Middleware middleware) {
    impl_->middleware.push_back(std::move(middleware));
}

const std::vector<Middleware>& Router::middleware() const {
    return impl_->middleware;
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
    Match result;
    auto parts = split_path(path);
    const Route* best = nullptr;
    const Route* best_get = nullptr;  // HEAD falls back to GET
    std::map<std::string, std::string, std::less<>> best_params;
    std::map<std::string, std::string, std::less<>> best_get_params;
    auto better = [](const Route* a, const Route* b) {
        // Is `a` more specific than the current best `b`?
        if (b == nullptr) {
            return true;
        }
        if (a->catch_all != b->catch_all) {
            return !a->catch_all;
        }
        return a->n_params < b->n_params;
    };
    for (const auto& route : impl_->routes) {
        std::map<std::string, std::string, std::less<>> params;
        if (!match_route(route, parts, params)) {
            continue;
        }
        if (std::find(result.allowed.begin(), result.allowed.end(), route.method) ==
            result.allowed.end()) {
            result.allowed.push_back(route.method);
        }
        if (route.method == method) {
            if (better(&route, best)) {
                best = &route;
                best_params = std::move(params);
            }
        } else if (method == "HEAD" && route.method == "GET") {
            if (better(&route, best_get)) {
                best_get = &route;
                best_get_params = std::move(params);
            }
        }
    }
    if (best == nullptr && best_get != nullptr) {
        best = best_get;
        best_params = std::move(best_get_params);
    }
    if (best != nullptr) {
        result.kind = Match::Kind::kFound;
        result.handler = &best->handler;
        result.pattern = best->pattern;
        result.params = std::move(best_params);
        result.allowed.clear();
        return result;
    }
    result.kind = result.allowed.empty() ? Match::Kind::kNotFound : Match::Kind::kMethodNotAllowed;
    if (result.kind == Match::Kind::kMethodNotAllowed &&
        std::find(result.allowed.begin(), result.allowed.end(), "GET") != result.allowed.end()) {
        result.allowed.push_back("HEAD");
    }
    return result;
}

}  // namespace helexa::net
