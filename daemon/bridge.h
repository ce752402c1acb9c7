// The daemon's top level: builds the loop, sinks, fan-out and sources from a
// validated config, runs them, and shuts them down in order on SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "checkpoint.h"
#include "config.h"
#include "event_loop.h"
#include "fanout.h"
#include "source.h"
#include "telemetry.h"

namespace hdb {

class Bridge {
 public:
  // Throws std::runtime_error for what the config could not foresee
  // (a socket path in use, an unwritable directory, ...).
  explicit Bridge(const Config& config);
  ~Bridge();

  // Runs until a stop signal (or until no sink is left); returns the exit code.
  int run();

 private:
  // The constructor's work: sinks, sources, telemetry, in that order.
  void build();
  void onSignal(int signo);
  void onStateChange();
  void afterService();
  void beginShutdown(const char* why);
  bool drained() const;

  void scheduleCheckpoint();

  Config config_;
  StateDir stateDir_;  // locked for as long as the bridge runs
  CheckpointBook checkpoints_;
  std::unique_ptr<EventLoop> loop_;
  Fanout fanout_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::unique_ptr<Telemetry> telemetry_;  // metrics endpoint, watchdog, STATUS=
  Timer shutdownTimer_;
  Timer checkpointTimer_;
  bool ready_ = false;
  bool shuttingDown_ = false;
  bool deadlinePassed_ = false;
};

}  // namespace hdb
