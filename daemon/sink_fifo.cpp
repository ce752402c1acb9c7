#include "sink_fifo.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace hdb {

namespace {

using namespace std::chrono_literals;
// How often to look for a reader while there is none (open() gives ENXIO).
constexpr auto kReaderPoll = 200ms;
// After any other open() failure (the FIFO removed, permissions changed).
constexpr auto kOpenRetry = 1s;

std::string errnoText(int err) { return std::strerror(err); }

// Empties the pipe of the bytes a departed reader left, so a reader that opens
// it next does not start in the middle of a line.
void drainPipe(const std::string& path, size_t bytes) {
  if (bytes == 0) return;
  int rfd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (rfd < 0) return;
  char buf[16384];
  while (bytes > 0) {
    ssize_t n = ::read(rfd, buf, std::min(bytes, sizeof buf));
    if (n <= 0) break;
    bytes -= static_cast<size_t>(n);
  }
  ::close(rfd);
}

}  // namespace

void ensureFifo(const std::string& path, unsigned mode, std::optional<uint32_t> owner,
                std::optional<uint32_t> group) {
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) throw std::runtime_error(parent.string() + ": cannot create directory: " + ec.message());
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISFIFO(st.st_mode)) throw std::runtime_error(path + ": exists and is not a FIFO; not replacing it");
  } else if (errno != ENOENT) {
    throw std::runtime_error(path + ": " + errnoText(errno));
  } else {
    // Mode 0 until owner and group are right, as for the socket.
    mode_t old = ::umask(0777);
    int rc = ::mkfifo(path.c_str(), 0);
    int err = errno;
    ::umask(old);
    if (rc != 0 && err != EEXIST) throw std::runtime_error(path + ": mkfifo: " + errnoText(err));
  }
  if ((owner || group) && ::chown(path.c_str(), owner ? static_cast<uid_t>(*owner) : static_cast<uid_t>(-1),
                                  group ? static_cast<gid_t>(*group) : static_cast<gid_t>(-1)) != 0)
    throw std::runtime_error(path + ": cannot set owner/group: " + errnoText(errno));
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0)
    throw std::runtime_error(path + ": cannot set mode: " + errnoText(errno));
}

FifoSink::FifoSink(EventLoop& loop, const SinkConfig& config)
    : Sink(config),
      loop_(loop),
      queue_(config.queueBytes, config.overflow(), config.name, &stats_.queue),
      openTimer_(loop) {
  try {
    ensureFifo(config.path, config.mode, config.owner, config.group);
  } catch (const std::exception& e) {
    throw std::runtime_error("sink '" + config.name + "': " + e.what());
  }
  spdlog::info("sink '{}': writing to FIFO {} whenever a reader has it open", config.name, config.path);
  tryOpen();
}

FifoSink::~FifoSink() { openTimer_.cancel(); }

void FifoSink::retry(std::chrono::milliseconds delay) {
  if (!closed_) openTimer_.start(delay, [this] { tryOpen(); });
}

void FifoSink::tryOpen() {
  if (closed_ || wsi_) return;
  int fd = ::open(config_.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENXIO) return retry(kReaderPoll);  // no reader yet: the usual case
    uint64_t held = 0;
    if (openLog_.allow(held))
      spdlog::warn("sink '{}': cannot open {}: {} ({} similar not logged); retrying", config_.name, config_.path,
                   errnoText(err), held);
    if (err == ENOENT) {
      // Someone removed it: make it again.
      try {
        ensureFifo(config_.path, config_.mode, config_.owner, config_.group);
      } catch (const std::exception& e) {
        spdlog::warn("sink '{}': {}", config_.name, e.what());
      }
    }
    return retry(kOpenRetry);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    // Replaced by a regular file since the start: never write into that.
    ::close(fd);
    uint64_t held = 0;
    if (openLog_.allow(held))
      spdlog::error("sink '{}': {} is no longer a FIFO; not writing to it ({} similar not logged)", config_.name,
                    config_.path, held);
    return retry(kOpenRetry);
  }
  int pipeSize = ::fcntl(fd, F_GETPIPE_SZ);
  wsi_ = adoptRawFd(loop_.localVhost(), fd, this);
  if (!wsi_) {
    spdlog::warn("sink '{}': cannot watch {}; retrying", config_.name, config_.path);
    return retry(kOpenRetry);
  }
  fd_ = fd;
  // POLLOUT and POLLERR (the reader left) are all that matter.
  lws_rx_flow_control(wsi_, 0);
  queue_.trackWritten(pipeSize > 0 ? static_cast<size_t>(pipeSize) : 65536);
  queue_.atomicWrites(PIPE_BUF);
  queue_.newReader();
  queue_.prependGap(owedGap_, "disconnect");
  owedGap_ = 0;
  ++stats_.consumersAccepted;
  stats_.consumers = 1;
  spdlog::info("sink '{}': a reader opened {}{}", config_.name, config_.path,
               queue_.empty() ? std::string() : fmt::format("; {} queued line(s) go first", queue_.lines()));
  write();
}

void FifoSink::deliver(const Line& line) {
  if (queue_.push(line)) return;
  // on_overflow: disconnect. The reader (if any) gets the rest of the line
  // being written, then EOF; whoever reads next is told what was discarded.
  LineQueue::Loss loss = queue_.discard(tail_);
  stats_.droppedDisconnect += loss.lines + 1;
  owedGap_ += loss.weight + 1;
  if (!wsi_) return;
  ++stats_.consumersCut;
  spdlog::warn("sink '{}': the reader of {} fell behind (queue_bytes {}); {} line(s) discarded, closing it",
               config_.name, config_.path, queue_.cap(), loss.lines + 1);
  if (tail_.empty()) {
    detach();
    retry(kReaderPoll);
  }
}

void FifoSink::flush() {
  if (!wsi_ || awaitingWritable_ || (queue_.empty() && tail_.empty())) return;
  write();
}

int FifoSink::onWritable(lws*) {
  awaitingWritable_ = false;
  if (!wsi_) return -1;
  write();
  return wsi_ ? 0 : -1;
}

// Finishes the line a disconnect interrupted, then lets the reader go. False
// while the line is not done (or the reader went first).
bool FifoSink::writeTail() {
  while (!tail_.empty()) {
    ssize_t n = ::write(fd_, tail_.data(), tail_.size());
    if (n > 0) {
      stats_.queue.bytesWritten += static_cast<uint64_t>(n);
      tail_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      awaitingWritable_ = true;
      requestWritable(wsi_);
      return false;
    }
    readerGone(n < 0 ? std::strerror(errno) : "left");
    return false;
  }
  detach();
  retry(kReaderPoll);
  return false;
}

void FifoSink::write() {
  if (!tail_.empty()) {
    writeTail();
    return;
  }
  int err = 0;
  switch (queue_.writeTo(fd_, false, err)) {
    case WriteStatus::Drained: return;
    case WriteStatus::Blocked:
      awaitingWritable_ = true;
      requestWritable(wsi_);
      return;
    case WriteStatus::Closed: readerGone("left"); return;
    case WriteStatus::Failed: readerGone(std::strerror(err)); return;
  }
}

// lws closes the fd on POLLERR, which a pipe's write end reports once the
// last reader is gone; the fd is still open during this call. The trampoline
// has detached us from the wsi already.
void FifoSink::onClosed(lws*) {
  if (loop_.closing() || !wsi_) {
    wsi_ = nullptr;
    fd_ = -1;
    return;
  }
  wsi_ = nullptr;  // lws is closing it: nothing for detach() to do
  readerGone("left");
}

// Counts and clears what the departed reader left, then looks for the next.
void FifoSink::readerGone(const char* why) {
  int unread = 0;
  if (fd_ < 0 || ::ioctl(fd_, FIONREAD, &unread) != 0) unread = 0;
  drainPipe(config_.path, static_cast<size_t>(unread));
  bool halfWritten = queue_.midLine() || !tail_.empty();
  LineQueue::Loss loss = queue_.readerGone(static_cast<size_t>(unread));
  if (!tail_.empty()) {
    // The line a disconnect was finishing: lost too.
    ++loss.lines;
    ++loss.weight;
    ++owedGap_;
    tail_.clear();
  }
  stats_.droppedReaderGone += loss.lines;
  if (loss.weight)
    spdlog::info("sink '{}': the reader of {} {}; {} line(s) it did not read whole are lost ({} bytes unread{}); "
                 "the next reader is told with a gap line",
                 config_.name, config_.path, why, loss.weight, unread, halfWritten ? ", one line half written" : "");
  else
    spdlog::info("sink '{}': the reader of {} {}", config_.name, config_.path, why);
  detach();
  fd_ = -1;
  stats_.consumers = 0;
  // A next reader may be waiting already; look from the loop, not from
  // inside this (possibly lws close) callback.
  retry(0ms);
}

// Lets go of the current fd: lws closes it; no callback of it reaches us again.
void FifoSink::detach() {
  awaitingWritable_ = false;
  stats_.consumers = 0;
  if (!wsi_) return;
  lws* wsi = wsi_;
  wsi_ = nullptr;
  fd_ = -1;
  releaseRawFd(wsi, *this);
}

void FifoSink::retire() {
  close();
  // What the pipe takes now; a line it takes only in part is never left
  // half-written for a reader (writeTail), the rest is dropped with the sink.
  if (wsi_ && !awaitingWritable_) write();
  uint64_t unsent = queue_.lines();
  stats_.droppedDisconnect += unsent;
  queue_.clear();
  detach();
  spdlog::info("sink '{}': removed; {} line(s) unsent; {} stays in place", config_.name, unsent, config_.path);
}

void FifoSink::close() {
  // Shutdown: no new reader; the current one gets what is queued (bounded by
  // the shutdown deadline).
  closed_ = true;
  openTimer_.cancel();
}

}  // namespace hdb
