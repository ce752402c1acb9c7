// Reload planning (daemon/reload_plan.cpp): exactly what a changed config
// touches, and nothing else.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config.h"
#include "reload_plan.h"

namespace {

using Names = std::vector<std::string>;

const char* const kBase = R"(servers:
  h4: {protocol: harperdb4, url: ws://127.0.0.1:9926, username: u, password: p}
  h3: {protocol: harperdb3, url: wss://127.0.0.1:12345, username: u, password: p}
tables:
  - {server: h4, database: dev, table: a}
  - {server: h4, database: dev, table: b}
  - {server: h3, schema: dev, table: c}
  - {server: h3, schema: dev, table: d}
sinks:
  - {name: out, type: stdout}
  - {name: s, type: unix, path: /run/s.sock}
)";

hdb::Config parse(const std::string& text) {
  hdb::ConfigResult r = hdb::parseConfig(text, "t.yaml");
  std::string errors;
  for (const auto& e : r.errors) errors += hdb::formatError("t.yaml", e) + "\n";
  INFO(errors);
  REQUIRE(r.config.has_value());
  return *r.config;
}

// kBase with `from` replaced by `to` (once; it must be there).
std::string with(const std::string& from, const std::string& to) {
  std::string text = kBase;
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

hdb::ReloadPlan plan(const std::string& next) { return hdb::planReload(parse(kBase), parse(next)); }

}  // namespace

TEST_CASE("reload plan: the same config changes nothing") {
  hdb::ReloadPlan p = plan(kBase);
  CHECK(p.empty());
  CHECK(p.needRestart.empty());
  CHECK(p.summary() == "nothing changed");
}

TEST_CASE("reload plan: subscriptions are keyed per HarperDB 4 table and per HarperDB 3 server") {
  auto sources = hdb::sourcesOf(parse(kBase));
  Names keys;
  for (const auto& [key, spec] : sources) keys.push_back(key);
  CHECK(keys == Names{"h3", "h4/dev.a", "h4/dev.b"});
  CHECK(sources.at("h3").tables.size() == 2);
}

TEST_CASE("reload plan: adding or removing a HarperDB 4 table touches only that table") {
  hdb::ReloadPlan added = plan(with("  - {server: h3, schema: dev, table: c}",
                                    "  - {server: h4, database: dev, table: e}\n  - {server: h3, schema: dev, table: c}"));
  CHECK(added.startSources == Names{"h4/dev.e"});
  CHECK(added.stopSources.empty());
  hdb::ReloadPlan removed = plan(with("  - {server: h4, database: dev, table: b}\n", ""));
  CHECK(removed.stopSources == Names{"h4/dev.b"});
  CHECK(removed.startSources.empty());
  CHECK(removed.removeSinks.empty());
}

TEST_CASE("reload plan: a changed table option restarts that table's subscription") {
  hdb::ReloadPlan p = plan(with("table: a}", "table: a, start: snapshot}"));
  CHECK(p.stopSources == Names{"h4/dev.a"});
  CHECK(p.startSources == Names{"h4/dev.a"});
}

TEST_CASE("reload plan: a changed server restarts all of its tables and only those") {
  hdb::ReloadPlan p = plan(with("password: p}\n  h3", "password: q}\n  h3"));
  CHECK(p.stopSources == Names{"h4/dev.a", "h4/dev.b"});
  CHECK(p.startSources == Names{"h4/dev.a", "h4/dev.b"});
}

TEST_CASE("reload plan: a HarperDB 3 server's tables change its one subscription") {
  hdb::ReloadPlan p = plan(with("  - {server: h3, schema: dev, table: d}\n", ""));
  CHECK(p.stopSources == Names{"h3"});
  CHECK(p.startSources == Names{"h3"});
}

TEST_CASE("reload plan: sinks: tables/ops/format in place, anything else recreates") {
  hdb::ReloadPlan filters = plan(with("{name: s, type: unix, path: /run/s.sock}",
                                      "{name: s, type: unix, path: /run/s.sock, ops: [delete], format: record, "
                                      "tables: [dev.a]}"));
  CHECK(filters.refilterSinks == Names{"s"});
  CHECK(filters.replaceSinks.empty());
  CHECK(filters.stopSources.empty());

  hdb::ReloadPlan mode = plan(with("path: /run/s.sock}", "path: /run/s.sock, mode: \"0600\"}"));
  CHECK(mode.replaceSinks == Names{"s"});
  CHECK(mode.refilterSinks.empty());

  hdb::ReloadPlan renamed = plan(with("{name: s,", "{name: t,"));
  CHECK(renamed.removeSinks == Names{"s"});
  CHECK(renamed.addSinks == Names{"t"});
  CHECK(renamed.summary() == "sinks removed: s; sinks added: t");
}

TEST_CASE("reload plan: log level and checkpoint interval apply; state_dir needs a restart") {
  hdb::ReloadPlan p = plan(std::string("log: {level: debug}\ncheckpoint_interval: 5s\nstate_dir: /tmp/x\n") + kBase);
  CHECK(p.logLevelChanged);
  CHECK(p.checkpointIntervalChanged);
  REQUIRE(p.needRestart.size() == 1);
  CHECK(p.needRestart[0].rfind("state_dir: ", 0) == 0);
  CHECK(p.stopSources.empty());
  hdb::ReloadPlan m = plan(std::string("metrics: {listen: 127.0.0.1:9464}\n") + kBase);
  REQUIRE(m.needRestart.size() == 1);
  CHECK(m.needRestart[0].rfind("metrics: ", 0) == 0);
  CHECK(m.empty());
}
