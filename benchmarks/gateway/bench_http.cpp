#include "bench_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace helexa::bench {

BlockingConnection::~BlockingConnection() {
    close();
}

BlockingConnection::BlockingConnection(BlockingConnection&& other) noexcept
    : fd_(other.fd_), buf_(std::move(other.buf_)), pos_(other.pos_) {
    other.fd_ = -1;
}

BlockingConnection& BlockingConnection::operator=(BlockingConnection&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = other.fd_;
        buf_ = std::move(other.buf_);
        pos_ = other.pos_;
        other.fd_ = -1;
    }
    return *this;
}

bool BlockingConnection::connect(uint16_t port) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close();
        return false;
    }
    return true;
}

void BlockingConnection::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    buf_.clear();
    pos_ = 0;
}

bool BlockingConnection::send_all(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool BlockingConnection::fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > 64 * 1024) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    char tmp[16384];
    for (;;) {
        const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
}

bool BlockingConnection::need(size_t n) {
    while (buf_.size() - pos_ < n) {
        if (!fill()) {
            return false;
        }
    }
    return true;
}

std::optional<std::string> BlockingConnection::read_line() {
    for (;;) {
        const size_t eol = buf_.find("\r\n", pos_);
        if (eol != std::string::npos) {
            std::string line = buf_.substr(pos_, eol - pos_);
            pos_ = eol + 2;
            return line;
        }
        if (!fill()) {
            return std::nullopt;
        }
    }
}

namespace {

bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) {
        return false;
    }
    for (size_t i = 0; i < name.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
        v.remove_prefix(1);
    }
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
        v.remove_suffix(1);
    }
    return v;
}

}  // namespace

std::optional<HttpReply> BlockingConnection::read_reply() {
    auto status_line = read_line();
    if (!status_line || status_line->size() < 12) {
        return std::nullopt;
    }
    HttpReply reply;
    std::from_chars(status_line->data() + 9, status_line->data() + 12, reply.status);
    std::optional<size_t> content_length;
    bool chunked = false;
    for (;;) {
        auto line = read_line();
        if (!line) {
            return std::nullopt;
        }
        if (line->empty()) {
            break;
        }
        if (iequals_prefix(*line, "content-length:")) {
            size_t n = 0;
            auto v = trim(std::string_view(*line).substr(15));
            std::from_chars(v.data(), v.data() + v.size(), n);
            content_length = n;
        } else if (iequals_prefix(*line, "transfer-encoding:")) {
            chunked = std::string_view(*line).find("chunked") != std::string_view::npos;
        }
    }
    if (chunked) {
        for (;;) {
            auto size_line = read_line();
            if (!size_line) {
                return std::nullopt;
            }
            size_t n = 0;
            std::from_chars(size_line->data(), size_line->data() + size_line->size(), n, 16);
            if (n == 0) {
                // Trailers (none expected) end with an empty line.
                for (;;) {
                    auto t = read_line();
                    if (!t) {
                        return std::nullopt;
                    }
                    if (t->empty()) {
                        return reply;
                    }
                }
            }
            if (!need(n + 2)) {
                return std::nullopt;
            }
            reply.body.append(buf_, pos_, n);
            pos_ += n + 2;
        }
    }
    const size_t n = content_length.value_or(0);
    if (!need(n)) {
        return std::nullopt;
    }
    reply.body.assign(buf_, pos_, n);
    pos_ += n;
    return reply;
}

bool BlockingConnection::read_until(std::string_view needle) {
    while (buf_.find(needle) == std::string::npos) {
        if (!fill()) {
            return false;
        }
    }
    return true;
}

std::string build_post(std::string_view path, std::string_view body) {
    return fmt::format(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n"
        "Content-Type: application/json\r\nAuthorization: Bearer sk-bench\r\n"
        "Content-Length: {}\r\n\r\n{}",
        path, body.size(), body);
}

}  // namespace helexa::bench
