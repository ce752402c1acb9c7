// Reads the YAML config into the plain structs of config.h and validates it in
// the same pass, collecting every error with its line, column and key path.
//
// Each YAML map is read through a table of its known keys (kRootKeys,
// kServerKeys, ...): a new key is one line in its table plus its field in
// config.h. Checks that span sections (a table's server, a sink's tables, two
// sinks on one path) run once everything is read. Password values never reach
// a message: their keys are read with Reader::string, which never repeats a value.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>

#include "config.h"
#include "config_reader.h"

namespace hdb {
namespace {

using namespace config_detail;
namespace fs = std::filesystem;

// A duration key: "500ms", "30s", "5m", "2h", "3d", at least `min`.
void readDuration(Reader& r, const Value& v, std::chrono::milliseconds min, std::chrono::milliseconds& out) {
  std::string text;
  if (!r.string(v, text)) return;
  auto d = parseDuration(text);
  if (!d) return r.error(v, "expected a duration like '500ms', '30s', '5m', '2h' or '3d', found " + quote(text));
  if (*d < min) return r.error(v, "must be at least " + std::to_string(min.count()) + "ms");
  out = *d;
}

// ---- log ----

const Choice<LogLevel> kLogLevels[] = {{"trace", LogLevel::Trace}, {"debug", LogLevel::Debug},
                                       {"info", LogLevel::Info},   {"warn", LogLevel::Warn},
                                       {"error", LogLevel::Error}};

const Key<Config> kLogKeys[] = {
    {"level", false, [](Reader& r, const Value& v, Config& c) { r.choice(v, "log level", kLogLevels, c.logLevel); }},
};

// ---- servers ----

const Choice<Protocol> kProtocols[] = {{"harperdb4", Protocol::HarperDB4}, {"harperdb3", Protocol::HarperDB3}};

// bind_address is an address of this host, not a name: binding happens on the loop.
bool isIpLiteral(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// The password keys are kept apart until exactly one of them is known to be given.
struct ServerDraft {
  ServerConfig cfg;
  std::string password, passwordFile, passwordEnv;
};

const char* const kPasswordKeys[] = {"password", "password_file", "password_env"};

const Key<TlsConfig> kTlsKeys[] = {
    {"verify", false, [](Reader& r, const Value& v, TlsConfig& t) { r.boolean(v, t.verify); }},
    {"ca_file", false,
     [](Reader& r, const Value& v, TlsConfig& t) {
       std::string file;
       if (!r.string(v, file)) return;
       t.caFile = r.resolve(file);
       if (auto why = checkReadable(t.caFile)) r.error(v, "cannot read " + quote(t.caFile) + ": " + *why);
     }},
};

const Key<ServerDraft> kServerKeys[] = {
    {"protocol", true,
     [](Reader& r, const Value& v, ServerDraft& s) { r.choice(v, "protocol", kProtocols, s.cfg.protocol); }},
    {"url", true,
     [](Reader& r, const Value& v, ServerDraft& s) {
       if (!r.string(v, s.cfg.urlText)) return;
       if (auto why = parseUrl(s.cfg.urlText, s.cfg.url)) r.error(v, *why);
     }},
    {"username", true, [](Reader& r, const Value& v, ServerDraft& s) { r.string(v, s.cfg.username); }},
    {"bind_address", false,
     [](Reader& r, const Value& v, ServerDraft& s) {
       std::string ip;
       if (!r.string(v, ip)) return;
       if (!isIpLiteral(ip)) return r.error(v, "expected an IPv4 or IPv6 address to connect from, found " + quote(ip));
       s.cfg.bindAddress = ip;
     }},
    {"password", false, [](Reader& r, const Value& v, ServerDraft& s) { r.string(v, s.password); }},
    {"password_file", false, [](Reader& r, const Value& v, ServerDraft& s) { r.string(v, s.passwordFile); }},
    {"password_env", false, [](Reader& r, const Value& v, ServerDraft& s) { r.string(v, s.passwordEnv); }},
    {"tls", false, [](Reader& r, const Value& v, ServerDraft& s) { readKeys(r, v, kTlsKeys, s.cfg.tls); }},
    {"max_message_bytes", false,
     [](Reader& r, const Value& v, ServerDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       auto bytes = parseSize(text);
       if (!bytes) return r.error(v, "expected a number of bytes or a size like '64KiB' or '16MiB', found " + quote(text));
       if (*bytes < kMinMaxMessageBytes || *bytes > kMaxMaxMessageBytes)
         return r.error(v, "must be from 1KiB to 1GiB, found " + quote(text));
       s.cfg.maxMessageBytes = *bytes;
     }},
    {"operations_url", false,
     [](Reader& r, const Value& v, ServerDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       // parseUrl knows ws and wss; http and https differ only in their names.
       std::string as = text.starts_with("https://") ? "wss://" + text.substr(8)
                      : text.starts_with("http://")  ? "ws://" + text.substr(7)
                                                     : std::string();
       if (as.empty()) return r.error(v, "expected an http:// or https:// URL");
       Url url;
       if (auto why = parseUrl(as, url)) return r.error(v, *why);
       s.cfg.operationsUrl = url;
     }},
    {"liveness_timeout", false,
     [](Reader& r, const Value& v, ServerDraft& s) {
       readDuration(r, v, std::chrono::seconds(2), s.cfg.livenessTimeout);
     }},
    {"write_timeout", false,
     [](Reader& r, const Value& v, ServerDraft& s) {
       readDuration(r, v, std::chrono::seconds(1), s.cfg.writeTimeout);
     }},
    {"history_retention", false,
     [](Reader& r, const Value& v, ServerDraft& s) {
       readDuration(r, v, std::chrono::minutes(1), s.cfg.historyRetention);
     }},
};

// Sets cfg.password from the one password key given. Messages name the key, never its value.
void resolvePassword(Reader& r, const Value& server, const Present& present, ServerDraft& s) {
  auto given = std::count_if(std::begin(kPasswordKeys), std::end(kPasswordKeys),
                             [&](const char* key) { return present.count(key) > 0; });
  if (given == 0) return r.error(server, "missing password: give password, password_file or password_env");
  if (given > 1) return r.error(server, "give only one of password, password_file and password_env");
  if (present.count("password")) {
    s.cfg.password = s.password;
  } else if (present.count("password_file") && !s.passwordFile.empty()) {
    const Value& at = present.at("password_file");
    std::string file, text;
    if (auto why = expandEnv(s.passwordFile, file)) return r.error(at, *why);
    if (auto why = readFile(r.resolve(file), text)) return r.error(at, "cannot read: " + *why);
    if (text.ends_with('\n')) text.pop_back();
    if (text.ends_with('\r')) text.pop_back();
    if (text.empty()) return r.error(at, "the file is empty");
    s.cfg.password = std::move(text);
  } else if (present.count("password_env") && !s.passwordEnv.empty()) {
    const Value& at = present.at("password_env");
    const char* value = std::getenv(s.passwordEnv.c_str());
    if (value == nullptr) return r.error(at, "the environment variable is not set");
    if (*value == '\0') return r.error(at, "the environment variable is empty");
    s.cfg.password = value;
  }
}

// ---- tables ----

// A database or table name: it becomes a URL path segment and half of "db.table".
void readName(Reader& r, const Value& v, std::string& out) {
  std::string name;
  if (!r.string(v, name)) return;
  if (name.find_first_of("./") != std::string::npos) return r.error(v, "must not contain '.' or '/': " + quote(name));
  out = std::move(name);
}

const Choice<StartMode> kStartModes[] = {{"live", StartMode::Live}, {"snapshot", StartMode::Snapshot}};

const Key<TableConfig> kHistoryKeys[] = {
    {"history", true,
     [](Reader& r, const Value& v, TableConfig& t) {
       t.start = StartMode::History;
       readDuration(r, v, std::chrono::seconds(1), t.history);
     }},
};

// start: live | snapshot | {history: DURATION}
void readStart(Reader& r, const Value& v, TableConfig& t) {
  if (v.node.IsMap()) {
    readKeys(r, v, kHistoryKeys, t);
    return;
  }
  r.choice(v, "start", kStartModes, t.start);
}

const Key<TableConfig> kTableKeys[] = {
    {"server", true, [](Reader& r, const Value& v, TableConfig& t) { r.string(v, t.server); }},
    {"primary_key", false, [](Reader& r, const Value& v, TableConfig& t) { r.string(v, t.primaryKey); }},
    {"database", false, [](Reader& r, const Value& v, TableConfig& t) { readName(r, v, t.database); }},
    {"schema", false, [](Reader& r, const Value& v, TableConfig& t) { readName(r, v, t.database); }},  // HarperDB 3 word
    {"table", true, [](Reader& r, const Value& v, TableConfig& t) { readName(r, v, t.table); }},
    {"snapshot", false,
     [](Reader& r, const Value& v, TableConfig& t) {
       bool snapshot = false;
       if (r.boolean(v, snapshot) && snapshot) t.start = StartMode::Snapshot;
     }},
    {"start", false, readStart},
    {"writable", false, [](Reader& r, const Value& v, TableConfig& t) { r.boolean(v, t.writable); }},
};

struct TableDraft {
  TableConfig cfg;
  Value item;
  Present present;
};

// ---- the whole file ----

struct Draft {
  Config cfg;
  bool serversRead = false;  // the server names are known, so table references can be checked
  std::vector<TableDraft> tables;
  std::vector<SinkDraft> sinks;
};

// servers, tables and sinks each need at least one entry; an empty value counts as none.
bool nonEmpty(Reader& r, const Value& v, YAML::NodeType::value type, const char* what, const char* entry) {
  if (v.node.IsNull() || ((v.node.IsMap() || v.node.IsSequence()) && v.node.size() == 0)) {
    r.error(v, std::string("at least one ") + entry + " is required");
    return false;
  }
  return r.expect(v, type, what);
}

void readServers(Reader& r, const Value& v, Draft& d) {
  if (!nonEmpty(r, v, YAML::NodeType::Map, "a map of server names", "server")) return;
  d.serversRead = true;
  r.entries(v, [&](const std::string& name, const YAML::Mark&, const Value& server) {
    ServerDraft s;
    s.cfg.name = name;
    Present present = readKeys(r, server, kServerKeys, s);
    if (server.node.IsMap()) resolvePassword(r, server, present, s);
    if (s.cfg.protocol == Protocol::HarperDB3 && present.count("url") && !s.cfg.url.host.empty() && !s.cfg.url.tls)
      r.error(present.at("url"), "harperdb3 needs wss://: HarperDB 3 clustering always uses TLS");
    d.cfg.servers[name] = std::move(s.cfg);
  });
}

void readTables(Reader& r, const Value& v, Draft& d) {
  if (!nonEmpty(r, v, YAML::NodeType::Sequence, "a list of tables", "table")) return;
  r.items(v, [&](const Value& item) {
    TableDraft t{{}, item, {}};
    t.present = readKeys(r, item, kTableKeys, t.cfg);
    if (t.present.count("snapshot") && t.present.count("start"))
      r.error(t.present.at("snapshot"), "snapshot: true is another way to say start: snapshot; give only start");
    bool database = t.present.count("database"), schema = t.present.count("schema");
    if (database && schema)
      r.error(t.present.at("schema"), "schema is another name for database; give only one of them");
    else if (!database && !schema && item.node.IsMap())
      r.error(item, "missing required key 'database'");
    d.tables.push_back(std::move(t));
  });
}

void readSinks(Reader& r, const Value& v, Draft& d) {
  if (!nonEmpty(r, v, YAML::NodeType::Sequence, "a list of sinks", "sink")) return;
  r.items(v, [&](const Value& item) {
    SinkDraft s;
    readSink(r, item, s);
    d.sinks.push_back(std::move(s));
  });
}

const Key<Draft> kRootKeys[] = {
    {"log", false, [](Reader& r, const Value& v, Draft& d) { readKeys(r, v, kLogKeys, d.cfg); }},
    {"state_dir", false,
     [](Reader& r, const Value& v, Draft& d) {
       std::string dir;
       if (r.string(v, dir)) d.cfg.stateDir = r.resolve(dir);
     }},
    {"checkpoint_interval", false,
     [](Reader& r, const Value& v, Draft& d) {
       readDuration(r, v, std::chrono::milliseconds(10), d.cfg.checkpointInterval);
     }},
    {"servers", true, readServers},
    {"tables", true, readTables},
    {"sinks", true, readSinks},
    {"metrics", false,
     [](Reader& r, const Value& v, Draft& d) {
       MetricsConfig m;
       readMetrics(r, v, m);
       d.cfg.metrics = std::move(m);
     }},
};

// Tables name configured servers, each server's database.table comes once, and
// only one server's copy of a database.table may be writable (an ingest command
// names a database and a table, not a server).
void checkTables(Reader& r, const Draft& d) {
  std::map<std::pair<std::string, std::string>, size_t> seen;
  std::map<std::string, size_t> writable;
  for (size_t i = 0; i < d.tables.size(); ++i) {
    const TableDraft& t = d.tables[i];
    if (d.serversRead && !t.cfg.server.empty() && !d.cfg.servers.count(t.cfg.server))
      r.error(t.present.at("server"), "unknown server " + quote(t.cfg.server));
    auto server = d.cfg.servers.find(t.cfg.server);
    if (t.present.count("primary_key") && server != d.cfg.servers.end() &&
        server->second.protocol != Protocol::HarperDB3)
      r.error(t.present.at("primary_key"), "only harperdb3 tables take primary_key (HarperDB 4 sends the key itself)");
    if (server != d.cfg.servers.end() && server->second.protocol == Protocol::HarperDB3 &&
        t.cfg.start == StartMode::Snapshot) {
      const char* key = t.present.count("start") ? "start" : "snapshot";
      r.error(t.present.at(key), "harperdb3 tables cannot start with a snapshot (HarperDB 3's clustering feed has "
                                 "none); use start: live or start: {history: DURATION}");
    }
    if (t.cfg.server.empty() || t.cfg.database.empty() || t.cfg.table.empty()) continue;
    auto [first, fresh] = seen.emplace(std::pair{t.cfg.server, t.cfg.key()}, i);
    if (!fresh)
      r.error(t.item, t.cfg.key() + " on server " + quote(t.cfg.server) + " is already configured at " +
                          itemPath("tables", first->second));
    if (!t.cfg.writable) continue;
    auto [other, alone] = writable.emplace(t.cfg.key(), i);
    if (!alone)
      r.error(t.present.at("writable"), t.cfg.key() + " is already writable at " + itemPath("tables", other->second) +
                                            " (server " + quote(d.tables[other->second].cfg.server) +
                                            "); an ingest command names no server, so only one may be");
  }
}

// Sink names and paths are unique, and a sink's tables are configured tables.
void checkSinks(Reader& r, const Draft& d) {
  std::set<std::string> tables, writable;
  bool tablesKnown = !d.tables.empty();  // every table has its database.table, so a missing one is a real error
  for (const TableDraft& t : d.tables) {
    tablesKnown = tablesKnown && !t.cfg.database.empty() && !t.cfg.table.empty();
    tables.insert(t.cfg.key());
    if (t.cfg.writable) writable.insert(t.cfg.key());
  }
  checkSinks(r, d.sinks, tables, writable, tablesKnown);
}

// The directory relative paths in the config start from, made absolute so a
// later chdir does not change what they mean.
fs::path baseDirOf(const std::string& file) {
  fs::path dir = fs::path(file).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::path absolute = fs::absolute(dir, ec);
  return ec ? dir : absolute.lexically_normal();
}

// See Config::stateDir.
std::string defaultStateDir() {
  if (const char* systemd = std::getenv("STATE_DIRECTORY"); systemd && *systemd) {
    std::string first(systemd);
    return first.substr(0, first.find(':'));
  }
  if (::geteuid() == 0) return "/var/lib/hdb-bridge";
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::string(xdg) + "/hdb-bridge";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/state/hdb-bridge";
}

ConfigError errorAt(const YAML::Mark& mark, std::string path, std::string reason) {
  if (mark.is_null()) return {0, 0, std::move(path), std::move(reason)};
  return {mark.line + 1, mark.column + 1, std::move(path), std::move(reason)};
}

// Notes where a document starts and where its first node is; ignores everything else.
struct DocumentStart : YAML::EventHandler {
  std::optional<YAML::Mark> mark;  // the document (its "---", if any)
  std::optional<YAML::Mark> node;  // its root node
  void OnDocumentStart(const YAML::Mark& m) override { mark = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { root(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { root(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { root(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    root(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    root(m);
  }
  void OnMapEnd() override {}
  void root(const YAML::Mark& m) {
    if (!node) node = m;
  }
};

// The first document, and where a second one starts, if any.
struct Documents {
  std::optional<YAML::Node> first;
  std::optional<YAML::Mark> second;
};


// Not YAML::LoadAll: in yaml-cpp 0.7 it never returns on a stray ',' at the top of a
// document (the token is never consumed; found by fuzz_config), so documents are
// counted by a parser that stops after two, or when a document does not move on.
Documents loadDocuments(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStart first, second;
  Documents documents;
  if (!parser.HandleNextDocument(first)) return documents;
  documents.first = YAML::Load(text);
  if (!parser.HandleNextDocument(second)) return documents;
  YAML::Mark at = second.node.value_or(second.mark.value_or(YAML::Mark::null_mark()));
  if (first.mark && second.mark && first.mark->pos == second.mark->pos)
    throw YAML::ParserException(at, "unexpected character at the top of the document");
  documents.second = at;
  return documents;
}

}  // namespace

ConfigResult parseConfig(const std::string& text, const std::string& file) {
  ConfigResult result;
  Documents documents;
  try {
    documents = loadDocuments(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp quotes the offending character: a control character (even a line break)
    // from the file would end up raw in the one-line message.
    std::string reason = e.msg;
    std::replace_if(reason.begin(), reason.end(), [](char c) { return (c >= 0 && c < 0x20) || c == 0x7f; }, '?');
    result.errors.push_back(errorAt(e.mark, "(yaml)", reason));
    return result;
  }
  if (!documents.first) {
    result.errors.push_back({1, 1, "(root)", "the file is empty; expected a map with servers, tables and sinks"});
    return result;
  }
  if (documents.second)
    result.errors.push_back(errorAt(*documents.second, "(yaml)",
                                    "a second YAML document starts here; a config is one document"));

  Reader r(result.errors, baseDirOf(file));
  Draft d;
  const YAML::Node& root = *documents.first;
  readKeys(r, Value{root, "", root.Mark()}, kRootKeys, d);
  checkTables(r, d);
  checkSinks(r, d);

  std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair{a.line, a.column} < std::pair{b.line, b.column};
  });
  if (!result.errors.empty()) return result;
  d.cfg.file = file;
  if (d.cfg.stateDir.empty()) d.cfg.stateDir = defaultStateDir();
  for (TableDraft& t : d.tables) d.cfg.tables.push_back(std::move(t.cfg));
  for (SinkDraft& s : d.sinks) d.cfg.sinks.push_back(std::move(s.cfg));
  result.config = std::move(d.cfg);
  return result;
}

ConfigResult loadConfig(const std::string& file) {
  std::string text;
  if (auto why = readFile(file, text)) {
    ConfigResult result;
    result.errors.push_back({0, 0, "", "cannot read: " + *why});
    return result;
  }
  return parseConfig(text, file);
}

std::string formatError(const std::string& file, const ConfigError& e) {
  if (e.line == 0) return file + ": " + e.reason;
  // A key path is made of the file's own keys, which may hold any character: one line, no
  // terminal control (found by fuzz_config: a NUL in a key).
  std::string path = e.path;
  std::replace_if(path.begin(), path.end(), [](char c) { return (c >= 0 && c < 0x20) || c == 0x7f; }, '?');
  return file + ":" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + path + ": " + e.reason;
}

}  // namespace hdb
