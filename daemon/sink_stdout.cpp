#include "sink_stdout.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "logging.h"

namespace hdb {

namespace {

// Returns an fd for our writes to stdout and whether it is a socket.
int openStdout(bool& isSocket) {
  struct stat st;
  if (::fstat(STDOUT_FILENO, &st) != 0) throw std::runtime_error(std::string("stdout: ") + std::strerror(errno));
  isSocket = S_ISSOCK(st.st_mode);
  if (S_ISREG(st.st_mode) || isSocket) {
    // Regular files never block; sockets get MSG_DONTWAIT per call.
    int fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw std::runtime_error(std::string("stdout: ") + std::strerror(errno));
    return fd;
  }
  int fd = ::open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw std::runtime_error(std::string("stdout: cannot reopen /proc/self/fd/1: ") + std::strerror(errno));
  return fd;
}

}  // namespace

StdoutSink::StdoutSink(EventLoop& loop, const SinkConfig& config)
    : Sink(config), loop_(loop), queue_(config.queueBytes, config.overflow(), config.name, &stats_.queue) {
  fd_ = openStdout(isSocket_);
  wsi_ = adoptRawFd(loop_.localVhost(), fd_, this);
  if (!wsi_) throw std::runtime_error("sink '" + config.name + "': cannot watch stdout");
  // Only POLLOUT matters: a regular file or a terminal polls readable forever,
  // which would spin the loop.
  lws_rx_flow_control(wsi_, 0);
}

StdoutSink::~StdoutSink() = default;

void StdoutSink::deliver(const Line& line) {
  if (stopped_) return;
  if (!queue_.push(line)) {
    // on_overflow: disconnect; for stdout that means stopping for good.
    stats_.droppedDisconnect += 1 + queue_.lines();
    ++stats_.consumersCut;
    queue_.clear();
    stop("is not keeping up (its queue passed queue_bytes; on_overflow: disconnect)");
    return;
  }
  // The drop policies told the reader with a gap line; tell the log too.
  uint64_t dropped = stats_.queue.droppedNewest + stats_.queue.droppedOldest;
  uint64_t held = 0;
  if (dropped > droppedLogged_ && dropLog_.allow(held)) {
    spdlog::warn("sink '{}': stdout is not keeping up; {} line(s) dropped so far (queue_bytes {})", config_.name,
                 dropped, queue_.cap());
    droppedLogged_ = dropped;
  }
}

void StdoutSink::flush() {
  if (stopped_ || awaitingWritable_ || queue_.empty()) return;
  write();
}

int StdoutSink::onWritable(lws*) {
  awaitingWritable_ = false;
  if (stopped_) return -1;
  write();
  return stopped_ ? -1 : 0;
}

void StdoutSink::onClosed(lws*) {
  wsi_ = nullptr;
  // At exit the loop closes every fd; that is not news.
  if (!stopped_ && !loop_.closing()) stop("closed");
}

void StdoutSink::write() {
  int err = 0;
  switch (queue_.writeTo(fd_, isSocket_, err)) {
    case WriteStatus::Drained: return;
    case WriteStatus::Blocked:
      awaitingWritable_ = true;
      requestWritable(wsi_);
      return;
    case WriteStatus::Closed: stop("its reader went away"); return;
    case WriteStatus::Failed: stop(std::strerror(err)); return;
  }
}

void StdoutSink::retire() {
  if (!stopped_ && !awaitingWritable_) write();
  uint64_t unsent = stopped_ ? 0 : queue_.lines();
  stats_.droppedDisconnect += unsent;
  stopped_ = true;
  queue_.clear();
  releaseRawFd(wsi_, *this);
  wsi_ = nullptr;
  spdlog::info("sink '{}': removed; {} line(s) unsent", config_.name, unsent);
}

void StdoutSink::stop(const char* why) {
  stopped_ = true;
  stats_.droppedReaderGone += queue_.lines();
  queue_.clear();
  spdlog::warn("sink '{}': stdout {}; this sink stops", config_.name, why);
  if (wsi_) closeRawFdAsync(wsi_);
}

}  // namespace hdb
