#include "bridge.h"

#include <signal.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "hdb3_source.h"
#include "hdb4_source.h"
#include "notify.h"
#include "sink_stdout.h"
#include "sinks.h"

namespace hdb {

namespace {
using namespace std::chrono_literals;
// Closing the subscriptions and flushing the sinks must fit in the 2 s a
// service manager is promised; past this, whatever is left is abandoned.
constexpr auto kShutdownDeadline = 1500ms;
}  // namespace

Bridge::Bridge(const Config& config)
    : config_(config),
      stateDir_(config_.stateDir),
      loop_(std::make_unique<EventLoop>(config_, [this](int signo) { onSignal(signo); })),
      shutdownTimer_(*loop_),
      checkpointTimer_(*loop_) {
  for (const auto& sink : config_.sinks) fanout_.add(makeSink(*loop_, sink));
  // HarperDB 3 carries all of a server's tables on one connection: one source per server.
  std::map<std::string, std::vector<Hdb3Source::Table>> hdb3Tables;
  for (const auto& table : config_.tables) {
    const ServerConfig& server = config_.servers.at(table.server);
    std::string label = table.key() + " on server '" + server.name + "'";
    auto& checkpoint = checkpoints_.add(stateDir_, server.name, table.database, table.table, label);
    if (server.protocol == Protocol::HarperDB3) {
      hdb3Tables[server.name].push_back({&table, fanout_.routeFor(table.key()), &checkpoint});
      continue;
    }
    sources_.push_back(std::make_unique<Hdb4Source>(*loop_, server, table, fanout_.routeFor(table.key()),
                                                    checkpoint, [this] { onStateChange(); }));
  }
  for (auto& [name, tables] : hdb3Tables)
    sources_.push_back(std::make_unique<Hdb3Source>(*loop_, config_.servers.at(name), std::move(tables),
                                                    [this] { onStateChange(); }));
}

Bridge::~Bridge() {
  // Order matters: timers first, then the context (its close callbacks still
  // reach the sources and sinks), then the objects themselves.
  shutdownTimer_.cancel();
  checkpointTimer_.cancel();
  for (auto& source : sources_) source->shutdown();
  loop_->destroyContext();
  checkpoints_.flush();
}

int Bridge::run() {
  spdlog::info("hdb-bridge {} starting: {} table(s), {} sink(s)", HDB_BRIDGE_VERSION, config_.tables.size(),
               fanout_.sinks().size());
  for (const auto& [name, server] : config_.servers)
    if (server.url.tls && !server.tls.verify)
      spdlog::warn("server '{}': TLS certificate verification is off (tls: {{verify: false}}): the connection is "
                   "encrypted but anyone on the path can pose as the server",
                   name);
  notify::status("connecting");
  for (auto& source : sources_) source->start();
  scheduleCheckpoint();
  loop_->run([this] { afterService(); });
  // Everything delivered is flushed (or abandoned at the deadline): record it,
  // so the next start continues right after it.
  checkpoints_.flush();
  // What each upstream did, so a run that met a hostile peer says how often.
  for (const auto& source : sources_) {
    const SourceStats& s = source->stats();
    spdlog::info("{}: {} messages, {} lines; dropped: {} malformed ({} over max_message_bytes), {} duplicates; "
                 "{} connects, {} drops, {} gaps",
                 source->name(), s.frames, s.records, s.malformed, s.oversized, s.duplicates, s.connects, s.drops,
                 s.gaps);
  }
  spdlog::info("hdb-bridge stopped");
  return 0;
}

void Bridge::scheduleCheckpoint() {
  checkpointTimer_.start(config_.checkpointInterval, [this] {
    checkpoints_.flush();
    scheduleCheckpoint();
  });
}

void Bridge::onSignal(int signo) {
  if (signo == SIGHUP) {
    spdlog::info("SIGHUP received; reloading is not supported yet, configuration unchanged");
    return;
  }
  beginShutdown(signo == SIGINT ? "SIGINT" : "SIGTERM");
}

void Bridge::beginShutdown(const char* why) {
  if (shuttingDown_) {
    spdlog::warn("{} received again; stopping now", why);
    loop_->stop();
    return;
  }
  shuttingDown_ = true;
  spdlog::info("{} received; closing subscriptions and flushing sinks", why);
  notify::stopping();
  checkpointTimer_.cancel();
  fanout_.close();
  for (auto& source : sources_) source->shutdown();
  shutdownTimer_.start(kShutdownDeadline, [this] {
    deadlinePassed_ = true;
    spdlog::warn("shutdown deadline passed; {} line(s) may be unsent",
                 fanout_.pending() ? "some" : "no");
    loop_->stop();
  });
  loop_->wake();
}

void Bridge::onStateChange() {
  if (ready_ || shuttingDown_) return;
  bool all = std::all_of(sources_.begin(), sources_.end(), [](const auto& s) { return s->subscribed(); });
  if (!all) return;
  ready_ = true;
  spdlog::info("all {} table(s) subscribed; ready", config_.tables.size());
  notify::ready();
  notify::status("subscribed to every table");
}

bool Bridge::drained() const {
  bool sourcesDone = std::all_of(sources_.begin(), sources_.end(), [](const auto& s) { return s->stopped(); });
  return sourcesDone && !fanout_.pending();
}

void Bridge::afterService() {
  fanout_.flush();
  // Only what left every queue may become the checkpoint on disk: a line still
  // queued when the process ends is replayed after a restart, never skipped.
  if (!fanout_.pending()) checkpoints_.drained();
  if (shuttingDown_ && drained()) {
    loop_->stop();
    return;
  }
  // stdout closed early (`| head -3`) with nothing else to serve: done.
  const auto& sinks = fanout_.sinks();
  if (!shuttingDown_ && std::all_of(sinks.begin(), sinks.end(), [](const auto& s) {
        auto* out = dynamic_cast<StdoutSink*>(s.get());
        return out && out->stopped();
      }))
    beginShutdown("stdout closed, no other sink");
}

}  // namespace hdb
