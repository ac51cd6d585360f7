// SseWriter: SSE framing over a ResponseWriter.
#include <string>

#include "helexa/net/server.h"
#include "helexa/net/sse.h"

namespace helexa::net {

asio::awaitable<bool> SseWriter::start(Headers headers) {
    if (!headers.contains("Content-Type")) {
        headers.set("Content-Type", "text/event-stream");
    }
    if (!headers.contains("Cache-Control")) {
        headers.set("Cache-Control", "no-cache");
    }
    if (!headers.contains("X-Accel-Buffering")) {
        headers.set("X-Accel-Buffering", "no");
    }
    co_return co_await writer_.start(200, std::move(headers));
}

asio::awaitable<bool> SseWriter::event(std::string_view data, std::string_view name) {
    // Named, not a temporary inside the co_await expression (GCC 12 coroutine bugs).
    std::string text = format_sse_event(data, name);
    co_return co_await writer_.write(text);
}

asio::awaitable<bool> SseWriter::comment(std::string_view text) {
    std::string line = format_sse_comment(text);
    co_return co_await writer_.write(line);
}

asio::awaitable<bool> SseWriter::done() {
    std::string text = format_sse_event("[DONE]");
    co_return co_await writer_.write_and_finish(text);
}

}  // namespace helexa::net
