// LineQueue overflow policies (drop_oldest, drop_newest, disconnect), where
// their gap lines go and how they merge, and the FIFO reader-loss ledger.
// A consumer that takes an exact number of bytes per write stands in for a
// socket or pipe, so where a line is cut is exact.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "line_queue.h"

namespace {

using hdb::LineQueue;
using hdb::OverflowPolicy;
using hdb::WriteStatus;

hdb::Line line(char c, size_t size = 100) {
  std::string s(size - 1, c);
  s.push_back('\n');
  return std::make_shared<const std::string>(s);
}

std::string gap(uint64_t n, const char* reason = "queue_full") {
  return R"({"v":1,"op":"gap","reason":")" + std::string(reason) + R"(","dropped":)" + std::to_string(n) +
         R"(,"sink":"s"})";
}

// The text of each line, with a line of 100 'x' shown as "x*100".
std::vector<std::string> linesOf(const std::string& data) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string l = data.substr(start, nl - start);
    if (!l.empty() && l.find_first_not_of(l[0]) == std::string::npos && l[0] != '{')
      l = std::string(1, l[0]) + "*" + std::to_string(l.size() + 1);
    out.push_back(l);
  }
  return out;
}

using Lines = std::vector<std::string>;

// A consumer that takes exactly the bytes it is offered room for.
struct Consumer {
  std::string got;
  WriteStatus offer(LineQueue& q, size_t bytes) {
    size_t room = bytes;
    int err = 0;
    return q.writeUsing(
        [&](const iovec* iov, int count) -> ssize_t {
          if (room == 0) {
            errno = EAGAIN;
            return -1;
          }
          size_t took = 0;
          for (int i = 0; i < count && room > 0; ++i) {
            size_t k = std::min(room, iov[i].iov_len);
            got.append(static_cast<const char*>(iov[i].iov_base), k);
            room -= k;
            took += k;
          }
          return static_cast<ssize_t>(took);
        },
        err);
  }
  // Everything queued, then what was received so far as lines.
  std::vector<std::string> drain(LineQueue& q) {
    REQUIRE(offer(q, SIZE_MAX) == WriteStatus::Drained);
    return linesOf(got);
  }
};

}  // namespace

TEST_CASE("gap line format") {
  CHECK(*hdb::sinkGapLine("out", "queue_full", 7) ==
        "{\"v\":1,\"op\":\"gap\",\"reason\":\"queue_full\",\"dropped\":7,\"sink\":\"out\"}\n");
  CHECK(*hdb::sinkGapLine("a\"b", "reader_gone", 1) ==
        "{\"v\":1,\"op\":\"gap\",\"reason\":\"reader_gone\",\"dropped\":1,\"sink\":\"a\\\"b\"}\n");
}

TEST_CASE("disconnect: a line that would pass the cap is refused, nothing dropped silently") {
  hdb::QueueStats stats;
  LineQueue q(350, OverflowPolicy::Disconnect, "s", &stats);
  CHECK(q.push(line('a')));
  CHECK(q.push(line('b')));
  CHECK(q.push(line('c')));
  CHECK_FALSE(q.push(line('d')));
  CHECK(q.lines() == 3);
  CHECK(stats.droppedNewest + stats.droppedOldest == 0);
}

TEST_CASE("drop_newest: the gap line goes right before the next line that fits") {
  hdb::QueueStats stats;
  LineQueue q(350, OverflowPolicy::DropNewest, "s", &stats);
  for (char c : {'a', 'b', 'c', 'd', 'e'}) CHECK(q.push(line(c)));
  CHECK(stats.droppedNewest == 2);
  CHECK(q.pendingGap() == 2);
  CHECK(q.bytes() == 300);
  Consumer consumer;
  CHECK(consumer.offer(q, 150) == WriteStatus::Blocked);  // a whole, b half
  CHECK(q.push(line('f')));  // 150 left + gap 65 + 100 fits in 350
  CHECK(q.pendingGap() == 0);
  CHECK(consumer.drain(q) == Lines{"a*100", "b*100", "c*100", gap(2), "f*100"});
  CHECK(stats.gapLines == 1);
  CHECK(q.bytes() == 0);
}

TEST_CASE("drop_newest: with nothing queued the gap line goes out on its own") {
  LineQueue q(250, OverflowPolicy::DropNewest, "s");
  CHECK(q.push(line('a')));
  CHECK(q.push(line('b')));
  CHECK(q.push(line('c')));  // dropped
  Consumer consumer;
  CHECK(consumer.drain(q) == Lines{"a*100", "b*100", gap(1)});
  CHECK(q.empty());
  CHECK(q.pendingGap() == 0);
}

TEST_CASE("drop_newest: consecutive drops while a gap waits unsent merge into it") {
  LineQueue q(150, OverflowPolicy::DropNewest, "s");
  CHECK(q.push(line('a', 300)));  // bigger than the cap on its own: dropped, gap queued alone
  CHECK(q.lines() == 1);
  CHECK(q.push(line('b', 300)));  // merges into the unsent gap
  CHECK(q.lines() == 1);
  Consumer consumer;
  CHECK(consumer.drain(q) == Lines{gap(2)});
}

TEST_CASE("drop_oldest: the gap stands where the evicted lines were") {
  hdb::QueueStats stats;
  LineQueue q(350, OverflowPolicy::DropOldest, "s", &stats);
  for (char c : {'a', 'b', 'c'}) CHECK(q.push(line(c)));
  CHECK(q.push(line('d')));  // a goes (gap 65 bytes), then b too to make room
  CHECK(stats.droppedOldest == 2);
  CHECK(q.bytes() <= 350);
  CHECK(q.push(line('e')));  // c goes: merged into the gap at the front
  CHECK(stats.droppedOldest == 3);
  CHECK(stats.gapLines == 1);
  CHECK(q.bytes() <= 350);
  Consumer consumer;
  CHECK(consumer.drain(q) == Lines{gap(3), "d*100", "e*100"});
}

TEST_CASE("drop_oldest: a partly written line is never evicted; the hole follows it") {
  LineQueue q(350, OverflowPolicy::DropOldest, "s");
  for (char c : {'a', 'b', 'c'}) CHECK(q.push(line(c)));
  Consumer consumer;
  CHECK(consumer.offer(q, 50) == WriteStatus::Blocked);  // half of a
  CHECK(q.push(line('d')));  // a stays (half sent); b goes
  CHECK(q.push(line('e')));  // c goes, merged
  CHECK(consumer.drain(q) == Lines{"a*100", gap(2), "d*100", "e*100"});
}

TEST_CASE("drop_oldest: a gap partly written is not merged into; a new one follows it") {
  LineQueue q(350, OverflowPolicy::DropOldest, "s");
  for (char c : {'a', 'b', 'c', 'd'}) CHECK(q.push(line(c)));  // gap(2) c d
  Consumer consumer;
  CHECK(consumer.offer(q, 10) == WriteStatus::Blocked);  // 10 bytes of the gap line
  CHECK(q.push(line('e')));  // c goes: a second gap line after the half-sent one
  CHECK(consumer.drain(q) == Lines{gap(2), gap(1), "d*100", "e*100"});
}

TEST_CASE("drop_oldest: a line bigger than the whole cap is itself dropped") {
  hdb::QueueStats stats;
  LineQueue q(250, OverflowPolicy::DropOldest, "s", &stats);
  CHECK(q.push(line('a')));
  CHECK(q.push(line('b', 400)));
  CHECK(stats.droppedOldest == 2);  // a to make room, then b itself
  CHECK(q.push(line('c')));
  Consumer consumer;
  CHECK(consumer.drain(q) == Lines{gap(2), "c*100"});
}

TEST_CASE("drop policies: bytes stay within the cap and every drop is told exactly once") {
  for (auto policy : {OverflowPolicy::DropOldest, OverflowPolicy::DropNewest}) {
    CAPTURE(static_cast<int>(policy));
    hdb::QueueStats stats;
    LineQueue q(64 * 1024, policy, "s", &stats);
    Consumer consumer;
    size_t maxBytes = 0;
    for (int i = 0; i < 100000; ++i) {
      CHECK(q.push(line(char('a' + i % 26), 50 + size_t(i % 300))));
      maxBytes = std::max(maxBytes, q.bytes());
      if (i % 1000 == 0) consumer.offer(q, 12345);  // a slow consumer, cutting lines anywhere
    }
    CHECK(maxBytes <= 64 * 1024);
    uint64_t dropped = stats.droppedOldest + stats.droppedNewest;
    CHECK(dropped > 0);
    uint64_t records = 0, told = 0;
    for (const std::string& l : consumer.drain(q)) {
      if (l.starts_with("{")) {
        told += std::stoull(l.substr(l.find("\"dropped\":") + 10));
      } else {
        ++records;
      }
    }
    CHECK(records + dropped == 100000);
    CHECK(told == dropped);
    CHECK(stats.bytesWritten == consumer.got.size());
  }
}

TEST_CASE("fifo ledger: lines a departed reader did not read whole are counted and told") {
  LineQueue q(1 << 20, OverflowPolicy::Disconnect, "s");
  q.trackWritten(4096);
  for (char c : {'a', 'b', 'c', 'd', 'e'}) CHECK(q.push(line(c)));
  Consumer pipe;
  CHECK(pipe.offer(q, SIZE_MAX) == WriteStatus::Drained);
  // The reader read 2.5 lines and left: c (half read), d and e are lost.
  LineQueue::Loss loss = q.readerGone(250);
  CHECK(loss.lines == 3);
  CHECK(loss.weight == 3);
  CHECK(q.push(line('f')));
  Consumer next;
  CHECK(next.drain(q) == Lines{gap(3, "reader_gone"), "f*100"});
}

TEST_CASE("fifo ledger: a half-written line is dropped so the next reader starts at a boundary") {
  LineQueue q(1 << 20, OverflowPolicy::Disconnect, "s");
  q.trackWritten(4096);
  for (char c : {'a', 'b', 'c'}) CHECK(q.push(line(c)));
  Consumer pipe;
  CHECK(pipe.offer(q, 150) == WriteStatus::Blocked);
  CHECK(q.midLine());
  // Nothing was read: a (whole in the pipe) and b (half written) are lost.
  LineQueue::Loss loss = q.readerGone(150);
  CHECK(loss.lines == 2);
  CHECK_FALSE(q.midLine());
  Consumer next;
  CHECK(next.drain(q) == Lines{gap(2, "reader_gone"), "c*100"});
}

TEST_CASE("fifo ledger: a lost gap line counts for the lines it stood for") {
  LineQueue q(250, OverflowPolicy::DropNewest, "s");
  q.trackWritten(4096);
  for (char c : {'a', 'b', 'c', 'd'}) CHECK(q.push(line(c)));  // c, d dropped
  Consumer pipe;
  CHECK(pipe.offer(q, SIZE_MAX) == WriteStatus::Drained);  // a b gap(2)
  CHECK(linesOf(pipe.got) == Lines{"a*100", "b*100", gap(2)});
  LineQueue::Loss loss = q.readerGone(gap(2).size() + 1 + 100);  // b and the gap unread
  CHECK(loss.lines == 1);
  CHECK(loss.weight == 3);
  Consumer next;
  CHECK(next.drain(q) == Lines{gap(3, "reader_gone")});
}

TEST_CASE("fifo ledger: only the last pipe-capacity of lines is remembered") {
  LineQueue q(1 << 20, OverflowPolicy::Disconnect, "s");
  q.trackWritten(1000);
  Consumer pipe;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 10; ++i) CHECK(q.push(line('x')));
    CHECK(pipe.offer(q, SIZE_MAX) == WriteStatus::Drained);
  }
  // Even claiming everything unread, at most a pipe's worth can be lost.
  CHECK(q.readerGone(1 << 20).lines == 10);
}

TEST_CASE("discard keeps the stream line-aligned: the rest of a half-written line is handed back") {
  LineQueue q(1 << 20, OverflowPolicy::Disconnect, "s");
  for (char c : {'a', 'b', 'c'}) CHECK(q.push(line(c)));
  Consumer pipe;
  CHECK(pipe.offer(q, 30) == WriteStatus::Blocked);
  std::string rest;
  LineQueue::Loss loss = q.discard(rest);
  CHECK(rest == std::string(69, 'a') + "\n");
  CHECK(loss.lines == 2);
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
  q.prependGap(3, "disconnect");
  CHECK(q.push(line('d')));
  Consumer next;
  CHECK(next.drain(q) == Lines{gap(3, "disconnect"), "d*100"});
}

TEST_CASE("atomic writes (FIFO): whole lines, at most PIPE_BUF per write unless one line is bigger") {
  LineQueue q(1 << 20, OverflowPolicy::Disconnect, "s");
  q.atomicWrites(4096);
  for (int i = 0; i < 100; ++i) CHECK(q.push(line('a', 300)));
  CHECK(q.push(line('b', 5000)));
  for (int i = 0; i < 10; ++i) CHECK(q.push(line('c', 300)));
  std::vector<size_t> writes;
  std::string got;
  int err = 0;
  auto status = q.writeUsing(
      [&](const iovec* iov, int count) -> ssize_t {
        size_t n = 0;
        for (int i = 0; i < count; ++i) {
          got.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
          n += iov[i].iov_len;
        }
        writes.push_back(n);
        return static_cast<ssize_t>(n);
      },
      err);
  CHECK(status == WriteStatus::Drained);
  CHECK(got.size() == 100 * 300 + 5000 + 10 * 300);
  for (size_t n : writes) {
    CAPTURE(n);
    CHECK((n <= 4096 || n == 5000));
    CHECK(n % 300 == (n == 5000 ? 200 : 0));  // whole lines only
  }
}
