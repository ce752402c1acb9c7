// stdout sink. It never blocks the loop and never flips O_NONBLOCK on a file
// description that the parent shell shares: a pipe or terminal is reopened
// through /proc/self/fd/1 (a description of our own), a socket is written with
// MSG_DONTWAIT, and a regular file simply takes every write.
//
// When its reader goes away (`hdb-bridge | head -3`) the sink stops for good;
// the bridge exits 0 if no other sink is left (bridge.cpp, docs/sinks.md).
#pragma once

#include "event_loop.h"
#include "line_queue.h"
#include "logging.h"
#include "sink.h"

namespace hdb {

class StdoutSink : public Sink, private RawFdHandler {
 public:
  StdoutSink(EventLoop& loop, const SinkConfig& config);
  ~StdoutSink() override;

  void flush() override;
  void retire() override;
  bool pending() const override { return !stopped_ && !queue_.empty(); }
  size_t queuedBytes() const override { return queue_.bytes(); }
  bool stopped() const { return stopped_; }

 private:
  void deliver(const Line& line) override;
  int onWritable(lws* wsi) override;
  void onClosed(lws* wsi) override;
  void write();
  void stop(const char* why);

  EventLoop& loop_;
  LineQueue queue_;
  int fd_ = -1;
  bool isSocket_ = false;
  lws* wsi_ = nullptr;
  bool awaitingWritable_ = false;
  bool stopped_ = false;
  uint64_t droppedLogged_ = 0;
  LogLimiter dropLog_;
};

}  // namespace hdb
