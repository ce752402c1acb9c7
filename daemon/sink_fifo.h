// FIFO sink (`type: fifo`): a named pipe that readers open and close as they
// please. The FIFO is created if missing (a non-FIFO file at the path is
// refused) and opened O_WRONLY|O_NONBLOCK whenever a reader has it open: while
// none does, open() fails with ENXIO and is retried on a timer. Never O_RDWR,
// which would hide a reader leaving and hand stale bytes to the next one.
//
// The queue belongs to the FIFO, not to a reader: lines wait there (bounded,
// with the overflow policy) while no reader is attached. When a reader leaves
// (EPIPE, or lws closing the fd on POLLERR) the bytes it did not read are
// drained from the pipe, a partly written line is dropped, and the next reader
// starts at a line boundary with one gap line counting what no one got whole.
#pragma once

#include "event_loop.h"
#include "line_queue.h"
#include "logging.h"
#include "sink.h"

namespace hdb {

class FifoSink : public Sink, private RawFdHandler {
 public:
  // Creates the FIFO if needed and sets its owner, group and mode; throws
  // std::runtime_error naming the sink and path when that is impossible.
  FifoSink(EventLoop& loop, const SinkConfig& config);
  ~FifoSink() override;

  void flush() override;
  void close() override;
  void retire() override;
  bool pending() const override { return wsi_ && (!queue_.empty() || !tail_.empty()); }
  size_t queuedBytes() const override { return queue_.bytes() + tail_.size(); }
  bool attached() const { return wsi_ != nullptr; }

 private:
  void deliver(const Line& line) override;
  int onWritable(lws* wsi) override;
  void onClosed(lws* wsi) override;

  void tryOpen();
  void retry(std::chrono::milliseconds delay);
  void write();
  bool writeTail();
  void readerGone(const char* why);
  void detach();

  EventLoop& loop_;
  LineQueue queue_;
  Timer openTimer_;
  int fd_ = -1;
  lws* wsi_ = nullptr;
  bool awaitingWritable_ = false;
  std::string tail_;                // disconnect: the rest of a line to finish before closing
  uint64_t owedGap_ = 0;            // lines discarded by disconnect, told to the next reader
  bool closed_ = false;             // shutting down: no more readers
  LogLimiter openLog_;
};

// Makes `path` a FIFO with the given ownership and mode: creates it (and its
// parent directory) if missing, refuses any other kind of file. Throws
// std::runtime_error.
void ensureFifo(const std::string& path, unsigned mode, std::optional<uint32_t> owner,
                std::optional<uint32_t> group);

}  // namespace hdb
