#include "reload_plan.h"

#include <spdlog/fmt/fmt.h>

namespace hdb {

bool SourceSpec::operator==(const SourceSpec& other) const {
  if (*server != *other.server || tables.size() != other.tables.size()) return false;
  for (size_t i = 0; i < tables.size(); ++i)
    if (*tables[i] != *other.tables[i]) return false;
  return true;
}

std::map<std::string, SourceSpec> sourcesOf(const Config& config) {
  std::map<std::string, SourceSpec> out;
  for (const auto& table : config.tables) {
    const ServerConfig& server = config.servers.at(table.server);
    std::string key = server.name;
    if (server.protocol == Protocol::HarperDB4) key += "/" + table.key();
    SourceSpec& spec = out[key];
    spec.server = &server;
    spec.tables.push_back(&table);
  }
  return out;
}

namespace {

// Everything of a sink but its routing and format, which change in place.
bool sameButFilters(const SinkConfig& a, SinkConfig b) {
  b.tables = a.tables;
  b.ops = a.ops;
  b.format = a.format;
  return a == b;
}

const SinkConfig* findSink(const Config& config, const std::string& name) {
  for (const auto& sink : config.sinks)
    if (sink.name == name) return &sink;
  return nullptr;
}

}  // namespace

ReloadPlan planReload(const Config& running, const Config& next) {
  ReloadPlan plan;
  auto before = sourcesOf(running);
  auto after = sourcesOf(next);
  for (const auto& [key, spec] : before) {
    auto it = after.find(key);
    if (it == after.end() || !(it->second == spec)) plan.stopSources.push_back(key);
  }
  for (const auto& [key, spec] : after) {
    auto it = before.find(key);
    if (it == before.end() || !(it->second == spec)) plan.startSources.push_back(key);
  }

  for (const auto& sink : running.sinks) {
    const SinkConfig* now = findSink(next, sink.name);
    if (!now) plan.removeSinks.push_back(sink.name);
    else if (!sameButFilters(sink, *now)) plan.replaceSinks.push_back(sink.name);
    else if (!(sink == *now)) plan.refilterSinks.push_back(sink.name);
  }
  for (const auto& sink : next.sinks)
    if (!findSink(running, sink.name)) plan.addSinks.push_back(sink.name);

  plan.logLevelChanged = running.logLevel != next.logLevel;
  plan.checkpointIntervalChanged = running.checkpointInterval != next.checkpointInterval;
  if (running.stateDir != next.stateDir)
    plan.needRestart.push_back("state_dir: the running instance holds the lock on " + running.stateDir +
                               "; the new directory takes effect after a restart");
  if (running.metrics != next.metrics)
    plan.needRestart.push_back("metrics: the endpoint keeps its address; the new one takes effect after a restart");
  return plan;
}

bool ReloadPlan::empty() const {
  return stopSources.empty() && startSources.empty() && removeSinks.empty() && replaceSinks.empty() &&
         refilterSinks.empty() && addSinks.empty() && !logLevelChanged && !checkpointIntervalChanged;
}

std::string ReloadPlan::summary() const {
  std::string out;
  auto list = [&out](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    if (!out.empty()) out.append("; ");
    out.append(what).append(": ");
    for (size_t i = 0; i < names.size(); ++i) out.append(i ? ", " : "").append(names[i]);
  };
  list("subscriptions stopped", stopSources);
  list("subscriptions started", startSources);
  list("sinks removed", removeSinks);
  list("sinks recreated", replaceSinks);
  list("sinks refiltered", refilterSinks);
  list("sinks added", addSinks);
  if (logLevelChanged) out.append(out.empty() ? "" : "; ").append("log level changed");
  if (checkpointIntervalChanged) out.append(out.empty() ? "" : "; ").append("checkpoint_interval changed");
  return out.empty() ? "nothing changed" : out;
}

}  // namespace hdb
