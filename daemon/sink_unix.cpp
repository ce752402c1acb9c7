#include "sink_unix.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "line_queue.h"
#include "logging.h"

namespace hdb {

namespace {

std::string errnoText(int err) { return std::strerror(err); }

sockaddr_un unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw std::runtime_error(path + ": path is longer than " + std::to_string(sizeof addr.sun_path - 1) +
                             " bytes, the limit of a Unix socket address");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A socket file left behind by a process that died is replaced; one that
// something still listens on is not ours to take.
void clearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error(path + ": " + errnoText(errno));
  }
  if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + ": exists and is not a socket; not replacing it");
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) throw std::runtime_error("socket: " + errnoText(errno));
  int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(probe);
  if (rc == 0) throw std::runtime_error(path + ": another process is listening on this socket");
  if (err != ECONNREFUSED && err != ENOENT)
    throw std::runtime_error(path + ": cannot tell whether the socket is in use: " + errnoText(err));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error(path + ": cannot remove the stale socket: " + errnoText(errno));
  spdlog::info("{}: replaced a stale socket file", path);
}

}  // namespace

int listenUnix(const std::string& path, unsigned mode) {
  sockaddr_un addr = unixAddress(path);
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) throw std::runtime_error(parent.string() + ": cannot create directory: " + ec.message());
  }
  clearStaleSocket(path, addr);

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + errnoText(errno));
  // Bind under a umask that leaves the mode to fchmod-like chmod below; no window
  // where the socket is more open than configured.
  mode_t old = ::umask(0777);
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0) {
    ::close(fd);
    throw std::runtime_error(path + ": bind: " + errnoText(err));
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0 || ::listen(fd, 128) != 0) {
    err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw std::runtime_error(path + ": " + errnoText(err));
  }
  return fd;
}

class UnixSink::Listener : public RawFdHandler {
 public:
  explicit Listener(UnixSink& sink) : sink_(sink) {}
  int onReadable(lws*) override {
    sink_.accept();
    return 0;
  }
  void onClosed(lws*) override {
    wsi = nullptr;
    fd = -1;
  }
  lws* wsi = nullptr;
  int fd = -1;

 private:
  UnixSink& sink_;
};

class UnixSink::Consumer : public RawFdHandler {
 public:
  Consumer(UnixSink& sink, int fd, uint64_t id, std::string peer)
      : sink_(sink), fd_(fd), id_(id), peer_(std::move(peer)), queue_(sink.config().queueBytes) {}

  void attach(lws* wsi) { wsi_ = wsi; }

  void deliver(const Line& line) {
    if (cut_) return;
    if (queue_.push(line)) return;
    cut("fell behind: its queue passed queue_bytes");
  }

  // Writes what the socket takes now; waits for POLLOUT when it takes no more.
  void flush() {
    if (cut_ || awaitingWritable_ || queue_.empty()) return;
    write();
  }

  int onWritable(lws*) override {
    awaitingWritable_ = false;
    if (cut_) return -1;
    write();
    return cut_ ? -1 : 0;
  }

  int onReadable(lws*) override {
    // Consumers have nothing to say yet; read and discard so a chatty one
    // cannot fill our receive buffer, and notice EOF.
    char buf[4096];
    for (int i = 0; i < 16; ++i) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) continue;
      if (n == 0) return -1;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    return 0;
  }

  void onClosed(lws*) override {
    spdlog::info("sink '{}': consumer #{} ({}) disconnected", sink_.config().name, id_, peer_);
    sink_.remove(this);  // deletes this; nothing may follow
  }

  bool pending() const { return !cut_ && !queue_.empty(); }

 private:
  void write() {
    int err = 0;
    switch (queue_.writeTo(fd_, true, err)) {
      case WriteStatus::Drained: return;
      case WriteStatus::Blocked:
        awaitingWritable_ = true;
        lws_callback_on_writable(wsi_);
        return;
      case WriteStatus::Closed: cut(nullptr); return;
      case WriteStatus::Failed: cut(std::strerror(err)); return;
    }
  }

  // Stops serving this consumer: its queue is freed now, the fd closes soon.
  void cut(const char* why) {
    if (cut_) return;
    cut_ = true;
    if (why) {
      sink_.stats_.linesDropped += queue_.lines();
      ++sink_.stats_.consumersCut;
      spdlog::warn("sink '{}': consumer #{} ({}) {}; disconnecting it ({} bytes, {} lines unsent)",
                   sink_.config().name, id_, peer_, why, queue_.bytes(), queue_.lines());
    }
    queue_.clear();
    ::shutdown(fd_, SHUT_RDWR);
    if (wsi_) closeRawFdAsync(wsi_);
  }

  UnixSink& sink_;
  int fd_;
  uint64_t id_;
  std::string peer_;
  LineQueue queue_;
  lws* wsi_ = nullptr;
  bool awaitingWritable_ = false;
  bool cut_ = false;
};

UnixSink::UnixSink(EventLoop& loop, const SinkConfig& config) : Sink(config), loop_(loop) {
  int fd;
  try {
    fd = listenUnix(config.path, config.mode);
  } catch (const std::exception& e) {
    throw std::runtime_error("sink '" + config.name + "': " + e.what());
  }
  listener_ = std::make_unique<Listener>(*this);
  listener_->fd = fd;
  listener_->wsi = adoptRawFd(loop_.localVhost(), fd, listener_.get());
  if (!listener_->wsi) {
    ::unlink(config.path.c_str());
    throw std::runtime_error("sink '" + config.name + "': cannot watch the listening socket");
  }
  spdlog::info("sink '{}': listening on {}", config.name, config.path);
}

UnixSink::~UnixSink() {
  // The loop is gone by now (it closed every fd); only the file may remain.
  if (!unlinked_) ::unlink(config_.path.c_str());
}

void UnixSink::accept() {
  for (;;) {
    int fd = ::accept4(listener_->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        static LogLimiter limiter;
        uint64_t held = 0;
        if (limiter.allow(held))
          spdlog::warn("sink '{}': accept: {} ({} more not logged)", config_.name, std::strerror(errno), held);
      }
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    std::string peer = "unknown peer";
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
      peer = "pid " + std::to_string(cred.pid) + ", uid " + std::to_string(cred.uid);

    uint64_t id = nextId_++;
    auto consumer = std::make_unique<Consumer>(*this, fd, id, peer);
    lws* wsi = adoptRawFd(loop_.localVhost(), fd, consumer.get());
    if (!wsi) {
      spdlog::warn("sink '{}': cannot watch consumer #{} ({}); closed", config_.name, id, peer);
      continue;
    }
    consumer->attach(wsi);
    spdlog::info("sink '{}': consumer #{} connected ({})", config_.name, id, peer);
    Consumer* raw = consumer.get();
    consumers_.emplace(raw, std::move(consumer));
  }
}

void UnixSink::remove(Consumer* consumer) { consumers_.erase(consumer); }

void UnixSink::deliver(const Line& line) {
  ++stats_.linesQueued;
  for (auto& [raw, consumer] : consumers_) raw->deliver(line);
}

void UnixSink::flush() {
  for (auto& [raw, consumer] : consumers_) raw->flush();
}

void UnixSink::close() {
  if (listener_ && listener_->wsi) {
    closeRawFdAsync(listener_->wsi);
    listener_->wsi = nullptr;
  }
  if (!unlinked_) ::unlink(config_.path.c_str());
  unlinked_ = true;
}

bool UnixSink::pending() const {
  for (const auto& [raw, consumer] : consumers_)
    if (raw->pending()) return true;
  return false;
}

}  // namespace hdb
