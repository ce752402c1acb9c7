#include "loop_lag.h"

#include <algorithm>

namespace hdb {

void LoopLagProbe::start() { arm(); }

void LoopLagProbe::arm() {
  due_ = std::chrono::steady_clock::now() + kInterval;
  timer_.start(kInterval, [this] {
    auto late = std::chrono::steady_clock::now() - due_;
    record(std::max(std::chrono::duration_cast<std::chrono::microseconds>(late), std::chrono::microseconds(0)));
    arm();
  });
}

void LoopLagProbe::record(std::chrono::microseconds lag) {
  constexpr uint64_t kPerSlot = std::chrono::seconds(1) / kInterval;
  if (samples_ % kPerSlot == 0) {
    slot_ = (slot_ + 1) % perSecond_.size();
    perSecond_[slot_] = std::chrono::microseconds(0);
  }
  ++samples_;
  last_ = lag;
  perSecond_[slot_] = std::max(perSecond_[slot_], lag);
}

std::chrono::microseconds LoopLagProbe::recentMax() const {
  return *std::max_element(perSecond_.begin(), perSecond_.end());
}

}  // namespace hdb
