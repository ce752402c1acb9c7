// Everything the bridge tells its operator besides the data: the metrics and
// health endpoint (metrics.h, http_server.h), the loop-lag probe, systemd's
// watchdog pings and STATUS= lines. The bridge owns one and calls start(),
// stopping() and nothing else.
#pragma once

#include <memory>

#include "config.h"
#include "event_loop.h"
#include "http_server.h"
#include "loop_lag.h"
#include "metrics.h"
#include "status_report.h"
#include "watchdog.h"

namespace hdb {

class Telemetry {
 public:
  // Opens the metrics socket when configured (throws std::runtime_error if it cannot).
  Telemetry(EventLoop& loop, const Config& config, const std::vector<RunningSource>& sources,
            const std::vector<std::unique_ptr<Sink>>& sinks);
  ~Telemetry();

  // Starts the timers (lag probe, watchdog, status, the test hang switch).
  void start();
  // Shutdown began: /readyz turns 503 and STATUS= updates stop.
  // The watchdog keeps pinging until the loop ends.
  void stopping();

 private:
  HttpResponse answer(std::string_view path);

  LoopLagProbe lag_;
  Watchdog watchdog_;
  TestHang hang_;
  StatusReporter status_;
  BridgeView view_;
  bool stopping_ = false;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace hdb
