// The writer of one writable HarperDB 3 table (issue 8; writer.h has the seam).
// Owned by the table's Hdb3Source, which carries its packets.
//
//   submit() -> `#publish` of an HDB_TRANSACTION on the table's channel, exactly
//   as the original harperdb-websocket-client wrote (no cid: with one, HarperDB
//   3.3 acks an error although it applies the write) -> pending until the
//   transaction comes back on our own subscription (Hdb3WriteMatcher) -> ok,
//   with what the echo confirms.
//
// HarperDB 3 never says no: a write it refuses, or one that changes nothing,
// simply never comes back. So every write has a deadline (the server's write_timeout),
// and a write that is not confirmed by then, or whose connection is lost, is
// answered ok=false saying it may or may not have been applied.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "config.h"
#include "event_loop.h"
#include "hdb3_txn.h"
#include "hdb3_write_match.h"
#include "writer.h"

namespace hdb {

// Writes waiting for their echo, per table; more are refused at once.
inline constexpr size_t kHdb3MaxPendingWrites = 256;

class Hdb3Writer : public TableWriter {
 public:
  // What the writer needs of its source.
  struct Link {
    std::function<bool()> ready;             // subscribed and caught up: a write can go out
    std::function<void(std::string)> send;   // queues one text message on the connection
  };

  // `server` is the server's name for messages; `table` outlives the writer.
  // `timeout`: how long a write may wait for its echo (the server's
  // write_timeout; measured: 25-60 ms one at a time, under 2 s for the last of
  // a burst of 1,000).
  Hdb3Writer(EventLoop& loop, std::string server, const TableConfig& table, std::chrono::milliseconds timeout,
             Link link);
  // Answers every write still waiting (ok=false: may or may not have been applied).
  ~Hdb3Writer() override;
  Hdb3Writer(const Hdb3Writer&) = delete;
  Hdb3Writer& operator=(const Hdb3Writer&) = delete;

  void submit(WriteCommand command, WriteDone done) override;

  // A committed transaction arrived on the table's channel (ours or anyone's).
  void onTransaction(const Hdb3Transaction& txn);
  // The connection ended (`stopping`: closed by shutdown()): nothing pending can be confirmed any more.
  void connectionLost(bool stopping);

  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    uint64_t token;
    WriteDone done;
    std::chrono::steady_clock::time_point deadline;
  };

  // Answers from the loop, outside the caller's stack (submit() never answers itself).
  void answerSoon(WriteDone done, WriteResult result);
  void answerQueued();
  void armDeadline();
  void expire();
  // Answers every pending write with ok=false and `error`.
  void failAll(const std::string& error);

  EventLoop& loop_;
  std::string server_;
  const TableConfig& table_;
  std::string channel_;  // schema:table
  std::chrono::milliseconds timeout_;
  Link link_;
  Hdb3WriteMatcher matcher_;
  std::deque<Pending> pending_;  // submit order, so deadlines ascend
  std::deque<std::pair<WriteDone, WriteResult>> answers_;
  uint64_t nextToken_ = 1;
  bool closing_ = false;  // being destroyed: submit() answers without sending
  Timer answerTimer_;
  Timer deadlineTimer_;
};

}  // namespace hdb
