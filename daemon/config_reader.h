// Private to the config loader (config_load.cpp): walking a yaml-cpp tree
// while keeping each value's key path and position, so every check can report
// FILE:LINE:COL: key.path: reason and keep going.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.h"

namespace hdb::config_detail {

// A YAML value with its key path (servers.local.url, tables[0].server) and the
// place to point at. An empty value is pointed at through its key, because
// yaml-cpp marks it at the next token, often on a later line.
struct Value {
  YAML::Node node;
  std::string path;
  YAML::Mark mark;
};

using Present = std::map<std::string, Value>;  // the keys a map gave, by name

template <class E>
struct Choice {
  const char* name;
  E value;
};

std::string itemPath(const std::string& list, size_t index);
// Quotes a value for a message, shortened and on one line. Never for a password.
std::string quote(const std::string& text);
// The key among `names` closest to a misspelt one, if any is close.
std::optional<std::string> closestName(const std::string& name, const std::vector<std::string>& names);
// Whole-file read and readability check; on failure the strerror text.
std::optional<std::string> readFile(const std::string& path, std::string& out);
std::optional<std::string> checkReadable(const std::string& path);
// Value parsers (config_values.cpp): "4194304", "64KiB", "4 MiB", "1GiB"; "0660" or "660".
std::optional<size_t> parseSize(const std::string& text);
std::optional<unsigned> parseMode(const std::string& text);
// "500ms", "30s", "5m", "2h", "3d" (a number and a unit, no unit = error).
std::optional<std::chrono::milliseconds> parseDuration(const std::string& text);
// Replaces ${NAME} by the environment variable (error when unset or empty) and
// ${NAME:-default} by it or the default; on failure the reason.
std::optional<std::string> expandEnv(const std::string& text, std::string& out);

// Knows where errors go and where relative paths start. Each typed read
// reports a wrong value itself and then leaves its target untouched.
class Reader {
 public:
  Reader(std::vector<ConfigError>& errors, std::filesystem::path baseDir)
      : errors_(errors), baseDir_(std::move(baseDir)) {}

  void error(const YAML::Mark& mark, const std::string& path, std::string reason);
  void error(const Value& at, std::string reason) { error(at.mark, at.path, std::move(reason)); }

  bool expect(const Value& v, YAML::NodeType::value type, const char* what);
  // A non-empty scalar. Safe for secrets: no message repeats the value.
  bool string(const Value& v, std::string& out);
  bool boolean(const Value& v, bool& out);
  template <class E, size_t N>
  bool choice(const Value& v, const char* what, const Choice<E> (&options)[N], E& out);

  // Calls fn(key, key's mark, value) for each entry of a map, reporting keys
  // that are not strings or come twice (yaml-cpp keeps both of a duplicate).
  using EntryFn = std::function<void(const std::string&, const YAML::Mark&, const Value&)>;
  void entries(const Value& map, const EntryFn& fn);
  void items(const Value& list, const std::function<void(const Value&)>& fn);

  // A path from the config, relative to the config file's directory.
  std::string resolve(const std::string& path) const;

 private:
  std::vector<ConfigError>& errors_;
  std::filesystem::path baseDir_;
};

template <class E, size_t N>
bool Reader::choice(const Value& v, const char* what, const Choice<E> (&options)[N], E& out) {
  std::string name;
  if (!string(v, name)) return false;
  std::string expected;
  for (size_t i = 0; i < N; ++i) {
    if (name == options[i].name) {
      out = options[i].value;
      return true;
    }
    expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(options[i].name);
  }
  error(v, std::string("unknown ") + what + " " + quote(name) + "; expected " + expected);
  return false;
}

// One known key of a map: its name, whether it must be given, and how to read it.
template <class T>
struct Key {
  const char* name;
  bool required;
  void (*read)(Reader&, const Value&, T&);
};

// Reads a map through its table of known keys: unknown keys, duplicates and
// missing required keys are errors. Returns the keys given, for checks that
// involve several of them.
template <class T, size_t N>
Present readKeys(Reader& r, const Value& map, const Key<T> (&keys)[N], T& out) {
  Present present;
  if (!r.expect(map, YAML::NodeType::Map, "a map")) return present;
  r.entries(map, [&](const std::string& name, const YAML::Mark& keyMark, const Value& value) {
    const Key<T>* key = std::find_if(keys, keys + N, [&](const Key<T>& k) { return name == k.name; });
    if (key == keys + N) {
      std::vector<std::string> names;
      for (const Key<T>& k : keys) names.push_back(k.name);
      auto guess = closestName(name, names);
      r.error(keyMark, value.path, "unknown key" + (guess ? "; did you mean '" + *guess + "'?" : std::string()));
      return;
    }
    present.emplace(name, value);
    key->read(r, value, out);
  });
  for (const Key<T>& k : keys)
    if (k.required && !present.count(k.name)) r.error(map, std::string("missing required key '") + k.name + "'");
  return present;
}

// ---- sinks (config_sinks.cpp) ----

struct SinkDraft {
  SinkConfig cfg;
  Value item;
  Present present;
  bool typed = false;            // `type` was read
  std::vector<Value> tableRefs;  // the `tables:` entries, checked once all tables are known
  std::vector<Value> opRefs;     // the `ops:` entries, checked once the type is known
};

// One entry of `sinks:`, with the checks that need only the entry itself.
void readSink(Reader& r, const Value& item, SinkDraft& out);
// Names and paths are unique, and a sink's tables are among `tables` (checked
// only when `tablesKnown`: every configured table has its database.table); an
// ingest sink's among `writable`.
void checkSinks(Reader& r, const std::vector<SinkDraft>& sinks, const std::set<std::string>& tables,
                const std::set<std::string>& writable, bool tablesKnown);

// ---- metrics (config_metrics.cpp) ----

// The `metrics:` map: listen (IP:PORT or an absolute Unix socket path) and mode.
void readMetrics(Reader& r, const Value& v, MetricsConfig& out);

}  // namespace hdb::config_detail
