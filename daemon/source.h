// What the bridge needs from an upstream subscription, whatever its protocol.
// A source covers one or more tables; it is "subscribed" when all of them are.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "writer.h"

namespace hdb {

struct SourceStats {
  uint64_t frames = 0;     // complete messages received
  uint64_t records = 0;    // envelope lines produced
  uint64_t malformed = 0;  // messages (or packets in them) dropped as unparseable or of the wrong shape
  uint64_t oversized = 0;  // of those, messages over max_message_bytes (the connection was reset)
  uint64_t connects = 0;   // successful upgrades
  uint64_t drops = 0;      // connections lost or refused
  uint64_t duplicates = 0; // replayed changes dropped as already delivered
  uint64_t gaps = 0;       // times changes may have been missed (gap lines)
  uint64_t ignored = 0;    // well-formed packets not meant for us (a channel, event or ack we did not ask for)
  uint64_t timeouts = 0;   // connections given up: silent too long, or a connect, TLS handshake or upgrade
                           // that did not finish in time (also counted in drops)
};

// One configured table as the metrics endpoint shows it (docs/operations.md).
struct TableStats {
  const TableConfig* table = nullptr;
  bool subscribed = false;
  // Subscribed but still receiving the replay a (re)subscription asked for
  // (snapshot or resume): not caught up yet.
  bool replaying = false;
  uint64_t records = 0;                                  // envelope lines produced for this table
  std::chrono::system_clock::time_point lastChange{};   // when its last change arrived; epoch: none yet
  std::string_view checkpoint;                           // the cursor on disk (ms since the epoch); empty: none
};

class Source {
 public:
  virtual ~Source() = default;
  virtual void start() = 0;
  // Closes the connection politely (1001) and stops reconnecting.
  virtual void shutdown() = 0;
  virtual bool subscribed() const = 0;
  // True once shut down and the connection is gone.
  virtual bool stopped() const = 0;
  virtual const std::string& name() const = 0;
  virtual const SourceStats& stats() const = 0;
  // The connection's state as a word ("connecting", "subscribed", ...).
  virtual const char* stateName() const = 0;
  // Appends one entry per table this source carries.
  virtual void tableStats(std::vector<TableStats>& out) const = 0;
  // The writer of table `key` ("db.table") when this source carries it and it
  // is writable; nullptr otherwise. Lives as long as the source.
  virtual TableWriter* writer(std::string_view key) { (void)key; return nullptr; }
};

// A running source with the config generation its references point into: a
// reload swaps the bridge's config but leaves untouched subscriptions running
// on the one they were built from.
struct RunningSource {
  std::string key;  // reload_plan.h's sourcesOf() key
  std::shared_ptr<const Config> config;
  std::unique_ptr<Source> source;
};

}  // namespace hdb
