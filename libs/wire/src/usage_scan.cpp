// Usage tail scanning. See the header for the rules.
#include "helexa/wire/usage_scan.h"

#include <cctype>
#include <limits>

namespace helexa::wire {
namespace {

constexpr std::string_view kUsageNeedle = "\"usage\"";

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// End (one past the closing brace) of the JSON object starting at `open`, string-aware, or npos
// when the object is not closed within `text`.
size_t object_end(std::string_view text, size_t open) {
    int depth = 0;
    bool in_string = false;
    for (size_t i = open; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}') {
            if (--depth == 0) {
                return i + 1;
            }
        }
    }
    return std::string_view::npos;
}

// The integer after `"key"` `:` at depth 1 of `object` (nested objects such as
// prompt_tokens_details are skipped so their keys cannot shadow the top-level counts).
std::optional<int64_t> top_level_int(std::string_view object, std::string_view key) {
    int depth = 0;
    bool in_string = false;
    size_t string_start = 0;
    for (size_t i = 0; i < object.size(); ++i) {
        char c = object[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
                continue;
            }
            if (c != '"') {
                continue;
            }
            in_string = false;
            std::string_view name = object.substr(string_start, i - string_start);
            if (depth != 1 || name != key) {
                continue;
            }
            size_t j = i + 1;
            while (j < object.size() && is_space(object[j])) {
                ++j;
            }
            if (j >= object.size() || object[j] != ':') {
                continue;  // it was a value, not a key
            }
            ++j;
            while (j < object.size() && is_space(object[j])) {
                ++j;
            }
            int64_t value = 0;
            size_t digits = 0;
            while (j < object.size() && std::isdigit(static_cast<unsigned char>(object[j])) != 0) {
                if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) {
                    return std::nullopt;  // absurd count
                }
                value = value * 10 + (object[j] - '0');
                ++j;
                ++digits;
            }
            if (digits == 0) {
                return std::nullopt;  // null or not a count
            }
            return value;
        }
        if (c == '"') {
            in_string = true;
            string_start = i + 1;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return std::nullopt;
}

struct Found {
    std::optional<int64_t> prompt;
    std::optional<int64_t> completion;
};

Found read_counts(std::string_view object) {
    Found found;
    found.prompt = top_level_int(object, "prompt_tokens");
    if (!found.prompt) {
        found.prompt = top_level_int(object, "input_tokens");
    }
    found.completion = top_level_int(object, "completion_tokens");
    if (!found.completion) {
        found.completion = top_level_int(object, "output_tokens");
    }
    return found;
}

}  // namespace

std::optional<UsageCounts> scan_usage(std::string_view tail) {
    std::optional<int64_t> prompt;
    std::optional<int64_t> completion;
    bool any = false;
    size_t search_end = tail.size();
    while (search_end > 0 && (!prompt || !completion)) {
        size_t at = tail.rfind(kUsageNeedle, search_end - 1);
        if (at == std::string_view::npos) {
            break;
        }
        search_end = at;
        if (at > 0 && tail[at - 1] == '\\') {
            continue;  // an escaped quote: the word is inside a string value
        }
        size_t j = at + kUsageNeedle.size();
        while (j < tail.size() && is_space(tail[j])) {
            ++j;
        }
        if (j >= tail.size() || tail[j] != ':') {
            continue;
        }
        ++j;
        while (j < tail.size() && is_space(tail[j])) {
            ++j;
        }
        if (j >= tail.size() || tail[j] != '{') {
            continue;  // "usage": null (Responses shells) or cut off
        }
        size_t end = object_end(tail, j);
        if (end == std::string_view::npos) {
            continue;  // truncated object
        }
        Found found = read_counts(tail.substr(j, end - j));
        if (!found.prompt && !found.completion) {
            continue;
        }
        any = true;
        if (!prompt) {
            prompt = found.prompt;
        }
        if (!completion) {
            completion = found.completion;
        }
    }
    if (!any) {
        return std::nullopt;
    }
    return UsageCounts{prompt.value_or(0), completion.value_or(0)};
}

void UsageTailScanner::feed(std::string_view chunk) {
    bytes_seen_ += chunk.size();
    if (capacity_ == 0) {
        return;
    }
    if (chunk.size() >= capacity_) {
        buffer_.assign(chunk.substr(chunk.size() - capacity_));
        return;
    }
    buffer_.append(chunk);
    if (buffer_.size() > 2 * capacity_) {
        buffer_.erase(0, buffer_.size() - capacity_);
    }
}

std::string_view UsageTailScanner::tail() const {
    std::string_view view = buffer_;
    if (view.size() > capacity_) {
        view.remove_prefix(view.size() - capacity_);
    }
    return view;
}

std::optional<UsageCounts> UsageTailScanner::result() const {
    return scan_usage(tail());
}

}  // namespace helexa::wire
