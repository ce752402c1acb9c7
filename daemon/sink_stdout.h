// stdout sink. It never blocks the loop and never flips O_NONBLOCK on a file
// description that the parent shell shares: a pipe or terminal is reopened
// through /proc/self/fd/1 (a description of our own), a socket is written with
// MSG_DONTWAIT, and a regular file simply takes every write.
#pragma once

#include "event_loop.h"
#include "line_queue.h"
#include "sink.h"

namespace hdb {

class StdoutSink : public Sink, private RawFdHandler {
 public:
  StdoutSink(EventLoop& loop, const SinkConfig& config);
  ~StdoutSink() override;

  void deliver(const Line& line) override;
  void flush() override;
  bool pending() const override { return !stopped_ && !queue_.empty(); }
  bool stopped() const { return stopped_; }

 private:
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
  uint64_t droppedSinceLog_ = 0;
};

}  // namespace hdb
