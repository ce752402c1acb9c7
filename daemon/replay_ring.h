// The last lines a sink has seen, for `replay: N`: a new consumer gets them
// before any live line. Bounded by a line count and by bytes (the consumer's
// queue_bytes, so a replay always fits in the new consumer's empty queue).
// Lines are shared with the consumers' queues, never copied.
#pragma once

#include <cstddef>
#include <deque>

#include "envelope.h"

namespace hdb {

class ReplayRing {
 public:
  ReplayRing(size_t maxLines, size_t maxBytes) : maxLines_(maxLines), maxBytes_(maxBytes) {}

  // Keeps the line, forgetting the oldest ones past either bound. A line
  // bigger than maxBytes on its own empties the ring (it cannot be replayed).
  void push(const Line& line);
  void clear() {
    lines_.clear();
    bytes_ = 0;
  }

  const std::deque<Line>& lines() const { return lines_; }
  size_t bytes() const { return bytes_; }
  size_t size() const { return lines_.size(); }
  bool enabled() const { return maxLines_ > 0; }

 private:
  size_t maxLines_;
  size_t maxBytes_;
  std::deque<Line> lines_;
  size_t bytes_ = 0;
};

}  // namespace hdb
