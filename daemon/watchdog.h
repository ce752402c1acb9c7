// systemd's watchdog: with WatchdogSec= set, the service manager passes
// WATCHDOG_USEC and expects WATCHDOG=1 at least that often. The ping comes
// from a timer on the event loop at half the interval, so it stops exactly
// when the loop stops turning, and systemd then kills and restarts us.
//
// TestHang is the fault switch that proves it: a test-only way to hang the
// loop, armed only when HDB_BRIDGE_TEST_FAULTS=1 *and*
// HDB_BRIDGE_TEST_HANG_AFTER=SECONDS are both in the environment (never from
// the config file). It then blocks the loop thread for good SECONDS after the
// start; only SIGKILL or the watchdog's SIGABRT ends the process.
#pragma once

#include <chrono>
#include <optional>

#include "event_loop.h"

namespace hdb {

class Watchdog {
 public:
  explicit Watchdog(EventLoop& loop) : timer_(loop) {}
  // Starts pinging when the service manager asked for it; logs the interval.
  void start();
  bool enabled() const { return interval_.has_value(); }

 private:
  void ping();

  Timer timer_;
  std::optional<std::chrono::microseconds> interval_;
};

class TestHang {
 public:
  explicit TestHang(EventLoop& loop) : timer_(loop) {}
  // Reads the two variables; arms the switch only when both are set and valid.
  void start();

 private:
  Timer timer_;
};

}  // namespace hdb
