// Config loading and validation (daemon/config_load.cpp): every error the
// config contract names, with its exact FILE:LINE:COL: key.path: reason line,
// plus the valid shapes and the rule that a password never reaches a message.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config.h"

namespace {

// Every error of a config text, formatted as the daemon prints them, one per line.
std::string errorsOf(const std::string& yaml, const std::string& file = "t.yaml") {
  hdb::ConfigResult result = hdb::parseConfig(yaml, file);
  std::string out;
  for (const hdb::ConfigError& e : result.errors) out += hdb::formatError("t.yaml", e) + "\n";
  if (result.errors.empty() != result.config.has_value()) out += "BUG: config set together with errors\n";
  return out;
}

hdb::Config valid(const std::string& yaml, const std::string& file = "t.yaml") {
  hdb::ConfigResult result = hdb::parseConfig(yaml, file);
  std::string errors;
  for (const hdb::ConfigError& e : result.errors) errors += hdb::formatError(file, e) + "\n";
  INFO(errors);
  REQUIRE(result.config.has_value());
  return *result.config;
}

// A scratch directory for files the config points at; removed with its files.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/hdb-config-test.XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    for (const std::string& f : files_) ::unlink(f.c_str());
    ::rmdir(path_.c_str());
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    files_.push_back(file);
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* expected;  // formatted errors, one per line
};

void checkCases(const std::vector<ErrorCase>& cases) {
  for (const ErrorCase& c : cases) {
    CAPTURE(c.name);
    CHECK(errorsOf(c.yaml) == std::string(c.expected));
  }
}

}  // namespace

TEST_CASE("config: valid minimal config, defaults filled in") {
  hdb::Config c = valid(R"(
servers:
  local: {protocol: harperdb4, url: ws://127.0.0.1:9926, username: admin, password: password}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)");
  CHECK(c.file == "t.yaml");
  CHECK(c.logLevel == hdb::LogLevel::Info);
  REQUIRE(c.servers.size() == 1);
  const hdb::ServerConfig& s = c.servers.at("local");
  CHECK(s.name == "local");
  CHECK(s.protocol == hdb::Protocol::HarperDB4);
  CHECK(s.urlText == "ws://127.0.0.1:9926");
  CHECK(s.url.host == "127.0.0.1");
  CHECK(s.url.port == 9926);
  CHECK(s.url.path == "/");
  CHECK_FALSE(s.url.tls);
  CHECK(s.username == "admin");
  CHECK(s.password == "password");
  CHECK(s.tls.verify);
  CHECK(s.tls.caFile.empty());
  REQUIRE(c.tables.size() == 1);
  CHECK(c.tables[0].server == "local");
  CHECK(c.tables[0].key() == "dev.animals");
  CHECK(c.tables[0].start == hdb::StartMode::Live);
  CHECK_FALSE(c.tables[0].writable);
  CHECK(s.writeTimeout == std::chrono::seconds(10));
  REQUIRE(c.sinks.size() == 1);
  CHECK(c.sinks[0].name == "out");
  CHECK(c.sinks[0].type == hdb::SinkType::Stdout);
  CHECK(c.sinks[0].tables.empty());
}

TEST_CASE("config: valid full config, every key") {
  TempDir dir;
  std::string ca = dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  hdb::Config c = valid(R"(
log: {level: debug}
servers:
  local:
    protocol: harperdb4
    url: ws://127.0.0.1:9926
    username: admin
    password: password
  remote:
    protocol: harperdb3
    url: wss://db.example.com/base
    username: reader
    password: s3cret
    tls: {verify: false, ca_file: ca.pem}
tables:
  - {server: local, database: dev, table: animals, snapshot: true}
  - {server: remote, database: prod, table: orders, snapshot: false}
sinks:
  - {name: out, type: stdout, tables: [prod.orders]}
  - name: animals
    type: unix
    path: /run/hdb-bridge/animals.sock
    tables: [dev.animals, prod.orders]
    queue_bytes: 64KiB
    mode: "0600"
  - {name: raw, type: unix, path: /run/hdb-bridge/raw.sock, queue_bytes: 1000}
)",
                        dir.path() + "/hdb-bridge.yaml");
  CHECK(c.logLevel == hdb::LogLevel::Debug);
  const hdb::ServerConfig& remote = c.servers.at("remote");
  CHECK(remote.protocol == hdb::Protocol::HarperDB3);
  CHECK(remote.url.tls);
  CHECK(remote.url.host == "db.example.com");
  CHECK(remote.url.port == 443);
  CHECK(remote.url.path == "/base");
  CHECK_FALSE(remote.tls.verify);
  CHECK(remote.tls.caFile == ca);  // relative to the config file's directory
  REQUIRE(c.tables.size() == 2);
  CHECK(c.tables[0].start == hdb::StartMode::Snapshot);
  CHECK(c.tables[1].key() == "prod.orders");
  CHECK(c.tables[1].start == hdb::StartMode::Live);
  REQUIRE(c.sinks.size() == 3);
  CHECK(c.sinks[0].tables == std::vector<std::string>{"prod.orders"});
  CHECK(c.sinks[1].type == hdb::SinkType::Unix);
  CHECK(c.sinks[1].path == "/run/hdb-bridge/animals.sock");
  CHECK(c.sinks[1].tables == std::vector<std::string>{"dev.animals", "prod.orders"});
  CHECK(c.sinks[1].queueBytes == 64 * 1024);
  CHECK(c.sinks[1].mode == 0600);
  CHECK(c.sinks[2].queueBytes == 1000);
  CHECK(c.sinks[2].mode == 0660);
}

TEST_CASE("config: writable tables and write_timeout") {
  hdb::Config c = valid(R"(
servers:
  local: {protocol: harperdb4, url: ws://127.0.0.1:9926, username: a, password: p, write_timeout: 5s}
tables: [{server: local, database: dev, table: animals, writable: true}]
sinks: [{name: out, type: stdout}]
)");
  CHECK(c.tables[0].writable);
  CHECK(c.servers.at("local").writeTimeout == std::chrono::seconds(5));
  std::string errors = errorsOf(R"(
servers:
  local: {protocol: harperdb4, url: ws://127.0.0.1:9926, username: a, password: p, write_timeout: 10ms}
tables: [{server: local, database: dev, table: animals, writable: yes please}]
sinks: [{name: out, type: stdout}]
)");
  INFO(errors);
  CHECK(errors.find("servers.local.write_timeout") != std::string::npos);
  CHECK(errors.find("tables[0].writable") != std::string::npos);
}

TEST_CASE("config: a database.table is writable on one server only") {
  std::string errors = errorsOf(R"(
servers:
  a: {protocol: harperdb4, url: ws://127.0.0.1:9926, username: a, password: p}
  b: {protocol: harperdb4, url: ws://127.0.0.2:9926, username: a, password: p}
tables:
  - {server: a, database: dev, table: animals, writable: true}
  - {server: b, database: dev, table: animals, writable: true}
  - {server: b, database: dev, table: plants, writable: true}
sinks: [{name: out, type: stdout}]
)");
  CHECK(errors == "t.yaml:7:58: tables[1].writable: dev.animals is already writable at tables[0] (server 'a'); "
                  "an ingest command names no server, so only one may be\n");
}

TEST_CASE("config: schema is a synonym of database") {
  hdb::Config c = valid(R"(
servers: {local: {protocol: harperdb3, url: wss://h:9925, username: a, password: p}}
tables: [{server: local, schema: dev, table: animals}]
sinks: [{name: out, type: stdout, tables: [dev.animals]}]
)");
  CHECK(c.tables[0].database == "dev");
}

TEST_CASE("config: IPv6 URL and value forms") {
  hdb::Config c = valid(R"(
servers: {local: {protocol: harperdb4, url: "ws://[::1]:9926", username: a, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: a, type: unix, path: /run/a.sock, queue_bytes: 4 MiB, mode: 660}
  - {name: b, type: unix, path: /run/b.sock, queue_bytes: 1GiB, mode: "0000"}
  - {name: c, type: unix, path: /run/c.sock, queue_bytes: 512B, mode: 0777}
)");
  CHECK(c.servers.at("local").url.host == "::1");
  CHECK(c.servers.at("local").url.port == 9926);
  CHECK(c.sinks[0].queueBytes == 4u << 20);
  CHECK(c.sinks[0].mode == 0660);
  CHECK(c.sinks[1].queueBytes == size_t{1} << 30);
  CHECK(c.sinks[1].mode == 0);
  CHECK(c.sinks[2].queueBytes == 512);
  CHECK(c.sinks[2].mode == 0777);
}

TEST_CASE("config: password_file relative to the config, one trailing newline stripped") {
  TempDir dir;
  dir.write("password", "from file\n\n");
  dir.write("password-crlf", "crlf\r\n");
  std::string file = dir.write("hdb-bridge.yaml", R"(
servers:
  a: {protocol: harperdb4, url: ws://h, username: u, password_file: password}
  b: {protocol: harperdb4, url: ws://h, username: u, password_file: ./password-crlf}
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)");
  hdb::ConfigResult result = hdb::loadConfig(file);
  REQUIRE(result.errors.empty());
  CHECK(result.config->file == file);
  CHECK(result.config->servers.at("a").password == "from file\n");
  CHECK(result.config->servers.at("b").password == "crlf");
}

// systemd's LoadCredential= puts the file in $CREDENTIALS_DIRECTORY, known only at start.
TEST_CASE("config: password_file expands ${NAME} and ${NAME:-default}") {
  TempDir creds, fallback;
  creds.write("password", "from credential\n");
  fallback.write("password", "from fallback\n");
  ::setenv("HDB_BRIDGE_TEST_CREDS", creds.path().c_str(), 1);
  ::unsetenv("HDB_BRIDGE_TEST_UNSET");
  ::setenv("HDB_BRIDGE_TEST_EMPTY", "", 1);
  const std::string tail = R"(
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)";
  hdb::Config c = valid(R"(servers:
  a: {protocol: harperdb4, url: ws://h, username: u, password_file: "${HDB_BRIDGE_TEST_CREDS}/password"}
  b: {protocol: harperdb4, url: ws://h, username: u, password_file: "${HDB_BRIDGE_TEST_UNSET:-)" +
                        fallback.path() + R"(}/password"}
  c: {protocol: harperdb4, url: ws://h, username: u, password_file: "${HDB_BRIDGE_TEST_EMPTY:-)" +
                        fallback.path() + R"(}/password"}
  d: {protocol: harperdb4, url: ws://h, username: u, password_file: "${HDB_BRIDGE_TEST_CREDS:-/nonexistent}/password"}
)" + tail);
  CHECK(c.servers.at("a").password == "from credential");
  CHECK(c.servers.at("b").password == "from fallback");
  CHECK(c.servers.at("c").password == "from fallback");
  CHECK(c.servers.at("d").password == "from credential");

  ::unsetenv("CREDENTIALS_DIRECTORY");
  CHECK(errorsOf(R"(servers:
  a: {protocol: harperdb4, url: ws://h, username: u, password_file: "${CREDENTIALS_DIRECTORY}/password"}
  b: {protocol: harperdb4, url: ws://h, username: u, password_file: "${HDB_BRIDGE_TEST_EMPTY}/password"}
  c: {protocol: harperdb4, url: ws://h, username: u, password_file: "${HDB_BRIDGE_TEST_CREDS/password"}
  d: {protocol: harperdb4, url: ws://h, username: u, password_file: "${}/password"}
  e: {protocol: harperdb4, url: ws://h, username: u, password_file: "${1X}/password"}
  f: {protocol: harperdb4, url: ws://h, username: u, password_file: "$HOME/password"}
)" + tail) ==
        "t.yaml:2:69: servers.a.password_file: ${CREDENTIALS_DIRECTORY} is not set (systemd sets it for a unit "
        "with LoadCredential=)\n"
        "t.yaml:3:69: servers.b.password_file: ${HDB_BRIDGE_TEST_EMPTY} is not set\n"
        "t.yaml:4:69: servers.c.password_file: '${' without a closing '}'\n"
        "t.yaml:5:69: servers.d.password_file: expected ${NAME} or ${NAME:-default} with NAME made of letters, "
        "digits and '_'\n"
        "t.yaml:6:69: servers.e.password_file: expected ${NAME} or ${NAME:-default} with NAME made of letters, "
        "digits and '_'\n"
        "t.yaml:7:69: servers.f.password_file: cannot read: No such file or directory\n");
  ::unsetenv("HDB_BRIDGE_TEST_CREDS");
  ::unsetenv("HDB_BRIDGE_TEST_EMPTY");
}

TEST_CASE("config: password_env") {
  ::setenv("HDB_BRIDGE_TEST_PASSWORD", "from env", 1);
  hdb::Config c = valid(R"(
servers: {local: {protocol: harperdb4, url: ws://h, username: u, password_env: HDB_BRIDGE_TEST_PASSWORD}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)");
  CHECK(c.servers.at("local").password == "from env");
  ::unsetenv("HDB_BRIDGE_TEST_PASSWORD");
}

// The files in config/ are what users start from: they must stay valid.
TEST_CASE("config: the shipped configs are valid") {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path() / "../../config";
  // hdb-bridge.yaml reads the password from systemd's credential, as it does when installed.
  TempDir creds;
  creds.write("password", "secret\n");
  ::setenv("CREDENTIALS_DIRECTORY", creds.path().c_str(), 1);
  for (const char* name : {"demo.yaml", "hdb-bridge.yaml"}) {
    const std::string file = (dir / name).string();
    CAPTURE(file);
    hdb::ConfigResult result = hdb::loadConfig(file);
    std::string errors;
    for (const hdb::ConfigError& e : result.errors) errors += hdb::formatError(file, e) + "\n";
    CHECK(errors == "");
    REQUIRE(result.config.has_value());
    const hdb::Config& c = *result.config;
    CHECK(c.servers.at("local").url.port == 9926);
    CHECK(c.tables.at(0).key() == "dev.animals");
    CHECK(c.servers.at("local").password == (name == std::string("demo.yaml") ? "password" : "secret"));
    auto animals = std::find_if(c.sinks.begin(), c.sinks.end(),
                                [](const hdb::SinkConfig& s) { return s.path == "/run/hdb-bridge/animals.sock"; });
    CHECK(animals != c.sinks.end());
  }
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

TEST_CASE("config: a file that cannot be read") {
  hdb::ConfigResult result = hdb::loadConfig("/nonexistent/hdb-bridge.yaml");
  REQUIRE(result.errors.size() == 1);
  CHECK_FALSE(result.config.has_value());
  CHECK(hdb::formatError("/nonexistent/hdb-bridge.yaml", result.errors[0]) ==
        "/nonexistent/hdb-bridge.yaml: cannot read: No such file or directory");
  TempDir dir;
  result = hdb::loadConfig(dir.path());
  REQUIRE(result.errors.size() == 1);
  CHECK(hdb::formatError("d", result.errors[0]) == "d: cannot read: Is a directory");
}

TEST_CASE("config: YAML syntax and document shape") {
  checkCases({
      {"syntax error", "servers: [a, b\nsinks: []\n", "t.yaml:2:6: (yaml): end of sequence flow not found\n"},
      {"undefined alias", "servers: *nope\n", "t.yaml:1:10: (yaml): the referenced anchor is not defined\n"},
      // Found by fuzz_config: yaml-cpp 0.7's LoadAll never returned on these (the daemon hung at start).
      {"a stray comma", ",\n", "t.yaml:1:1: (yaml): unexpected character at the top of the document\n"},
      // Found by fuzz_config: a control character in a key went raw into the key path.
      {"a control character in a key", "servers: {}\ntables: []\nsinks: []\n\"a\\x07b\\u0000\": 1\n",
       "t.yaml:1:10: servers: at least one server is required\n"
       "t.yaml:2:9: tables: at least one table is required\n"
       "t.yaml:3:8: sinks: at least one sink is required\n"
       "t.yaml:4:1: a?b?: unknown key\n"},
      {"a stray comma in a second document", "log: {level: info}\n---\n,\n",
       "t.yaml:1:1: (root): missing required key 'servers'\n"
       "t.yaml:1:1: (root): missing required key 'tables'\n"
       "t.yaml:1:1: (root): missing required key 'sinks'\n"
       "t.yaml:3:1: (yaml): a second YAML document starts here; a config is one document\n"},
      // Found by fuzz_config: yaml-cpp quotes the bad character, here a form feed, raw.
      {"control character in a YAML message", "a: \"\\\f\"\n", "t.yaml:1:7: (yaml): unknown escape character: ?\n"},
      {"empty file", "",
       "t.yaml:1:1: (root): the file is empty; expected a map with servers, tables and sinks\n"},
      {"root is a list", "- servers\n", "t.yaml:1:1: (root): expected a map, found a list\n"},
      {"two documents", R"(servers: {local: {protocol: harperdb4, url: ws://h, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
---
log: {level: info}
)",
       "t.yaml:5:1: (yaml): a second YAML document starts here; a config is one document\n"},
  });
}

// The valid config every case below starts from, changed in one place:
//   servers:
//     local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}
//   tables: [{server: local, database: dev, table: animals}]
//   sinks: [{name: out, type: stdout}]
TEST_CASE("config: keys, types and required keys") {
  checkCases({
      {"unknown root key with a hint", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
sink: []
)",
       "t.yaml:4:1: sink: unknown key; did you mean 'sinks'?\n"},
      {"unknown keys at every level", R"(log: {level: info, format: json}
servers:
  local: {protocol: harperdb4, url: ws://h:1, username: u, password: p, tls: {verfy: true}, retry: 1}
tables: [{server: local, database: dev, table: animals, snapshots: true}]
sinks: [{name: out, type: stdout, colour: red}]
)",
       "t.yaml:1:20: log.format: unknown key\n"
       "t.yaml:3:79: servers.local.tls.verfy: unknown key; did you mean 'verify'?\n"
       "t.yaml:3:93: servers.local.retry: unknown key\n"
       "t.yaml:4:57: tables[0].snapshots: unknown key; did you mean 'snapshot'?\n"
       "t.yaml:5:35: sinks[0].colour: unknown key\n"},
      {"duplicate keys", R"(servers:
  local:
    protocol: harperdb4
    url: ws://h:1
    username: u
    password: p
    url: ws://h:2
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
sinks: []
)",
       "t.yaml:7:5: servers.local.url: duplicate key (first at line 4, column 5)\n"
       "t.yaml:10:1: sinks: duplicate key (first at line 9, column 1)\n"},
      {"duplicate server name", R"(servers:
  local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}
  local: {protocol: harperdb4, url: ws://h:2, username: u, password: p}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:3:3: servers.local: duplicate key (first at line 2, column 3)\n"},
      {"a key that is not a string", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals, [x]: 1}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:57: tables[0]: a key must be a string, found a list\n"},
      {"missing required root keys", "log: {level: info}\n",
       "t.yaml:1:1: (root): missing required key 'servers'\n"
       "t.yaml:1:1: (root): missing required key 'tables'\n"
       "t.yaml:1:1: (root): missing required key 'sinks'\n"},
      {"missing required server keys", R"(servers:
  local: {password: p}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:10: servers.local: missing required key 'protocol'\n"
       "t.yaml:2:10: servers.local: missing required key 'url'\n"
       "t.yaml:2:10: servers.local: missing required key 'username'\n"},
      {"missing required table and sink keys", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables:
  - server: local
  - {database: dev, table: animals}
sinks: [{type: stdout}, {name: x}]
)",
       "t.yaml:3:5: tables[0]: missing required key 'table'\n"
       "t.yaml:3:5: tables[0]: missing required key 'database'\n"
       "t.yaml:4:5: tables[1]: missing required key 'server'\n"
       "t.yaml:5:9: sinks[0]: missing required key 'name'\n"
       "t.yaml:5:25: sinks[1]: missing required key 'type'\n"},
      {"empty sections", R"(servers: {}
tables: []
sinks:
)",
       "t.yaml:1:10: servers: at least one server is required\n"
       "t.yaml:2:9: tables: at least one table is required\n"
       "t.yaml:3:1: sinks: at least one sink is required\n"},
      {"sections of the wrong type", R"(log: info
servers: [local]
tables: {server: local}
sinks: [out]
)",
       "t.yaml:1:6: log: expected a map, found a string\n"
       "t.yaml:2:10: servers: expected a map of server names, found a list\n"
       "t.yaml:3:9: tables: expected a list of tables, found a map\n"
       "t.yaml:4:9: sinks[0]: expected a map, found a string\n"},
      {"wrong value types", R"(servers:
  local:
    protocol: [harperdb4]
    url: {host: h}
    username:
    password: p
    tls: true
tables: [{server: local, database: dev, table: animals, snapshot: yes}]
sinks: [{name: "", type: stdout, tables: dev.animals}]
)",
       "t.yaml:3:15: servers.local.protocol: expected a string, found a list\n"
       "t.yaml:4:10: servers.local.url: expected a string, found a map\n"
       "t.yaml:5:5: servers.local.username: expected a string, found nothing\n"
       "t.yaml:7:10: servers.local.tls: expected a map, found a string\n"
       "t.yaml:8:67: tables[0].snapshot: expected true or false, found 'yes'\n"
       "t.yaml:9:16: sinks[0].name: must not be empty\n"
       "t.yaml:9:42: sinks[0].tables: expected a list of database.table names, found a string\n"},
      {"tls verify is not a bool", R"(servers:
  local: {protocol: harperdb4, url: wss://h, username: u, password: p, tls: {verify: 1}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:86: servers.local.tls.verify: expected true or false, found '1'\n"},
  });
}

TEST_CASE("config: values") {
  checkCases({
      {"bad log level", R"(log: {level: verbose}
servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:1:14: log.level: unknown log level 'verbose'; expected trace, debug, info, warn or error\n"},
      {"unknown protocol", R"(servers: {local: {protocol: harperdb5, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:1:29: servers.local.protocol: unknown protocol 'harperdb5'; expected harperdb4 or harperdb3\n"},
      {"bad database and table names", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev.x, table: a/b}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:36: tables[0].database: must not contain '.' or '/': 'dev.x'\n"
       "t.yaml:2:50: tables[0].table: must not contain '.' or '/': 'a/b'\n"},
      {"unknown sink type", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: pipe}]
)",
       "t.yaml:3:27: sinks[0].type: unknown sink type 'pipe'; expected stdout, unix, fifo or ingest\n"},
      {"unix sink paths", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: a, type: unix}
  - {name: b, type: unix, path: run/b.sock}
  - {name: c, type: unix, path: /run/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.sock}
)",
       "t.yaml:4:5: sinks[0]: missing required key 'path' (a unix sink needs one)\n"
       "t.yaml:5:33: sinks[1].path: must be an absolute path, found 'run/b.sock'\n"
       "t.yaml:6:33: sinks[2].path: is 114 bytes long; a Unix socket path has at most 107\n"},
      {"unix-only keys on a stdout sink", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout, path: /run/x.sock, mode: "0600"}]
)",
       "t.yaml:3:41: sinks[0].path: only unix, fifo and ingest sinks take this key\n"
       "t.yaml:3:60: sinks[0].mode: only unix, fifo and ingest sinks take this key\n"},
      {"bad queue_bytes", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: a, type: unix, path: /run/a.sock, queue_bytes: 4MB}
  - {name: b, type: unix, path: /run/b.sock, queue_bytes: 0}
  - {name: c, type: unix, path: /run/c.sock, queue_bytes: -1}
  - {name: d, type: unix, path: /run/d.sock, queue_bytes: 99999999999999999999}
  - {name: e, type: unix, path: /run/e.sock, queue_bytes: [1]}
)",
       "t.yaml:4:59: sinks[0].queue_bytes: expected a number of bytes or a size like '64KiB' or '4MiB', found '4MB'\n"
       "t.yaml:5:59: sinks[1].queue_bytes: must be greater than 0\n"
       "t.yaml:6:59: sinks[2].queue_bytes: expected a number of bytes or a size like '64KiB' or '4MiB', found '-1'\n"
       "t.yaml:7:59: sinks[3].queue_bytes: expected a number of bytes or a size like '64KiB' or '4MiB', found "
       "'99999999999999999999'\n"
       "t.yaml:8:59: sinks[4].queue_bytes: expected a string, found a list\n"},
      {"bad mode", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: a, type: unix, path: /run/a.sock, mode: "0800"}
  - {name: b, type: unix, path: /run/b.sock, mode: rw-rw----}
  - {name: c, type: unix, path: /run/c.sock, mode: "1777"}
)",
       "t.yaml:4:52: sinks[0].mode: expected an octal mode from '0000' to '0777' like '0660', found '0800'\n"
       "t.yaml:5:52: sinks[1].mode: expected an octal mode from '0000' to '0777' like '0660', found 'rw-rw----'\n"
       "t.yaml:6:52: sinks[2].mode: expected an octal mode from '0000' to '0777' like '0660', found '1777'\n"},
      {"ca_file unreadable", R"(servers:
  local: {protocol: harperdb4, url: wss://h, username: u, password: p, tls: {ca_file: /nonexistent/ca.pem}}
tables: [{server: local, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:87: servers.local.tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or directory\n"},
  });
}

TEST_CASE("config: URLs") {
  checkCases({
      {"bad URLs", R"(servers:
  a: {protocol: harperdb4, url: "http://h:1", username: u, password: p}
  b: {protocol: harperdb4, url: "127.0.0.1:9926", username: u, password: p}
  c: {protocol: harperdb4, url: "ws://:9926", username: u, password: p}
  d: {protocol: harperdb4, url: "ws://h:0", username: u, password: p}
  e: {protocol: harperdb4, url: "ws://h:65536", username: u, password: p}
  f: {protocol: harperdb4, url: "ws://h:99a", username: u, password: p}
  g: {protocol: harperdb4, url: "ws://::1:9926", username: u, password: p}
  h: {protocol: harperdb4, url: "ws://admin:hunter2@h", username: u, password: p}
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:33: servers.a.url: scheme must be ws or wss, not 'http'\n"
       "t.yaml:3:33: servers.b.url: expected ws://HOST[:PORT][/PATH] or wss://...\n"
       "t.yaml:4:33: servers.c.url: missing host\n"
       "t.yaml:5:33: servers.d.url: port must be a number from 1 to 65535\n"
       "t.yaml:6:33: servers.e.url: port must be a number from 1 to 65535\n"
       "t.yaml:7:33: servers.f.url: port must be a number from 1 to 65535\n"
       "t.yaml:8:33: servers.g.url: an IPv6 address must be in brackets, like ws://[::1]:9926\n"
       "t.yaml:9:33: servers.h.url: credentials in the URL are not supported; use username and password\n"},
  });
}

TEST_CASE("config: parseUrl") {
  struct Good {
    const char* text;
    bool tls;
    const char* host;
    uint16_t port;
    const char* path;
  };
  const Good good[] = {
      {"ws://127.0.0.1:9926", false, "127.0.0.1", 9926, "/"},
      {"ws://localhost", false, "localhost", 80, "/"},
      {"wss://db.example.com", true, "db.example.com", 443, "/"},
      {"WSS://db.example.com:8443/a/b/", true, "db.example.com", 8443, "/a/b/"},
      {"ws://[::1]:9926", false, "::1", 9926, "/"},
      {"wss://[2001:db8::7]/x", true, "2001:db8::7", 443, "/x"},
      {"ws://h:65535", false, "h", 65535, "/"},
  };
  for (const Good& g : good) {
    CAPTURE(g.text);
    hdb::Url url;
    CHECK(hdb::parseUrl(g.text, url) == std::nullopt);
    CHECK(url.tls == g.tls);
    CHECK(url.host == g.host);
    CHECK(url.port == g.port);
    CHECK(url.path == g.path);
  }
  const std::pair<const char*, const char*> bad[] = {
      {"", "expected ws://HOST[:PORT][/PATH] or wss://..."},
      {"ftp://h", "scheme must be ws or wss, not 'ftp'"},
      {"ws://", "missing host"},
      {"ws:///path", "missing host"},
      {"ws://[::1", "missing ']' after the IPv6 address"},
      {"ws://[::g]:1", "invalid IPv6 address"},
      {"ws://[::1]x", "expected ':PORT' after the IPv6 address"},
      {"ws://[]:1", "invalid IPv6 address"},
      {"ws://h:", "port must be a number from 1 to 65535"},
      {"ws://h:+80", "port must be a number from 1 to 65535"},
      {"ws://h:123456", "port must be a number from 1 to 65535"},
      {"ws://h/a?b=1", "a query or fragment is not supported"},
      {"ws://h#top", "a query or fragment is not supported"},
      {"ws://h h", "must not contain spaces"},
      {"ws://h!x", "invalid character in the host"},
  };
  for (const auto& [text, reason] : bad) {
    CAPTURE(text);
    hdb::Url url;
    url.host = "untouched";
    CHECK(hdb::parseUrl(text, url) == std::optional<std::string>(reason));
    CHECK(url.host == "untouched");
  }
}

TEST_CASE("config: references between sections") {
  checkCases({
      {"table naming an unknown server", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: remote, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:19: tables[0].server: unknown server 'remote'\n"},
      {"the same table twice on one server", R"(servers:
  local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}
  other: {protocol: harperdb4, url: ws://h:2, username: u, password: p}
tables:
  - {server: local, database: dev, table: animals}
  - {server: other, database: dev, table: animals}
  - {server: local, schema: dev, table: animals, snapshot: true}
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:7:5: tables[2]: dev.animals on server 'local' is already configured at tables[0]\n"},
      {"schema and database both given", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, schema: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:49: tables[0].schema: schema is another name for database; give only one of them\n"},
      {"duplicate sink names", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: out, type: stdout}
  - {name: out, type: unix, path: /run/out.sock}
)",
       "t.yaml:5:12: sinks[1].name: sink name 'out' is already used by sinks[0]\n"},
      {"two sinks on one path", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: a, type: unix, path: /run/hdb-bridge/x.sock}
  - {name: b, type: unix, path: /run//hdb-bridge/x.sock}
)",
       "t.yaml:5:33: sinks[1].path: path is already used by sinks[0]\n"},
      {"sink tables", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}]
sinks:
  - {name: a, type: stdout, tables: [animals, dev.plants, dev.animals, .x, {t: 1}]}
  - {name: b, type: stdout, tables: []}
)",
       "t.yaml:4:38: sinks[0].tables[0]: expected database.table, found 'animals'\n"
       "t.yaml:4:47: sinks[0].tables[1]: table 'dev.plants' is not configured under tables\n"
       "t.yaml:4:72: sinks[0].tables[3]: expected database.table, found '.x'\n"
       "t.yaml:4:76: sinks[0].tables[4]: expected a string, found a map\n"
       "t.yaml:5:37: sinks[1].tables: list at least one table, or leave the key out for all tables\n"},
  });
}

TEST_CASE("config: passwords") {
  ::unsetenv("HDB_BRIDGE_TEST_UNSET");
  ::setenv("HDB_BRIDGE_TEST_EMPTY", "", 1);
  TempDir dir;
  dir.write("empty", "\n");
  std::string emptyFile = dir.path() + "/empty";
  std::string yaml = R"(servers:
  a: {protocol: harperdb4, url: ws://h, username: u}
  b: {protocol: harperdb4, url: ws://h, username: u, password: p, password_env: X}
  c: {protocol: harperdb4, url: ws://h, username: u, password_env: HDB_BRIDGE_TEST_UNSET}
  d: {protocol: harperdb4, url: ws://h, username: u, password_env: HDB_BRIDGE_TEST_EMPTY}
  e: {protocol: harperdb4, url: ws://h, username: u, password_file: /nonexistent/password}
  f: {protocol: harperdb4, url: ws://h, username: u, password_file: )" +
                     emptyFile + R"(}
  g: {protocol: harperdb4, url: ws://h, username: u, password_file: /tmp}
  h: {protocol: harperdb4, url: ws://h, username: u, password: ""}
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)";
  CHECK(errorsOf(yaml) ==
        "t.yaml:2:6: servers.a: missing password: give password, password_file or password_env\n"
        "t.yaml:3:6: servers.b: give only one of password, password_file and password_env\n"
        "t.yaml:4:68: servers.c.password_env: the environment variable is not set\n"
        "t.yaml:5:68: servers.d.password_env: the environment variable is empty\n"
        "t.yaml:6:69: servers.e.password_file: cannot read: No such file or directory\n"
        "t.yaml:7:69: servers.f.password_file: the file is empty\n"
        "t.yaml:8:69: servers.g.password_file: cannot read: Is a directory\n"
        "t.yaml:9:64: servers.h.password: must not be empty\n");
  ::unsetenv("HDB_BRIDGE_TEST_EMPTY");
}

TEST_CASE("config: a password never appears in an error message") {
  const std::string secret = "Zx9-very-secret-Qw7";
  TempDir dir;
  std::string secretFile = dir.write("password", secret + "\n");
  ::setenv("HDB_BRIDGE_TEST_SECRET", secret.c_str(), 1);
  // Every way a password key can be wrong, with the secret as its value,
  // next to other errors that do quote values.
  std::string yaml = "servers:\n"
                     "  a: {protocol: harperdb4, url: ws://h, username: u, password: " + secret +
                     ", password_file: " + secretFile + "}\n"
                     "  b: {protocol: harperdb4, url: ws://h, username: u, password: [" + secret + "]}\n"
                     "  c: {protocol: harperdb4, url: ws://h, username: u, password: {" + secret + ": 1}}\n"
                     "  d: {protocol: harperdb4, url: ws://h, username: u, password_env: " + secret + "}\n"
                     "  e: {protocol: harperdb4, url: ws://h, username: u, password_file: /nonexistent/" + secret + "}\n"
                     "  f: {protocol: harperdb4, url: ws://h, username: u, password: " + secret +
                     ", password: " + secret + "}\n"
                     "  g: {protocol: harperdb4, url: ws://h, username: u, password_env: HDB_BRIDGE_TEST_SECRET,"
                     " password_file: " + secretFile + "}\n"
                     "  h: {protocol: harperdb5, url: ws://h, username: u, password: " + secret + "}\n"
                     "tables: [{server: a, database: dev, table: animals, password: " + secret + "}]\n"
                     "sinks: [{name: out, type: stdout}]\n";
  std::string errors = errorsOf(yaml);
  CHECK(errors.find("servers.b.password: expected a string, found a list") != std::string::npos);
  CHECK(errors.find("unknown protocol 'harperdb5'") != std::string::npos);
  CHECK(std::count(errors.begin(), errors.end(), '\n') == 9);
  CHECK(errors.find(secret) == std::string::npos);
  CHECK(errors.find("Zx9") == std::string::npos);
  ::unsetenv("HDB_BRIDGE_TEST_SECRET");
}

TEST_CASE("config: every error is reported in one pass, in file order") {
  hdb::ConfigResult result = hdb::parseConfig(R"(log: {level: loud}
servers:
  local: {protocol: harperdb4, url: ftp://h, username: u}
tables:
  - {server: local, database: dev, table: animals, snapshot: maybe}
  - {server: nowhere, database: dev, table: plants}
sinks:
  - {name: out, type: stdout, tables: [dev.birds]}
  - {name: out, type: unix, path: sock}
)",
                                              "t.yaml");
  CHECK_FALSE(result.config.has_value());
  std::string all;
  for (const hdb::ConfigError& e : result.errors) all += hdb::formatError("t.yaml", e) + "\n";
  CHECK(all ==
        "t.yaml:1:14: log.level: unknown log level 'loud'; expected trace, debug, info, warn or error\n"
        "t.yaml:3:10: servers.local: missing password: give password, password_file or password_env\n"
        "t.yaml:3:37: servers.local.url: scheme must be ws or wss, not 'ftp'\n"
        "t.yaml:5:62: tables[0].snapshot: expected true or false, found 'maybe'\n"
        "t.yaml:6:14: tables[1].server: unknown server 'nowhere'\n"
        "t.yaml:8:40: sinks[0].tables[0]: table 'dev.birds' is not configured under tables\n"
        "t.yaml:9:12: sinks[1].name: sink name 'out' is already used by sinks[0]\n"
        "t.yaml:9:35: sinks[1].path: must be an absolute path, found 'sock'\n");
}

TEST_CASE("config: harperdb3 keys: bind_address, primary_key, tls") {
  TempDir dir;
  std::string ca = dir.write("hdb3.pem", "-----BEGIN CERTIFICATE-----\n");
  hdb::Config c = valid(R"(
servers:
  legacy:
    protocol: harperdb3
    url: wss://127.0.0.1:12345
    bind_address: 127.0.0.2
    username: cluster_user
    password: p
    tls: {ca_file: hdb3.pem}
  v6: {protocol: harperdb3, url: "wss://[::1]:12345", bind_address: "::1", username: u, password: p,
       tls: {verify: false}}
  plain: {protocol: harperdb4, url: ws://h:1, username: u, password: p}
tables:
  - {server: legacy, schema: dev, table: animals, primary_key: animal_id}
  - {server: legacy, schema: dev, table: dogs}
  - {server: v6, schema: dev, table: cats}
sinks: [{name: out, type: stdout}]
)", dir.path() + "/t.yaml");
  CHECK(c.servers.at("legacy").bindAddress == "127.0.0.2");
  CHECK(c.servers.at("legacy").tls.verify);
  CHECK(c.servers.at("legacy").tls.caFile == ca);
  CHECK(c.servers.at("v6").bindAddress == "::1");
  CHECK_FALSE(c.servers.at("v6").tls.verify);
  CHECK(c.servers.at("plain").bindAddress.empty());
  CHECK(c.tables[0].primaryKey == "animal_id");
  CHECK(c.tables[1].primaryKey == "id");
}

TEST_CASE("config: harperdb3 key errors") {
  checkCases({
      {"bind_address is an IP address", R"(servers:
  a: {protocol: harperdb3, url: wss://h:1, username: u, password: p, bind_address: localhost}
  b: {protocol: harperdb4, url: ws://h:1, username: u, password: p, bind_address: 127.0.0.300}
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:84: servers.a.bind_address: expected an IPv4 or IPv6 address to connect from, found 'localhost'\n"
       "t.yaml:3:83: servers.b.bind_address: expected an IPv4 or IPv6 address to connect from, found '127.0.0.300'\n"},
      {"harperdb3 is TLS only", R"(servers: {old: {protocol: harperdb3, url: ws://h:12345, username: u, password: p}}
tables: [{server: old, schema: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:1:43: servers.old.url: harperdb3 needs wss://: HarperDB 3 clustering always uses TLS\n"},
      {"primary_key is for harperdb3 tables", R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals, primary_key: id}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:70: tables[0].primary_key: only harperdb3 tables take primary_key (HarperDB 4 sends the key itself)\n"},
      {"harperdb3 tables have no snapshot", R"(servers: {old: {protocol: harperdb3, url: wss://h:1, username: u, password: p}}
tables:
  - {server: old, schema: dev, table: a, snapshot: true}
  - {server: old, schema: dev, table: b, start: snapshot}
  - {server: old, schema: dev, table: c, start: {history: 10m}}
  - {server: old, schema: dev, table: d, start: live}
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:3:52: tables[0].snapshot: harperdb3 tables cannot start with a snapshot (HarperDB 3's clustering feed "
       "has none); use start: live or start: {history: DURATION}\n"
       "t.yaml:4:49: tables[1].start: harperdb3 tables cannot start with a snapshot (HarperDB 3's clustering feed "
       "has none); use start: live or start: {history: DURATION}\n"},
      {"primary_key is a non-empty string", R"(servers: {old: {protocol: harperdb3, url: wss://h:1, username: u, password: p}}
tables: [{server: old, schema: dev, table: animals, primary_key: [id]}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:66: tables[0].primary_key: expected a string, found a list\n"},
  });
}

TEST_CASE("config: max_message_bytes") {
  hdb::Config c = valid(R"(
servers:
  a: {protocol: harperdb4, url: ws://h:1, username: u, password: p}
  b: {protocol: harperdb3, url: wss://h:1, username: u, password: p, max_message_bytes: 64MiB}
  c: {protocol: harperdb4, url: ws://h:1, username: u, password: p, max_message_bytes: 1024}
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)");
  CHECK(c.servers.at("a").maxMessageBytes == 16u << 20);
  CHECK(c.servers.at("b").maxMessageBytes == 64u << 20);
  CHECK(c.servers.at("c").maxMessageBytes == 1024);
  checkCases({
      {"max_message_bytes: a size from 1KiB to 1GiB", R"(servers:
  a: {protocol: harperdb4, url: ws://h:1, username: u, password: p, max_message_bytes: lots}
  b: {protocol: harperdb4, url: ws://h:1, username: u, password: p, max_message_bytes: 1023}
  c: {protocol: harperdb4, url: ws://h:1, username: u, password: p, max_message_bytes: 2GiB}
  d: {protocol: harperdb4, url: ws://h:1, username: u, password: p, max_message_bytes: [1]}
tables: [{server: a, database: dev, table: animals}]
sinks: [{name: out, type: stdout}]
)",
       "t.yaml:2:88: servers.a.max_message_bytes: expected a number of bytes or a size like '64KiB' or '16MiB', found 'lots'\n"
       "t.yaml:3:88: servers.b.max_message_bytes: must be from 1KiB to 1GiB, found '1023'\n"
       "t.yaml:4:88: servers.c.max_message_bytes: must be from 1KiB to 1GiB, found '2GiB'\n"
       "t.yaml:5:88: servers.d.max_message_bytes: expected a string, found a list\n"},
  });
}
