// Unix-domain socket sink: our own listening socket (mode, stale-file check,
// unlink on close) adopted into the loop, and any number of consumers, each
// with its own bounded queue so a slow one never holds up the others.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "event_loop.h"
#include "sink.h"

namespace hdb {

class UnixSink : public Sink {
 public:
  // Creates, binds and starts listening; throws std::runtime_error with a
  // message naming the sink and path when that is impossible.
  UnixSink(EventLoop& loop, const SinkConfig& config);
  ~UnixSink() override;

  void deliver(const Line& line) override;
  void flush() override;
  void close() override;
  bool pending() const override;

  size_t consumers() const { return consumers_.size(); }

 private:
  class Listener;
  class Consumer;
  friend class Listener;
  friend class Consumer;

  void accept();
  void remove(Consumer* consumer);

  EventLoop& loop_;
  std::unique_ptr<Listener> listener_;
  std::map<Consumer*, std::unique_ptr<Consumer>> consumers_;
  uint64_t nextId_ = 1;
  bool unlinked_ = false;
};

// Binds a listening AF_UNIX stream socket at `path` with `mode`, creating the
// parent directory; replaces a stale socket file, refuses a live one. Returns
// the non-blocking fd or throws std::runtime_error.
int listenUnix(const std::string& path, unsigned mode);

}  // namespace hdb
