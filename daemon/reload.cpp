// Reload (SIGHUP), part two: re-read the config file; if it is invalid, log
// every error and keep running as before; if it is valid, apply what
// planReload (reload_plan.cpp) found changed, and nothing else.
#include <algorithm>
#include <memory>

#include <spdlog/spdlog.h>

#include "bridge.h"
#include "logging.h"
#include "notify.h"
#include "sinks.h"

namespace hdb {

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

void Bridge::reload() {
  notify::reloading();
  spdlog::info("SIGHUP received; reloading {}", config_->file);
  ConfigResult result = loadConfig(config_->file);
  if (!result.config) {
    for (const ConfigError& e : result.errors) spdlog::error("{}", formatError(config_->file, e));
    spdlog::error("reload failed: {} error(s) in {}; still running the previous configuration",
                  result.errors.size(), config_->file);
    notify::ready();
    return;
  }
  auto next = std::make_shared<Config>(std::move(*result.config));
  ReloadPlan plan = planReload(*config_, *next);
  for (const std::string& why : plan.needRestart) spdlog::warn("reload: not applied: {}", why);
  // What cannot change without a restart stays as it runs, so the next
  // reload compares against the truth.
  next->stateDir = config_->stateDir;
  next->metrics = config_->metrics;
  apply(plan, std::move(next));
  spdlog::info("reload done: {}", plan.summary());
  notify::ready();
}

void Bridge::apply(const ReloadPlan& plan, std::shared_ptr<Config> next) {
  if (plan.logLevelChanged) spdlog::set_level(toSpdlog(next->logLevel));

  // Subscriptions first: each stopped one closes politely (1001) and stays in
  // retiring_ until its connection is gone (afterService frees it).
  for (auto it = sources_.begin(); it != sources_.end();) {
    if (!contains(plan.stopSources, it->key)) {
      ++it;
      continue;
    }
    spdlog::info("{}: stopping its subscription (reload)", it->source->name());
    it->source->shutdown();
    retiring_.push_back(std::move(*it));
    it = sources_.erase(it);
  }

  // Sinks: removed ones go before new ones come, so a path can move from one
  // sink to another. A sink that cannot be created is left out of the running
  // config, so the next reload tries it again.
  for (const std::string& name : plan.removeSinks) fanout_.remove(name);
  for (const std::string& name : plan.replaceSinks) fanout_.remove(name);
  std::vector<std::string> failed;
  for (const SinkConfig& sink : next->sinks) {
    if (!contains(plan.addSinks, sink.name) && !contains(plan.replaceSinks, sink.name)) continue;
    try {
      fanout_.add(makeSinkFor(sink));
      spdlog::info("sink '{}': {} (reload)", sink.name, contains(plan.addSinks, sink.name) ? "added" : "recreated");
    } catch (const std::exception& e) {
      spdlog::error("reload: {}; this sink is not running (fix it and reload again)", e.what());
      failed.push_back(sink.name);
    }
  }
  std::erase_if(next->sinks, [&](const SinkConfig& s) { return contains(failed, s.name); });
  for (const SinkConfig& sink : next->sinks) {
    if (!contains(plan.refilterSinks, sink.name)) continue;
    if (Sink* running = fanout_.find(sink.name)) running->refilter(sink);
    spdlog::info("sink '{}': tables/ops/format changed; its consumers stay connected (reload)", sink.name);
  }
  if (!plan.refilterSinks.empty()) fanout_.rerouted();

  // A server whose client vhost cannot be made (its tls.ca_file) keeps its
  // tables out of the running config, like a sink that failed.
  std::vector<std::string> badServers;
  for (const auto& [key, spec] : sourcesOf(*next)) {
    if (!contains(plan.startSources, key)) continue;
    try {
      loop_->ensureClientVhost(*spec.server);
    } catch (const std::exception& e) {
      spdlog::error("reload: {}; its tables are not subscribed (fix it and reload again)", e.what());
      badServers.push_back(spec.server->name);
    }
  }
  std::erase_if(next->tables, [&](const TableConfig& t) { return contains(badServers, t.server); });

  config_ = std::move(next);
  if (plan.checkpointIntervalChanged) scheduleCheckpoint();

  for (const auto& [key, spec] : sourcesOf(*config_)) {
    if (!contains(plan.startSources, key)) continue;
    addSource(key, spec);
    sources_.back().source->start();
  }
}

}  // namespace hdb
