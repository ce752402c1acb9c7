#include "listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace hdb {

Listener::Listener(EventLoop& loop, int fd, std::string path, std::string label, Accepted accepted)
    : fd_(fd), path_(std::move(path)), label_(std::move(label)), accepted_(std::move(accepted)) {
  wsi_ = adoptRawFd(loop.localVhost(), fd, this);
  if (!wsi_) {
    unlink();
    throw std::runtime_error(label_ + ": cannot watch the listening socket");
  }
}

// The loop is gone by now (it closed every fd); only the file may remain.
Listener::~Listener() { unlink(); }

void Listener::close() {
  if (wsi_) closeRawFdAsync(wsi_);
  wsi_ = nullptr;
  unlink();
}

void Listener::release() {
  if (wsi_) releaseRawFd(wsi_, *this);
  wsi_ = nullptr;
  unlink();
}

int Listener::onReadable(lws*) {
  for (;;) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted_(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      uint64_t held = 0;
      if (acceptLog_.allow(held))
        spdlog::warn("{}: accept: {} ({} more not logged)", label_, std::strerror(errno), held);
    }
    return 0;
  }
}

void Listener::onClosed(lws*) {
  wsi_ = nullptr;
  fd_ = -1;
}

std::unique_ptr<Listener> listenForSink(EventLoop& loop, const SinkConfig& config, Listener::Accepted accepted) {
  std::string label = "sink '" + config.name + "'";
  int fd;
  try {
    fd = listenUnix(config.path, config.mode, config.owner, config.group);
  } catch (const std::exception& e) {
    throw std::runtime_error(label + ": " + e.what());
  }
  return std::make_unique<Listener>(loop, fd, config.path, label, std::move(accepted));
}

bool admitPeer(int fd, const PeerCredentials& peer, const SinkConfig& config, SinkStats& stats, LogLimiter& log,
               const char* who) {
  if (peerAllowed(peer, config.allowUids, config.allowGids)) return true;
  ++stats.consumersRejected;
  uint64_t held = 0;
  if (log.allow(held))
    spdlog::warn("sink '{}': refused a {} ({}): not in allow_uids/allow_gids ({} more not logged)", config.name, who,
                 peer.describe(), held);
  ::close(fd);
  return false;
}

void Listener::unlink() {
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
}

}  // namespace hdb
