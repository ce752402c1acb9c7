#include "telemetry.h"

#include "exposition.h"

namespace hdb {

Telemetry::Telemetry(EventLoop& loop, const Config& config, const std::vector<RunningSource>& sources,
                     const std::vector<std::unique_ptr<Sink>>& sinks)
    : lag_(loop),
      watchdog_(loop),
      hang_(loop),
      status_(loop, sources, sinks),
      view_{sources, sinks, lag_, std::chrono::system_clock::now(), std::chrono::steady_clock::now(),
            [this] { return stopping_; }} {
  if (config.metrics)
    http_ = std::make_unique<HttpServer>(loop, *config.metrics, [this](std::string_view path) { return answer(path); });
}

Telemetry::~Telemetry() = default;

void Telemetry::start() {
  lag_.start();
  watchdog_.start();
  status_.start();
  hang_.start();
}

void Telemetry::stopping() {
  stopping_ = true;
  status_.stop();
  // The endpoint keeps answering until the loop ends: /readyz says why it is 503.
}

HttpResponse Telemetry::answer(std::string_view path) {
  if (path == "/metrics") return {200, Exposition::kContentType, renderMetrics(view_, http_->counters())};
  // Answering at all is the proof: this runs on the loop.
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/readyz") {
    std::string why;
    if (bridgeReady(view_, why)) return {200, "text/plain; charset=utf-8", "ready\n"};
    return {503, "text/plain; charset=utf-8", "not ready:\n" + why};
  }
  return {404, "text/plain; charset=utf-8", "not found; try /metrics, /healthz or /readyz\n"};
}

}  // namespace hdb
