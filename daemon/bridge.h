// The daemon's top level: builds the loop, sinks, fan-out and sources from a
// validated config, runs them, applies a changed config on SIGHUP (reload.cpp
// plans it; only what changed is touched), and shuts them down in order on
// SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "config.h"
#include "event_loop.h"
#include "fanout.h"
#include "reload_plan.h"
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
  void reload();
  void apply(const ReloadPlan& plan, std::shared_ptr<Config> next);
  void addSource(const std::string& key, const SourceSpec& spec);
  void logStats(const Source& source) const;
  // The WriterLookup of the ingest sinks: the running config's table and the
  // running source that carries it.
  WriteTarget writerFor(std::string_view database, std::string_view table);
  std::unique_ptr<Sink> makeSinkFor(const SinkConfig& sink);

  std::shared_ptr<const Config> config_;
  StateDir stateDir_;  // locked for as long as the bridge runs
  CheckpointBook checkpoints_;
  std::unique_ptr<EventLoop> loop_;
  Fanout fanout_;
  std::vector<RunningSource> sources_;
  std::vector<RunningSource> retiring_;  // stopped by a reload; freed once their connection is gone
  std::unique_ptr<Telemetry> telemetry_;  // metrics endpoint, watchdog, STATUS=
  Timer shutdownTimer_;
  Timer checkpointTimer_;
  bool ready_ = false;
  bool shuttingDown_ = false;
  bool deadlinePassed_ = false;
};

}  // namespace hdb
