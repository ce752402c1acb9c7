// A bounded queue of shared lines for one consumer, written without blocking in
// batches (one writev/sendmsg carries many lines). No lws in here: the caller
// decides when the fd is worth trying.
#pragma once

#include <cstddef>
#include <deque>

#include "envelope.h"

namespace hdb {

enum class WriteStatus {
  Drained,  // everything queued was written
  Blocked,  // the fd would block; ask to be told when it is writable
  Closed,   // the reader is gone (EPIPE, ECONNRESET)
  Failed,   // any other error; errno is in `err`
};

class LineQueue {
 public:
  explicit LineQueue(size_t capBytes) : cap_(capBytes) {}

  // Queues the line unless that would pass the byte cap; returns false then.
  bool push(Line line);

  // Writes as much as `fd` takes now. `isSocket` selects sendmsg(MSG_NOSIGNAL)
  // over writev (which needs an O_NONBLOCK fd and SIGPIPE ignored).
  WriteStatus writeTo(int fd, bool isSocket, int& err);

  size_t bytes() const { return bytes_; }
  size_t lines() const { return lines_.size(); }
  bool empty() const { return lines_.empty(); }
  size_t cap() const { return cap_; }
  void clear();

 private:
  void consume(size_t n);

  size_t cap_;
  std::deque<Line> lines_;
  size_t headOffset_ = 0;  // bytes of lines_.front() already written
  size_t bytes_ = 0;       // unwritten bytes in the queue
};

}  // namespace hdb
