#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "unix_socket.h"

namespace hdb {

namespace {

bool tokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Opens the TCP listening socket; returns the fd and fills `bound` with the
// address as bound (the kernel's port when 0 was asked for).
int listenTcp(const MetricsConfig& config, std::string& bound) {
  bool v6 = config.host.find(':') != std::string::npos;
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(config.port);
    ::inet_pton(AF_INET6, config.host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(config.port);
    ::inet_pton(AF_INET, config.host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  std::string where = v6 ? "[" + config.host + "]:" + std::to_string(config.port)
                         : config.host + ":" + std::to_string(config.port);
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("metrics: socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("metrics: cannot listen on " + where + ": " + std::strerror(err));
  }
  len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  bound = v6 ? "[" + config.host + "]:" + std::to_string(port) : config.host + ":" + std::to_string(port);
  return fd;
}

}  // namespace

std::string parseRequestHead(std::string_view head, std::string& method, std::string& path) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos) return "no method";
  std::string_view m = line.substr(0, sp1);
  for (char c : m)
    if (!tokenChar(c)) return "bad method";
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return "no HTTP version";
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return "not HTTP/1.x";
  if (target.empty() || target[0] != '/') return "bad target";
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "bad target";
  method.assign(m);
  path.assign(target.substr(0, target.find_first_of("?#")));
  return {};
}

const char* statusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string renderResponse(const HttpResponse& r, bool headOnly) {
  std::string out;
  out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(statusText(r.status)).append("\r\n");
  out.append("Content-Type: ").append(r.contentType).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(r.body.size())).append("\r\n");
  if (r.status == 405) out.append("Allow: GET, HEAD\r\n");
  out.append("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
  if (!headOnly) out.append(r.body);
  return out;
}

// One connection: read the request head, answer, close. After the answer the
// write side is shut and the rest is read until the client closes (so an
// unread byte never turns the close into a reset that loses the answer).
class HttpServer::Client : public RawFdHandler {
 public:
  Client(HttpServer& server, int fd) : server_(server), fd_(fd), timer_(server.loop_) {}

  void attach(lws* wsi) {
    wsi_ = wsi;
    timer_.start(kClientTimeout, [this] {
      if (!answered_) server_.count(408);
      finish();
    });
  }

  int onReadable(lws*) override {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n == 0) return answered_ ? -1 : (finish(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
      }
      if (answered_) continue;  // after the answer: discard until EOF
      request_.append(buf, static_cast<size_t>(n));
      if (consider()) return 0;
    }
  }

  int onWritable(lws*) override {
    write();
    return 0;
  }

  void onClosed(lws*) override {
    wsi_ = nullptr;
    server_.remove(this);  // deletes this; nothing may follow
  }

 private:
  // True once the request is answered (or being answered).
  bool consider() {
    size_t end = request_.find("\r\n\r\n");
    if (end == std::string::npos) end = request_.find("\n\n");
    if (end == std::string::npos) {
      if (request_.size() > kMaxRequestBytes) {
        answer({431, "text/plain; charset=utf-8", "request head over 8 KiB\n"}, false);
        return true;
      }
      return false;
    }
    if (end > kMaxRequestBytes) {
      answer({431, "text/plain; charset=utf-8", "request head over 8 KiB\n"}, false);
      return true;
    }
    std::string method, path;
    std::string why = parseRequestHead(std::string_view(request_).substr(0, end), method, path);
    if (!why.empty()) {
      answer({400, "text/plain; charset=utf-8", "bad request: " + why + "\n"}, false);
      return true;
    }
    if (method != "GET" && method != "HEAD") {
      answer({405, "text/plain; charset=utf-8", "only GET and HEAD\n"}, false);
      return true;
    }
    answer(server_.handler_(path), method == "HEAD");
    return true;
  }

  void answer(const HttpResponse& response, bool headOnly) {
    answered_ = true;
    server_.count(response.status);
    out_ = renderResponse(response, headOnly);
    request_.clear();
    request_.shrink_to_fit();
    write();
  }

  void write() {
    while (sent_ < out_.size()) {
      ssize_t n = ::send(fd_, out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        requestWritable(wsi_);
        return;
      }
      finish();
      return;
    }
    // All sent: no more to say; the client closes when it has read it.
    ::shutdown(fd_, SHUT_WR);
  }

  void finish() {
    if (closing_) return;
    closing_ = true;
    timer_.cancel();
    if (wsi_) closeRawFdAsync(wsi_);
  }

  HttpServer& server_;
  int fd_;
  Timer timer_;
  lws* wsi_ = nullptr;
  std::string request_;
  std::string out_;
  size_t sent_ = 0;
  bool answered_ = false;
  bool closing_ = false;
};

HttpServer::HttpServer(EventLoop& loop, const MetricsConfig& config, Handler handler)
    : loop_(loop), config_(config), handler_(std::move(handler)) {
  int fd;
  if (!config_.unixPath.empty()) {
    try {
      fd = listenUnix(config_.unixPath, config_.mode);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("metrics: ") + e.what());
    }
    address_ = config_.unixPath;
  } else {
    fd = listenTcp(config_, address_);
  }
  listener_ = std::make_unique<Listener>(loop_, fd, config_.unixPath, "metrics", [this](int client) { admit(client); });
  spdlog::info("metrics: listening on {} (/metrics, /healthz, /readyz)", address_);
}

HttpServer::~HttpServer() = default;

void HttpServer::close() { listener_->close(); }

void HttpServer::admit(int fd) {
  if (clients_.size() >= kMaxClients) {
    ++counters_.refused;
    ::close(fd);
    return;
  }
  auto client = std::make_unique<Client>(*this, fd);
  lws* wsi = adoptRawFd(loop_.localVhost(), fd, client.get());
  if (!wsi) return;  // lws closed the fd
  Client* raw = client.get();
  clients_.emplace(raw, std::move(client));
  raw->attach(wsi);
}

void HttpServer::remove(Client* client) { clients_.erase(client); }

void HttpServer::count(int status) {
  switch (status) {
    case 200: ++counters_.ok; break;
    case 404: ++counters_.notFound; break;
    case 405: ++counters_.badMethod; break;
    case 408: ++counters_.timedOut; break;
    case 503: ++counters_.unavailable; break;
    default: ++counters_.badRequest; break;
  }
}

}  // namespace hdb
