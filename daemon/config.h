// The configuration model: plain data parsed from YAML (config_load.cpp) and
// validated as a whole before anything starts. Later features extend these
// structs; the YAML key names are the user-facing contract.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hdb {

// max_message_bytes: when not given.
inline constexpr size_t kDefaultMaxMessageBytes = size_t{16} << 20;
inline constexpr size_t kMinMaxMessageBytes = size_t{1} << 10;
inline constexpr size_t kMaxMaxMessageBytes = size_t{1} << 30;

enum class LogLevel { Trace, Debug, Info, Warn, Error };
enum class Protocol { HarperDB4, HarperDB3 };
enum class SinkType { Stdout, Unix, Fifo, Ingest };

struct TlsConfig {
  bool verify = true;   // verify the server certificate (chain and host name)
  std::string caFile;   // empty: the system CA store
  bool operator==(const TlsConfig&) const = default;
};

// A parsed ws:// or wss:// URL.
struct Url {
  bool tls = false;
  std::string host;     // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string path;     // always starts with '/'
  bool operator==(const Url&) const = default;
};

struct ServerConfig {
  std::string name;
  Protocol protocol = Protocol::HarperDB4;
  std::string urlText;
  Url url;
  std::string bindAddress;  // IP literal to connect from; empty: the kernel's choice
  std::optional<Url> operationsUrl;  // http(s)://host:port of the operations API
  std::string username;
  std::string password;  // resolved from password, password_file or password_env
  TlsConfig tls;
  // A message (all frames of it) bigger than this is dropped, counted and the
  // connection reset: no record is that big, and a peer must not make us buffer
  // without bound. HarperDB 3 sends a whole transaction in one message: a bulk
  // load of many records in one operation may need more.
  size_t maxMessageBytes = kDefaultMaxMessageBytes;
  // No frame (data or pong) for this long: the connection is dead. Pings go out
  // after half of it without traffic (HarperDB 4 never pings on its own).
  std::chrono::milliseconds livenessTimeout{std::chrono::seconds(30)};
  // How far back the server keeps history (HarperDB's audit log, 3 days by
  // default): a checkpoint older than this cannot be resumed without a gap.
  std::chrono::milliseconds historyRetention{std::chrono::hours(72)};
  // A write (writer.h) not answered (HarperDB 4) or confirmed on the feed
  // (HarperDB 3) within this is reported as failed: it may or may not apply.
  std::chrono::milliseconds writeTimeout{std::chrono::seconds(10)};
  // Reload compares whole servers: any difference reconnects its tables.
  bool operator==(const ServerConfig&) const = default;
};

// Where a table starts when there is no checkpoint yet.
enum class StartMode { Live, Snapshot, History };

struct TableConfig {
  std::string server;
  std::string primaryKey = "id";  // harperdb3: the record field that is the key
  std::string database;
  std::string table;
  StartMode start = StartMode::Live;  // `start:`; `snapshot: true` means StartMode::Snapshot
  std::chrono::milliseconds history{0};  // with StartMode::History: how far back
  bool writable = false;  // `writable: true`: ingest sockets may write to it (writer.h)
  std::string key() const { return database + "." + table; }
  bool operator==(const TableConfig&) const = default;
};

// What a sink writes per change: the envelope line, the record's JSON alone,
// or each upstream message exactly as received (once per message).
enum class SinkFormat { Envelope, Record, Raw };
// What a consumer's full queue does with one more line (docs/sinks.md).
enum class OverflowPolicy { Disconnect, DropOldest, DropNewest };

struct SinkConfig {
  std::string name;
  SinkType type = SinkType::Stdout;
  std::string path;                // unix, fifo, ingest
  std::vector<std::string> tables; // "db.table"; empty = all tables (ingest: all writable tables)
  std::vector<std::string> ops;    // envelope ops to pass (ingest: write ops allowed); empty = all
  SinkFormat format = SinkFormat::Envelope;
  size_t queueBytes = 4u << 20;    // per consumer (ingest: answers waiting for a client to read them)
  // Unset: disconnect for unix and fifo sinks, drop_newest for stdout (whose
  // reader cannot come back).
  std::optional<OverflowPolicy> onOverflow;
  unsigned mode = 0660;            // unix socket / fifo file mode
  std::optional<uint32_t> owner;   // unix, fifo: chown the file to this uid
  std::optional<uint32_t> group;   // ... and gid
  size_t replay = 0;               // unix: lines a new consumer gets first
  // unix: peers (SO_PEERCRED) allowed to stay connected; both empty = anyone
  // the file mode lets in.
  std::vector<uint32_t> allowUids;
  std::vector<uint32_t> allowGids;
  size_t maxInFlight = 1;          // ingest: a client's commands at a writer at once
  size_t maxLineBytes = 1u << 20;  // ingest: a longer command line is answered with an error and skipped

  bool operator==(const SinkConfig&) const = default;

  OverflowPolicy overflow() const {
    return onOverflow.value_or(type == SinkType::Stdout ? OverflowPolicy::DropNewest : OverflowPolicy::Disconnect);
  }
};

// `metrics:`: an HTTP endpoint for /metrics, /healthz and /readyz, served by
// the event loop (docs/operations.md). Either a TCP address (an IP literal and
// a port; port 0 takes any free one and logs it) or an absolute Unix socket path.
struct MetricsConfig {
  std::string unixPath;  // set: a Unix socket at this path (host and port unused)
  std::string host;      // IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;
  unsigned mode = 0660;  // Unix socket file mode
  bool operator==(const MetricsConfig&) const = default;
};

struct Config {
  std::string file;
  LogLevel logLevel = LogLevel::Info;
  // Checkpoints and the instance lock. Default: $STATE_DIRECTORY (systemd's
  // StateDirectory=), else /var/lib/hdb-bridge for root, else
  // $XDG_STATE_HOME/hdb-bridge (~/.local/state/hdb-bridge).
  std::string stateDir;
  std::chrono::milliseconds checkpointInterval{std::chrono::seconds(1)};
  std::map<std::string, ServerConfig> servers;
  std::vector<TableConfig> tables;
  std::vector<SinkConfig> sinks;
  std::optional<MetricsConfig> metrics;  // unset: no metrics endpoint
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
