// STATUS= for `systemctl status`: live counts every few seconds, sent only
// when the text changes (tables up/total, consumers, records per second).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "event_loop.h"
#include "sink.h"
#include "source.h"

namespace hdb {

// "2/3 tables up, 4 consumers, 12.5 records/s"
std::string statusText(size_t tablesUp, size_t tables, uint64_t consumers, double recordsPerSecond);

class StatusReporter {
 public:
  static constexpr std::chrono::seconds kInterval{2};

  StatusReporter(EventLoop& loop, const std::vector<RunningSource>& sources,
                 const std::vector<std::unique_ptr<Sink>>& sinks)
      : timer_(loop), sources_(sources), sinks_(sinks) {}
  void start();
  void stop() { timer_.cancel(); }

 private:
  void update();

  Timer timer_;
  const std::vector<RunningSource>& sources_;
  const std::vector<std::unique_ptr<Sink>>& sinks_;
  std::string last_;
  uint64_t lastRecords_ = 0;
  std::chrono::steady_clock::time_point lastAt_{};
};

}  // namespace hdb
