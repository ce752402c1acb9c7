// Loop lag: a timer asks to fire every 100 ms and notes how late it actually
// fires. A loop busy in a long callback (or stuck) shows as lag; the metrics
// endpoint reports the last sample and the worst of the last ten seconds.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "event_loop.h"

namespace hdb {

class LoopLagProbe {
 public:
  static constexpr std::chrono::milliseconds kInterval{100};

  explicit LoopLagProbe(EventLoop& loop) : timer_(loop) {}
  void start();
  void stop() { timer_.cancel(); }

  std::chrono::microseconds last() const { return last_; }
  // The worst sample of roughly the last ten seconds.
  std::chrono::microseconds recentMax() const;
  uint64_t samples() const { return samples_; }

  // Pure bookkeeping, for the unit test: one sample taken.
  void record(std::chrono::microseconds lag);

 private:
  void arm();

  Timer timer_;
  std::chrono::steady_clock::time_point due_{};
  std::chrono::microseconds last_{0};
  // One maximum per second, for the last ten seconds.
  std::array<std::chrono::microseconds, 10> perSecond_{};
  size_t slot_ = 0;
  uint64_t samples_ = 0;
};

}  // namespace hdb
