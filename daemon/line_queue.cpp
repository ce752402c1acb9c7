#include "line_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <string>

namespace hdb {

Line sinkGapLine(std::string_view sink, std::string_view reason, uint64_t dropped) {
  auto line = std::make_shared<std::string>();
  line->reserve(64 + sink.size());
  line->append("{\"v\":1,\"op\":\"gap\",\"reason\":");
  appendJsonString(*line, reason);
  line->append(",\"dropped\":").append(std::to_string(dropped)).append(",\"sink\":");
  appendJsonString(*line, sink);
  line->append("}\n");
  return line;
}

size_t LineQueue::gapBytes(uint64_t dropped) const {
  // Cheaper than building the line: only the number's width varies.
  if (!gapFixed_) gapFixed_ = sinkGapLine(sink_, "queue_full", 0)->size() - 1;
  return gapFixed_ + std::to_string(dropped).size();
}

bool LineQueue::push(Line line) {
  switch (policy_) {
    case OverflowPolicy::DropNewest: return pushDropNewest(std::move(line));
    case OverflowPolicy::DropOldest: return pushDropOldest(std::move(line));
    case OverflowPolicy::Disconnect: break;
  }
  if (bytes_ + line->size() > cap_) return false;
  bytes_ += line->size();
  entries_.push_back({std::move(line), 0, nullptr});
  return true;
}

// The newest line is refused when it does not fit; the gap line goes right
// before the next line that fits (or out on its own once the queue drains).
bool LineQueue::pushDropNewest(Line line) {
  size_t need = line->size() + (pendingGap_ ? gapBytes(pendingGap_) : 0);
  if (bytes_ + need > cap_) {
    ++pendingGap_;
    ++stats_->droppedNewest;
    // A gap line at the tail not yet started, or nothing queued at all: the
    // gap can be told there now (merged) instead of waiting for a next line.
    bool tailGap = !entries_.empty() && unstartedGap(entries_.size() - 1);
    if (tailGap || entries_.empty()) {
      size_t grown = gapBytes((tailGap ? entries_.back().gap : 0) + pendingGap_);
      size_t now = tailGap ? entries_.back().line->size() : 0;
      if (bytes_ - now + grown <= cap_) {
        appendGap(pendingGap_);
        pendingGap_ = 0;
      }
    }
    return true;
  }
  if (pendingGap_) {
    appendGap(pendingGap_);
    pendingGap_ = 0;
  }
  bytes_ += line->size();
  entries_.push_back({std::move(line), 0, nullptr});
  return true;
}

// The oldest unwritten lines make room; a gap line takes their place. A line
// that does not fit even in an emptied queue is dropped itself.
bool LineQueue::pushDropOldest(Line line) {
  while (bytes_ + line->size() > cap_ && evictOldest()) {
  }
  if (bytes_ + line->size() > cap_) {
    ++stats_->droppedOldest;
    appendGap(1);
    return true;
  }
  bytes_ += line->size();
  entries_.push_back({std::move(line), 0, nullptr});
  return true;
}

bool LineQueue::unstartedGap(size_t i) const {
  return i < entries_.size() && entries_[i].gap > 0 && !(i == 0 && headOffset_ > 0);
}

// Removes the oldest line nothing of has been written; the hole it leaves is
// told by the gap right before it, grown, or a new one.
bool LineQueue::evictOldest() {
  size_t i = headOffset_ > 0 ? 1 : 0;
  while (i < entries_.size() && entries_[i].gap > 0) ++i;  // gaps already at the front stay
  if (i >= entries_.size()) return false;
  bytes_ -= entries_[i].line->size();
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
  ++stats_->droppedOldest;
  if (i > 0 && unstartedGap(i - 1)) {
    setGap(entries_[i - 1], entries_[i - 1].gap + 1);
  } else if (unstartedGap(i)) {
    setGap(entries_[i], entries_[i].gap + 1);
  } else {
    insertGap(i, 1, "queue_full");
  }
  return true;
}

void LineQueue::setGap(Entry& e, uint64_t dropped) {
  bytes_ -= e.line->size();
  e.line = sinkGapLine(sink_, e.reason, dropped);
  e.gap = dropped;
  bytes_ += e.line->size();
}

void LineQueue::insertGap(size_t at, uint64_t dropped, const char* reason) {
  Entry e{sinkGapLine(sink_, reason, dropped), dropped, reason};
  bytes_ += e.line->size();
  entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(at), std::move(e));
  ++stats_->gapLines;
}

void LineQueue::appendGap(uint64_t dropped) {
  if (!entries_.empty() && unstartedGap(entries_.size() - 1)) {
    setGap(entries_.back(), entries_.back().gap + dropped);
    return;
  }
  insertGap(entries_.size(), dropped, "queue_full");
}

void LineQueue::clear() {
  entries_.clear();
  headOffset_ = 0;
  bytes_ = 0;
  pendingGap_ = 0;
  ledger_.clear();
  written_ = 0;
}

void LineQueue::consume(size_t n) {
  bytes_ -= n;
  stats_->bytesWritten += n;
  written_ += n;
  while (n > 0) {
    const Entry& front = entries_.front();
    size_t left = front.line->size() - headOffset_;
    if (n < left) {
      headOffset_ += n;
      break;
    }
    n -= left;
    if (window_) ledger_.push_back({written_ - n, front.gap});
    entries_.pop_front();
    headOffset_ = 0;
  }
  // Lines that ended a whole pipe capacity ago have surely been read.
  while (!ledger_.empty() && ledger_.front().end + window_ <= written_) ledger_.pop_front();
}

LineQueue::Loss LineQueue::readerGone(size_t unreadBytes) {
  Loss loss;
  auto lose = [&loss](uint64_t gap) {
    loss.lines += gap ? 0 : 1;
    loss.weight += gap ? gap : 1;
  };
  uint64_t readUpTo = written_ >= unreadBytes ? written_ - unreadBytes : 0;
  for (const Written& w : ledger_)
    if (w.end > readUpTo) lose(w.gap);
  if (headOffset_ > 0) {
    lose(entries_.front().gap);
    bytes_ -= entries_.front().line->size() - headOffset_;
    entries_.pop_front();
    headOffset_ = 0;
  }
  newReader();
  if (loss.weight > 0) prependGap(loss.weight, "reader_gone");
  return loss;
}

void LineQueue::newReader() {
  ledger_.clear();
  written_ = 0;
}

LineQueue::Loss LineQueue::discard(std::string& rest) {
  rest.clear();
  if (headOffset_ > 0) {
    rest.assign(*entries_.front().line, headOffset_);
    bytes_ -= rest.size();
    entries_.pop_front();
    headOffset_ = 0;
  }
  Loss loss;
  for (const Entry& e : entries_) {
    loss.lines += e.gap ? 0 : 1;
    loss.weight += e.gap ? e.gap : 1;
  }
  loss.weight += pendingGap_;
  pendingGap_ = 0;
  entries_.clear();
  bytes_ = 0;
  return loss;
}

void LineQueue::prependGap(uint64_t dropped, const char* reason) {
  if (dropped == 0) return;
  size_t at = headOffset_ > 0 ? 1 : 0;
  if (unstartedGap(at)) {
    setGap(entries_[at], entries_[at].gap + dropped);
    return;
  }
  insertGap(at, dropped, reason);
}

WriteStatus LineQueue::writeTo(int fd, bool isSocket, int& err) {
  if (isSocket) {
    return writeUsing(
        [fd](const iovec* iov, int count) {
          msghdr msg{};
          msg.msg_iov = const_cast<iovec*>(iov);
          msg.msg_iovlen = static_cast<size_t>(count);
          return ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        },
        err);
  }
  return writeUsing([fd](const iovec* iov, int count) { return ::writev(fd, iov, count); }, err);
}

}  // namespace hdb
