// A bounded queue of shared lines for one consumer, written without blocking in
// batches (one writev/sendmsg carries many lines), with the consumer's overflow
// policy. No lws in here: the caller decides when the fd is worth trying.
//
// Whatever is dropped is reported to the consumer in the stream itself: a gap
// line {"v":1,"op":"gap","reason":"queue_full","dropped":N,"sink":NAME} stands
// where the hole is (drop_oldest: in place of the evicted lines, merged with a
// gap already there; drop_newest: before the next line that fits).
#pragma once

#include <cstddef>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "config.h"
#include "envelope.h"

namespace hdb {

enum class WriteStatus {
  Drained,  // everything queued was written
  Blocked,  // the fd would block; ask to be told when it is writable
  Closed,   // the reader is gone (EPIPE, ECONNRESET)
  Failed,   // any other error; errno is in `err`
};

// Counters a queue adds to; one instance is shared by every consumer of a sink.
struct QueueStats {
  uint64_t droppedOldest = 0;  // lines evicted by drop_oldest
  uint64_t droppedNewest = 0;  // lines refused by drop_newest
  uint64_t gapLines = 0;       // gap lines queued (a merge into a queued one does not count)
  uint64_t bytesWritten = 0;   // bytes the fds took, gap lines included
};

// {"v":1,"op":"gap","reason":REASON,"dropped":N,"sink":SINK}\n
Line sinkGapLine(std::string_view sink, std::string_view reason, uint64_t dropped);

class LineQueue {
 public:
  explicit LineQueue(size_t capBytes, OverflowPolicy policy = OverflowPolicy::Disconnect,
                     std::string sinkName = {}, QueueStats* stats = nullptr)
      : cap_(capBytes), policy_(policy), sink_(std::move(sinkName)), stats_(stats ? stats : &ownStats_) {}

  // Queues the line. Under `disconnect` returns false, queuing nothing, when the
  // line would pass the cap: the caller cuts the consumer off. The drop policies
  // always return true: they make room or drop, and account for it with gaps.
  bool push(Line line);

  // Writes as much as `fd` takes now. `isSocket` selects sendmsg(MSG_NOSIGNAL)
  // over writev (which needs an O_NONBLOCK fd and SIGPIPE ignored).
  WriteStatus writeTo(int fd, bool isSocket, int& err);
  // The same through `write(const iovec*, int count)`, which returns the
  // bytes taken or -1 with errno set, like writev (tests use it).
  template <class Write>
  WriteStatus writeUsing(Write&& write, int& err);

  // FIFO support: each write takes whole lines, at most `bytes` of them
  // (PIPE_BUF: the kernel writes that much to a pipe all or nothing), so the
  // pipe never holds a partial line unless a single line is bigger. A reader
  // that takes what is there then never leaves the next one a line's tail.
  void atomicWrites(size_t bytes) { atomic_ = bytes; }
  // FIFO support: remember which lines the last `windowBytes` written bytes
  // (the pipe's capacity) belong to, so that a departed reader's loss is known.
  void trackWritten(size_t windowBytes) { window_ = windowBytes; }
  struct Loss {
    uint64_t lines = 0;   // record lines no reader got whole
    uint64_t weight = 0;  // the same plus what lost gap lines stood for
  };
  // The reader left with `unreadBytes` still in the pipe (which is discarded
  // with it). Drops the partly written head line, so the next reader starts at
  // a line boundary, puts one gap line for everything lost at the front, and
  // returns the loss. Starts a fresh ledger for the next reader.
  Loss readerGone(size_t unreadBytes);
  // Forgets what was written so far (a new reader starts with an empty pipe).
  void newReader();

  // Drops every queued line. The unwritten rest of a partly written head line
  // goes to `rest` (not counted as lost): the caller finishes it, so the
  // stream stays line-aligned.
  Loss discard(std::string& rest);
  // Puts a gap line for `dropped` lines first in line (after a partly written
  // head), merged with a gap line already there.
  // `reason` must be a string literal.
  void prependGap(uint64_t dropped, const char* reason);
  // True when the head line is partly written.
  bool midLine() const { return headOffset_ > 0; }

  size_t bytes() const { return bytes_; }
  size_t lines() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  size_t cap() const { return cap_; }
  OverflowPolicy policy() const { return policy_; }
  // drop_newest: lines dropped that no queued gap line tells about yet.
  uint64_t pendingGap() const { return pendingGap_; }
  void clear();

 private:
  struct Entry {
    Line line;
    uint64_t gap = 0;                // > 0: a gap line standing for this many dropped lines
    const char* reason = nullptr;    // a gap line's reason (a string literal)
  };

  bool pushDropNewest(Line line);
  bool pushDropOldest(Line line);
  bool evictOldest();
  // True when entries_[i] is a gap line none of which is written yet.
  bool unstartedGap(size_t i) const;
  void setGap(Entry& e, uint64_t dropped);
  void insertGap(size_t at, uint64_t dropped, const char* reason);
  void appendGap(uint64_t dropped);
  size_t gapBytes(uint64_t dropped) const;
  void consume(size_t n);

  size_t cap_;
  OverflowPolicy policy_;
  std::string sink_;
  QueueStats ownStats_;
  QueueStats* stats_;
  std::deque<Entry> entries_;
  size_t headOffset_ = 0;   // bytes of entries_.front() already written
  size_t bytes_ = 0;        // unwritten bytes in the queue
  uint64_t pendingGap_ = 0;
  mutable size_t gapFixed_ = 0;  // size of this sink's gap line less its number

  // The written-line ledger (FIFO): each line written completely within the
  // last window_ bytes, by the offset where it ends.
  struct Written {
    uint64_t end;
    uint64_t gap;  // as in Entry
  };
  size_t atomic_ = 0;  // 0: batches as big as the iovec allows
  size_t window_ = 0;
  uint64_t written_ = 0;
  std::deque<Written> ledger_;
};

template <class Write>
WriteStatus LineQueue::writeUsing(Write&& write, int& err) {
  constexpr size_t kMaxIov = 64;
  iovec iov[kMaxIov];
  for (;;) {
    if (entries_.empty()) {
      // drop_newest with nothing left to send: tell about the hole now rather
      // than with the next line, which may be long in coming.
      if (!pendingGap_ || gapBytes(pendingGap_) > cap_) return WriteStatus::Drained;
      appendGap(pendingGap_);
      pendingGap_ = 0;
    }
    int count = 0;
    size_t total = 0;
    for (auto it = entries_.begin(); it != entries_.end() && count < static_cast<int>(kMaxIov); ++it, ++count) {
      size_t skip = count == 0 ? headOffset_ : 0;
      size_t len = it->line->size() - skip;
      if (atomic_ && count > 0 && total + len > atomic_) break;
      total += len;
      iov[count].iov_base = const_cast<char*>(it->line->data() + skip);
      iov[count].iov_len = len;
    }
    ssize_t n = write(static_cast<const iovec*>(iov), count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return WriteStatus::Blocked;
      err = errno;
      if (errno == EPIPE || errno == ECONNRESET) return WriteStatus::Closed;
      return WriteStatus::Failed;
    }
    consume(static_cast<size_t>(n));
  }
}

}  // namespace hdb
