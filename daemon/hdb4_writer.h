// HarperDB 4 writes (issue 8, docs/ingest.md): each command of a writable
// table becomes one operations API request,
//   POST {"operation":"insert","database":D,"table":T,"records":[...]}
// ("ids" for delete) to the server's operations_url (default: the url's host,
// port 9925) with the server's credentials; HarperDB's answer confirms it.
// Commands are sent in submit() order; at most kMaxConcurrent requests per
// table run at once, the rest wait their turn; one not answered within the
// server's write_timeout is given up.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>

#include "config.h"
#include "event_loop.h"
#include "http_client.h"
#include "writer.h"

namespace hdb {

class Hdb4Writer : public TableWriter {
 public:
  static constexpr size_t kMaxConcurrent = 4;

  Hdb4Writer(EventLoop& loop, const ServerConfig& server, const TableConfig& table);
  ~Hdb4Writer() override;
  Hdb4Writer(const Hdb4Writer&) = delete;
  Hdb4Writer& operator=(const Hdb4Writer&) = delete;

  void submit(WriteCommand command, WriteDone done) override;

 private:
  struct Waiting {
    WriteCommand command;
    WriteDone done;
  };
  void pump();
  void send(Waiting waiting);
  void answered(uint64_t id, const HttpResult& response);

  EventLoop& loop_;
  const ServerConfig& server_;
  const TableConfig& table_;
  Url url_;
  std::deque<Waiting> waiting_;
  std::map<uint64_t, WriteDone> inFlight_;
  uint64_t nextId_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The answer of HarperDB 4's operations API to a write, as WriteResult.
// Pure (tests/unit/test_hdb4_writer.cpp).
WriteResult hdb4WriteResult(const HttpResult& response);

// The operations API body for `command`.
std::string hdb4WriteBody(const WriteCommand& command);

}  // namespace hdb
