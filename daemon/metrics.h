// What /metrics, /readyz and /healthz say about the running bridge: the
// counters the sources and sinks keep anyway, rendered on request (nothing is
// counted twice, nothing is kept for the endpoint alone). The metric names and
// their meaning are listed in docs/operations.md, "Metrics and health".
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop_lag.h"
#include "sink.h"
#include "source.h"

namespace hdb {

// The parts of the bridge the endpoint reads. The vectors are the bridge's
// own, so sources and sinks added later show without any registration.
struct BridgeView {
  const std::vector<RunningSource>& sources;
  const std::vector<std::unique_ptr<Sink>>& sinks;
  const LoopLagProbe& lag;
  std::chrono::system_clock::time_point startedWall;
  std::chrono::steady_clock::time_point started;
  std::function<bool()> stopping;  // true once shutdown began
};

// Requests the HTTP server answered, by status code, for its own metrics.
struct HttpCounters {
  uint64_t ok = 0;            // 200
  uint64_t unavailable = 0;   // 503 (/readyz while not ready)
  uint64_t notFound = 0;      // 404
  uint64_t badMethod = 0;     // 405
  uint64_t badRequest = 0;    // 400, 431: malformed or oversized requests
  uint64_t timedOut = 0;      // clients closed for taking too long
  uint64_t refused = 0;       // connections refused at the client limit
};

std::string renderMetrics(const BridgeView& view, const HttpCounters& http);

// /readyz: ready when every table is subscribed and caught up and no shutdown
// has begun; otherwise `why` names what is not (one line per table).
bool bridgeReady(const BridgeView& view, std::string& why);

}  // namespace hdb
