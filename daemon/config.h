// The configuration model: plain data parsed from YAML (config_load.cpp) and
// validated as a whole before anything starts. Later features extend these
// structs; the YAML key names are the user-facing contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hdb {

enum class LogLevel { Trace, Debug, Info, Warn, Error };
enum class Protocol { HarperDB4, HarperDB3 };
enum class SinkType { Stdout, Unix };

struct TlsConfig {
  bool verify = true;   // verify the server certificate (chain and host name)
  std::string caFile;   // empty: the system CA store
};

// A parsed ws:// or wss:// URL.
struct Url {
  bool tls = false;
  std::string host;     // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string path;     // always starts with '/'
};

struct ServerConfig {
  std::string name;
  Protocol protocol = Protocol::HarperDB4;
  std::string urlText;
  Url url;
  std::string bindAddress;  // IP literal to connect from; empty: the kernel's choice
  std::string username;
  std::string password;  // resolved from password, password_file or password_env
  TlsConfig tls;
};

struct TableConfig {
  std::string server;
  std::string primaryKey = "id";  // harperdb3: the record field that is the key
  std::string database;
  std::string table;
  bool snapshot = false;  // first connect sends the table's current records
  std::string key() const { return database + "." + table; }
};

struct SinkConfig {
  std::string name;
  SinkType type = SinkType::Stdout;
  std::string path;                // unix
  std::vector<std::string> tables; // "db.table"; empty = all tables
  size_t queueBytes = 4u << 20;    // per consumer; above it the consumer is cut off
  unsigned mode = 0660;            // unix socket file mode
};

struct Config {
  std::string file;
  LogLevel logLevel = LogLevel::Info;
  std::map<std::string, ServerConfig> servers;
  std::vector<TableConfig> tables;
  std::vector<SinkConfig> sinks;
};

// One problem found in a config file, printed as FILE:LINE:COL: key.path: reason.
struct ConfigError {
  int line = 0;    // 1-based; 0 when the file itself could not be read
  int column = 0;  // 1-based
  std::string path;
  std::string reason;
};

struct ConfigResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;
};

// Reads and validates a config file; collects every error instead of stopping at the first.
ConfigResult loadConfig(const std::string& file);
// The same from text already in memory (file is used for messages and relative paths).
ConfigResult parseConfig(const std::string& text, const std::string& file);

std::string formatError(const std::string& file, const ConfigError& e);

// Parses ws[s]://host[:port][/path]; returns an error reason or nullopt.
std::optional<std::string> parseUrl(const std::string& text, Url& out);

}  // namespace hdb
