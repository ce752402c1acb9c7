// Ingest socket (sink type `ingest`, docs/ingest.md): the write path's front
// door. A Unix socket (the same listener code, mode, owner and allow_uids as a
// unix sink) where each line a local program writes is a command
// (write_command.h). Per client: lines are parsed, checked against the sink's
// `tables:`/`ops:` and the running config (through the WriterLookup), submitted
// to the table's TableWriter, and answered one line per command, in line order,
// whatever order the writers answer in.
//
// Backpressure instead of buffering: a client is not read while `max_in_flight`
// of its commands are in flight, or while its answers waiting to be written pass
// `queue_bytes`; a line longer than `max_line_bytes` is answered with an error
// and skipped without being kept. The fan-out never routes feed lines here.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "event_loop.h"
#include "listener.h"
#include "logging.h"
#include "sink.h"
#include "write_command.h"
#include "writer.h"

namespace hdb {

class IngestSink : public Sink {
 public:
  // Creates, binds and starts listening; throws std::runtime_error with a
  // message naming the sink and path when that is impossible.
  IngestSink(EventLoop& loop, const SinkConfig& config, WriterLookup lookup);
  ~IngestSink() override;

  bool takesFeed() const override { return false; }
  // Writes the answers each client takes now.
  void flush() override;
  void close() override;
  void retire() override;
  // True while a client waits for an answer: in flight, or queued to be written.
  bool pending() const override;
  size_t queuedBytes() const override;

  size_t clients() const { return clients_.size(); }

 private:
  class Client;
  friend class Client;

  void deliver(const Line&) override {}  // never routed (takesFeed)
  void admit(int fd);
  void remove(Client* client);

  EventLoop& loop_;
  WriterLookup lookup_;
  WriteCommandParser parser_;  // shared by the clients: one thread, one line at a time
  std::unique_ptr<Listener> listener_;
  std::map<Client*, std::unique_ptr<Client>> clients_;
  uint64_t nextId_ = 1;
  LogLimiter rejectLog_;
  LogLimiter badLineLog_;
};

}  // namespace hdb
