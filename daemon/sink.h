// A destination for envelope lines. deliver() only queues; flush() writes what
// the destination takes now without blocking; the fan-out calls flush() once
// per loop wake-up for every sink that got lines, so writes are batched.
#pragma once

#include <cstdint>
#include <string>

#include "config.h"
#include "envelope.h"

namespace hdb {

struct SinkStats {
  uint64_t linesQueued = 0;
  uint64_t linesDropped = 0;     // lines a consumer or the sink could not take
  uint64_t consumersCut = 0;     // consumers disconnected for falling behind
};

class Sink {
 public:
  explicit Sink(const SinkConfig& config) : config_(config) {}
  virtual ~Sink() = default;

  virtual void deliver(const Line& line) = 0;
  virtual void flush() = 0;
  // Stops taking new consumers; queued lines may still be flushed.
  virtual void close() {}
  // True while lines are queued that could still be written.
  virtual bool pending() const = 0;

  bool wants(const std::string& tableKey) const;
  const SinkConfig& config() const { return config_; }
  const SinkStats& stats() const { return stats_; }

 protected:
  SinkConfig config_;
  SinkStats stats_;
};

}  // namespace hdb
