#include "sink_unix.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "line_queue.h"
#include "unix_socket.h"

namespace hdb {

class UnixSink::Consumer : public RawFdHandler {
 public:
  Consumer(UnixSink& sink, int fd, uint64_t id, std::string peer)
      : sink_(sink),
        fd_(fd),
        id_(id),
        peer_(std::move(peer)),
        queue_(sink.config().queueBytes, sink.config().overflow(), sink.config().name, &sink.stats_.queue) {}

  void attach(lws* wsi) { wsi_ = wsi; }

  void deliver(const Line& line) {
    if (cut_) return;
    if (queue_.push(line)) return;
    // on_overflow: disconnect
    sink_.stats_.droppedDisconnect += 1;
    cut("fell behind: its queue passed queue_bytes");
  }

  void deliver(const std::vector<Line>& lines) {
    for (const Line& line : lines) {
      if (cut_) return;
      deliver(line);
    }
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
    // Consumers have nothing to say; read and discard so a chatty one cannot
    // fill our receive buffer, and notice EOF.
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
  size_t queuedBytes() const { return queue_.bytes(); }

  // The sink goes away (reload): one last write of what the socket takes now,
  // then the fd is let go of. Returns the lines left unsent.
  size_t release() {
    if (!cut_ && !awaitingWritable_ && !queue_.empty()) {
      int err = 0;
      (void)queue_.writeTo(fd_, true, err);
    }
    size_t unsent = cut_ ? 0 : queue_.lines();
    cut_ = true;
    queue_.clear();
    ::shutdown(fd_, SHUT_RDWR);
    releaseRawFd(wsi_, *this);
    wsi_ = nullptr;
    return unsent;
  }

 private:
  void write() {
    int err = 0;
    switch (queue_.writeTo(fd_, true, err)) {
      case WriteStatus::Drained: return;
      case WriteStatus::Blocked:
        awaitingWritable_ = true;
        requestWritable(wsi_);
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
      sink_.stats_.droppedDisconnect += queue_.lines();
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

UnixSink::UnixSink(EventLoop& loop, const SinkConfig& config)
    : Sink(config), loop_(loop), replay_(config.replay, config.queueBytes) {
  listener_ = listenForSink(loop_, config, [this](int client) { admit(client); });
  spdlog::info("sink '{}': listening on {}", config.name, config.path);
}

UnixSink::~UnixSink() = default;

void UnixSink::admit(int fd) {
  PeerCredentials peer = peerCredentials(fd);
  if (!admitPeer(fd, peer, config_, stats_, rejectLog_, "consumer")) return;
  uint64_t id = nextId_++;
  auto consumer = std::make_unique<Consumer>(*this, fd, id, peer.describe());
  lws* wsi = adoptRawFd(loop_.localVhost(), fd, consumer.get());
  if (!wsi) {
    spdlog::warn("sink '{}': cannot watch consumer #{} ({}); closed", config_.name, id, peer.describe());
    return;
  }
  consumer->attach(wsi);
  ++stats_.consumersAccepted;
  spdlog::info("sink '{}': consumer #{} connected ({}){}", config_.name, id, peer.describe(),
               replay_.size() ? fmt::format("; replaying {} line(s)", replay_.size()) : std::string());
  // The lines taken so far this wake-up are in the ring too: the consumers
  // that were here get them now, the new one only through the ring.
  distribute();
  Consumer* raw = consumer.get();
  consumers_.push_back(std::move(consumer));
  stats_.consumers = consumers_.size();
  // The ring holds exactly the lines taken before this moment and the next
  // live line goes to this consumer too: no hole, no duplicate.
  for (const Line& line : replay_.lines()) raw->deliver(line);
  raw->flush();
}

void UnixSink::remove(Consumer* consumer) {
  std::erase_if(consumers_, [consumer](const auto& c) { return c.get() == consumer; });
  stats_.consumers = consumers_.size();
}

void UnixSink::deliver(const Line& line) {
  replay_.push(line);
  if (consumers_.empty()) return;
  batchBytes_ += line->size();
  batch_.push_back(line);
}

void UnixSink::distribute() {
  if (batch_.empty()) return;
  for (auto& consumer : consumers_) consumer->deliver(batch_);
  batch_.clear();
  batchBytes_ = 0;
}

void UnixSink::flush() {
  distribute();
  for (auto& consumer : consumers_) consumer->flush();
}

void UnixSink::close() { listener_->close(); }

void UnixSink::retire() {
  listener_->release();
  distribute();
  size_t unsent = 0;
  for (auto& consumer : consumers_) unsent += consumer->release();
  stats_.droppedDisconnect += unsent;
  spdlog::info("sink '{}': removed; {} consumer(s) disconnected, {} line(s) unsent", config_.name,
               consumers_.size(), unsent);
  consumers_.clear();
  stats_.consumers = 0;
}

void UnixSink::refilter(const SinkConfig& next) {
  // The ring holds lines in the old format: a consumer connecting later must
  // not get a mix.
  if (next.format != config_.format) replay_.clear();
  Sink::refilter(next);
}

bool UnixSink::pending() const {
  if (!batch_.empty()) return true;
  for (const auto& consumer : consumers_)
    if (consumer->pending()) return true;
  return false;
}

size_t UnixSink::queuedBytes() const {
  size_t total = batchBytes_ * consumers_.size();
  for (const auto& consumer : consumers_) total += consumer->queuedBytes();
  return total;
}

}  // namespace hdb
