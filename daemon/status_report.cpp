#include "status_report.h"

#include <cmath>

#include <spdlog/fmt/fmt.h>

#include "notify.h"

namespace hdb {

std::string statusText(size_t tablesUp, size_t tables, uint64_t consumers, double recordsPerSecond) {
  // One decimal is enough to see traffic; rounding keeps the text (and so the
  // notifications) still while the rate is.
  double rate = std::round(recordsPerSecond * 10) / 10;
  return fmt::format("{}/{} tables up, {} consumer{}, {:.1f} records/s", tablesUp, tables, consumers,
                     consumers == 1 ? "" : "s", rate);
}

void StatusReporter::start() {
  lastAt_ = std::chrono::steady_clock::now();
  lastRecords_ = 0;
  for (const auto& running : sources_) lastRecords_ += running.source->stats().records;
  timer_.start(kInterval, [this] { update(); });
}

void StatusReporter::update() {
  std::vector<TableStats> tables;
  uint64_t records = 0;
  for (const auto& running : sources_) {
    running.source->tableStats(tables);
    records += running.source->stats().records;
  }
  size_t up = 0;
  for (const TableStats& t : tables) up += t.subscribed ? 1 : 0;
  uint64_t consumers = 0;
  for (const auto& sink : sinks_) consumers += sink->stats().consumers;
  auto now = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(now - lastAt_).count();
  // A reload that stopped a subscription takes its count away: no rate then.
  double rate = seconds > 0 && records >= lastRecords_ ? static_cast<double>(records - lastRecords_) / seconds : 0;
  lastAt_ = now;
  lastRecords_ = records;
  std::string text = statusText(up, tables.size(), consumers, rate);
  if (text != last_) {
    notify::status(text);
    last_ = std::move(text);
  }
  timer_.start(kInterval, [this] { update(); });
}

}  // namespace hdb
