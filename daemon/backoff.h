// Reconnect delays: exponential growth, full jitter, a floor and a cap.
// Pure logic; the caller owns the timer.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace hdb {

struct BackoffPolicy {
  std::chrono::milliseconds floor;  // no delay is shorter (no tight loop, ever)
  std::chrono::milliseconds cap;    // no delay is longer
};

// After a dropped connection: start fast, settle at 30 s.
inline constexpr BackoffPolicy kReconnectBackoff{std::chrono::milliseconds(500), std::chrono::seconds(30)};
// After the server refused our credentials: retrying quickly cannot help.
inline constexpr BackoffPolicy kAuthFailureBackoff{std::chrono::seconds(5), std::chrono::minutes(5)};

class Backoff {
 public:
  explicit Backoff(uint64_t seed = std::random_device{}()) : rng_(seed) {}

  // The delay before the next attempt: uniform in [floor, min(cap, floor * 2^n)]
  // where n counts the failures since the last reset().
  std::chrono::milliseconds next(const BackoffPolicy& policy);
  void reset() { failures_ = 0; }
  unsigned failures() const { return failures_; }

 private:
  std::mt19937_64 rng_;
  unsigned failures_ = 0;
};

}  // namespace hdb
