// Logging setup (spdlog to stderr) and a rate limiter for data-path messages,
// which must never flood the log however often a peer misbehaves.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>

#include "config.h"

namespace hdb {

// Under systemd (JOURNAL_STREAM names stderr's device:inode) lines are
// "<N>message" with N the syslog priority, so `journalctl -p warning` works;
// otherwise the usual timestamped, coloured spdlog lines.
void setupLogging(LogLevel level);
bool stderrIsJournal();
int journalPriority(spdlog::level::level_enum level);
spdlog::level::level_enum toSpdlog(LogLevel level);

// Lets the first message through, then at most one per interval; the next one
// that passes tells how many were held back.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration interval = std::chrono::seconds(10))
      : interval_(interval) {}

  // True when this occurrence should be logged; `suppressed` is then the number
  // of occurrences held back since the last one logged.
  bool allow(uint64_t& suppressed);

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool any_ = false;
  uint64_t held_ = 0;
};

}  // namespace hdb
