// A minimal blocking HTTP/1.1 client over one keep-alive TCP connection, for the proxy benchmark
// only: it must cost the load generator as little CPU as possible on a 2-core machine, so it
// writes pre-built requests and parses just status, Content-Length and chunked framing.
// Thread-safety: one connection per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace helexa::bench {

struct HttpReply {
    int status = 0;
    std::string body;  // de-chunked
};

class BlockingConnection {
public:
    BlockingConnection() = default;
    ~BlockingConnection();
    BlockingConnection(BlockingConnection&& other) noexcept;
    BlockingConnection& operator=(BlockingConnection&& other) noexcept;
    BlockingConnection(const BlockingConnection&) = delete;
    BlockingConnection& operator=(const BlockingConnection&) = delete;

    // Connects to 127.0.0.1:port with TCP_NODELAY; false on failure.
    bool connect(uint16_t port);
    bool send_all(std::string_view bytes);
    // Reads one complete response (Content-Length or chunked). nullopt on error or EOF.
    std::optional<HttpReply> read_reply();
    // Reads until the raw bytes received so far contain `needle` (headers included).
    bool read_until(std::string_view needle);
    void close();
    bool is_open() const { return fd_ >= 0; }

private:
    bool fill();  // one recv() into buf_
    bool need(size_t n);  // at least n unread bytes
    std::optional<std::string> read_line();

    int fd_ = -1;
    std::string buf_;
    size_t pos_ = 0;
};

// "POST <path> HTTP/1.1" with a JSON body, keep-alive.
std::string build_post(std::string_view path, std::string_view body);

}  // namespace helexa::bench
