// Reload (SIGHUP), part one: what a new, valid config changes compared with the
// running one, decided without touching anything. bridge.cpp applies the plan,
// so whatever the plan does not name keeps running untouched: its upstream
// subscription stays connected and its consumers stay attached.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config.h"

namespace hdb {

// One upstream subscription: a HarperDB 4 table, or every table of a HarperDB 3
// server (which carries them all on one connection).
struct SourceSpec {
  const ServerConfig* server = nullptr;
  std::vector<const TableConfig*> tables;  // in config order
  bool operator==(const SourceSpec& other) const;
};

// Every subscription a config asks for, by key: "server/db.table" for
// HarperDB 4, "server" for HarperDB 3. Pointers point into `config`.
std::map<std::string, SourceSpec> sourcesOf(const Config& config);

struct ReloadPlan {
  std::vector<std::string> stopSources;   // gone, or changed (then also in startSources)
  std::vector<std::string> startSources;  // new, or changed
  std::vector<std::string> removeSinks;   // gone from the config
  std::vector<std::string> replaceSinks;  // changed beyond tables/ops/format: recreated, consumers reconnect
  std::vector<std::string> refilterSinks; // only tables/ops/format changed: consumers stay
  std::vector<std::string> addSinks;      // new
  bool logLevelChanged = false;
  bool checkpointIntervalChanged = false;
  // Settings a reload cannot apply, each as "key: why"; the rest still applies.
  std::vector<std::string> needRestart;

  bool empty() const;
  // "2 table(s) restarted, sink 'x' added, ..." for the log.
  std::string summary() const;
};

ReloadPlan planReload(const Config& running, const Config& next);

}  // namespace hdb
