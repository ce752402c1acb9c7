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
    : config_(std::make_shared<const Config>(config)),
      stateDir_(config_->stateDir),
      loop_(std::make_unique<EventLoop>(*config_, [this](int signo) { onSignal(signo); })),
      shutdownTimer_(*loop_),
      checkpointTimer_(*loop_) {
  try {
    build();
  } catch (...) {
    // Sinks and sources already made have fds in the context: close them while
    // their objects still exist (member destruction comes after this).
    loop_->destroyContext();
    throw;
  }
}

void Bridge::build() {
  for (const auto& sink : config_->sinks) fanout_.add(makeSinkFor(sink));
  for (const auto& [key, spec] : sourcesOf(*config_)) addSource(key, spec);
  telemetry_ = std::make_unique<Telemetry>(*loop_, *config_, sources_, fanout_.sinks());
}

// Creates (does not start) the subscription for `spec`, which points into config_.
void Bridge::addSource(const std::string& key, const SourceSpec& spec) {
  const ServerConfig& server = *spec.server;
  std::unique_ptr<Source> source;
  auto checkpointOf = [&](const TableConfig& table) -> CheckpointBook::Entry& {
    std::string label = table.key() + " on server '" + server.name + "'";
    return checkpoints_.add(stateDir_, server.name, table.database, table.table, label);
  };
  if (server.protocol == Protocol::HarperDB3) {
    std::vector<Hdb3Source::Table> tables;
    for (const TableConfig* table : spec.tables)
      tables.push_back({table, fanout_.routeFor(table->key()), &checkpointOf(*table)});
    source = std::make_unique<Hdb3Source>(*loop_, server, std::move(tables), [this] { onStateChange(); });
  } else {
    const TableConfig& table = *spec.tables.front();
    auto& checkpoint = checkpointOf(table);
    source = std::make_unique<Hdb4Source>(*loop_, server, table, fanout_.routeFor(table.key()), checkpoint,
                                          [this] { onStateChange(); });
  }
  sources_.push_back({key, config_, std::move(source)});
}

std::unique_ptr<Sink> Bridge::makeSinkFor(const SinkConfig& sink) {
  return makeSink(*loop_, sink, [this](std::string_view database, std::string_view table) {
    return writerFor(database, table);
  });
}

WriteTarget Bridge::writerFor(std::string_view database, std::string_view table) {
  std::string key = std::string(database).append(".").append(table);
  const TableConfig* found = nullptr;
  for (const TableConfig& t : config_->tables) {
    if (t.database != database || t.table != table) continue;
    if (!found || (t.writable && !found->writable)) found = &t;
  }
  if (!found) return {nullptr, "table " + key + " is not in the config"};
  if (!found->writable) return {nullptr, "table " + key + " is not writable (writable: true on the table allows it)"};
  const ServerConfig& server = config_->servers.at(found->server);
  std::string sourceKey = server.name;
  if (server.protocol == Protocol::HarperDB4) sourceKey += "/" + key;  // as sourcesOf() names it
  for (RunningSource& running : sources_) {
    if (running.key != sourceKey) continue;
    if (TableWriter* writer = running.source->writer(key)) return {writer, {}};
    break;
  }
  return {nullptr, "server '" + server.name + "' cannot write to " + key + " in this build; nothing was written"};
}

Bridge::~Bridge() {
  // Order matters: timers first, then the context (its close callbacks still
  // reach the sources and sinks), then the objects themselves.
  shutdownTimer_.cancel();
  checkpointTimer_.cancel();
  for (auto& running : sources_) running.source->shutdown();
  for (auto& running : retiring_) running.source->shutdown();
  loop_->destroyContext();
  checkpoints_.flush();
}

int Bridge::run() {
  spdlog::info("hdb-bridge {} starting: {} table(s), {} sink(s)", HDB_BRIDGE_VERSION, config_->tables.size(),
               fanout_.sinks().size());
  for (const auto& [name, server] : config_->servers)
    if (server.url.tls && !server.tls.verify)
      spdlog::warn("server '{}': TLS certificate verification is off (tls: {{verify: false}}): the connection is "
                   "encrypted but anyone on the path can pose as the server",
                   name);
  notify::status("connecting");
  for (auto& running : sources_) running.source->start();
  telemetry_->start();
  scheduleCheckpoint();
  loop_->run([this] { afterService(); });
  // Everything delivered is flushed (or abandoned at the deadline): record it,
  // so the next start continues right after it.
  checkpoints_.flush();
  // What each upstream did, so a run that met a hostile peer says how often.
  for (const auto& running : sources_) logStats(*running.source);
  spdlog::info("hdb-bridge stopped");
  return 0;
}

void Bridge::logStats(const Source& source) const {
  const SourceStats& s = source.stats();
  spdlog::info("{}: {} messages, {} lines; dropped: {} malformed ({} over max_message_bytes), {} duplicates, "
               "{} ignored; {} connects, {} drops ({} timeouts), {} gaps",
               source.name(), s.frames, s.records, s.malformed, s.oversized, s.duplicates, s.ignored, s.connects,
               s.drops, s.timeouts, s.gaps);
}

void Bridge::scheduleCheckpoint() {
  checkpointTimer_.start(config_->checkpointInterval, [this] {
    checkpoints_.flush();
    scheduleCheckpoint();
  });
}

void Bridge::onSignal(int signo) {
  if (signo == SIGHUP) {
    if (!shuttingDown_) reload();
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
  telemetry_->stopping();
  checkpointTimer_.cancel();
  fanout_.close();
  for (auto& running : sources_) running.source->shutdown();
  for (auto& running : retiring_) running.source->shutdown();
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
  bool all = std::all_of(sources_.begin(), sources_.end(), [](const auto& r) { return r.source->subscribed(); });
  if (!all) return;
  ready_ = true;
  spdlog::info("all {} table(s) subscribed; ready", config_->tables.size());
  notify::ready();
  notify::status("subscribed to every table");
}

bool Bridge::drained() const {
  auto stopped = [](const RunningSource& r) { return r.source->stopped(); };
  return std::all_of(sources_.begin(), sources_.end(), stopped) &&
         std::all_of(retiring_.begin(), retiring_.end(), stopped) && !fanout_.pending() &&
         !fanout_.answering();
}

void Bridge::afterService() {
  fanout_.flush();
  // Subscriptions a reload stopped: freed once their connection is gone.
  std::erase_if(retiring_, [this](const RunningSource& r) {
    if (!r.source->stopped()) return false;
    logStats(*r.source);
    return true;
  });
  // Only what left every queue may become the checkpoint on disk: a line still
  // queued when the process ends is replayed after a restart, never skipped.
  if (!fanout_.pending()) checkpoints_.drained();
  if (shuttingDown_ && drained()) {
    loop_->stop();
    return;
  }
  // stdout closed early (`| head -3`) with nothing else to serve: done.
  const auto& sinks = fanout_.sinks();
  if (!shuttingDown_ && !sinks.empty() && std::all_of(sinks.begin(), sinks.end(), [](const auto& s) {
        auto* out = dynamic_cast<StdoutSink*>(s.get());
        return out && out->stopped();
      }))
    beginShutdown("stdout closed, no other sink");
}

}  // namespace hdb
