// Unix-domain socket sink: our own listening socket (unix_socket.h) adopted
// into the loop, and any number of consumers, each with its own bounded queue
// and the sink's overflow policy, so a slow one never holds up the others.
// A new consumer first gets the sink's replay ring (`replay: N`), then live
// lines: both happen on the loop thread, so the seam has no hole and no
// duplicate. Peers not in allow_uids/allow_gids are closed at once.
// Lines a loop wake-up brings are collected once for the sink and handed to
// each consumer as one batch at flush(): per consumer, one pass over the batch
// and one sendmsg, not a walk over every consumer per line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "event_loop.h"
#include "listener.h"
#include "logging.h"
#include "replay_ring.h"
#include "sink.h"

namespace hdb {

class UnixSink : public Sink {
 public:
  // Creates, binds and starts listening; throws std::runtime_error with a
  // message naming the sink and path when that is impossible.
  UnixSink(EventLoop& loop, const SinkConfig& config);
  ~UnixSink() override;

  void flush() override;
  void close() override;
  void retire() override;
  void refilter(const SinkConfig& next) override;
  bool pending() const override;
  size_t queuedBytes() const override;

  size_t consumers() const { return consumers_.size(); }

 private:
  class Consumer;
  friend class Consumer;

  void deliver(const Line& line) override;
  void admit(int fd);
  void remove(Consumer* consumer);
  // Queues the lines taken since the last flush for every consumer.
  void distribute();

  EventLoop& loop_;
  std::unique_ptr<Listener> listener_;
  std::vector<std::unique_ptr<Consumer>> consumers_;
  std::vector<Line> batch_;  // taken, not yet queued for the consumers
  size_t batchBytes_ = 0;
  ReplayRing replay_;
  uint64_t nextId_ = 1;
  LogLimiter rejectLog_;
};

}  // namespace hdb
