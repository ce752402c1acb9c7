#include "replay_ring.h"

namespace hdb {

void ReplayRing::push(const Line& line) {
  if (maxLines_ == 0) return;
  if (line->size() > maxBytes_) {
    // Replaying what came before it without it would be a hole.
    lines_.clear();
    bytes_ = 0;
    return;
  }
  lines_.push_back(line);
  bytes_ += line->size();
  while (lines_.size() > maxLines_ || bytes_ > maxBytes_) {
    bytes_ -= lines_.front()->size();
    lines_.pop_front();
  }
}

}  // namespace hdb
