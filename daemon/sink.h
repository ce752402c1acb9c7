// A destination for lines. The fan-out decides what a sink gets (its tables,
// ops and format) and calls take(); deliver() only queues; flush() writes what
// the destination takes now without blocking. The fan-out calls flush() once
// per loop wake-up for every sink that got lines, so writes are batched.
#pragma once

#include <cstdint>
#include <string>

#include "config.h"
#include "envelope.h"
#include "line_queue.h"
#include "sink_filter.h"

namespace hdb {

// Per-sink counters, summed over its consumers (docs/sinks.md, "Counters").
struct SinkStats {
  uint64_t lines = 0;              // lines the sink took (after filters, in its format)
  uint64_t bytes = 0;              // their bytes
  QueueStats queue;                // drop_oldest / drop_newest drops, gap lines, bytes written
  uint64_t droppedDisconnect = 0;  // lines discarded with a consumer cut off (on_overflow: disconnect)
  uint64_t droppedReaderGone = 0;  // fifo: lines a departed reader never read whole
  uint64_t consumers = 0;          // connected now (fifo: 1 while a reader has it open)
  uint64_t consumersAccepted = 0;  // connections (fifo: readers) since the start
  uint64_t consumersCut = 0;       // disconnected for falling behind
  uint64_t consumersRejected = 0;  // refused by allow_uids / allow_gids
};

class Sink {
 public:
  explicit Sink(const SinkConfig& config) : config_(config), filter_(config_.tables, config_.ops) {}
  virtual ~Sink() = default;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Counts the line and queues it for every consumer.
  void take(const Line& line) {
    ++stats_.lines;
    stats_.bytes += line->size();
    deliver(line);
  }
  virtual void flush() = 0;
  // Stops taking new consumers; queued lines may still be flushed.
  virtual void close() {}
  // A reload removed or replaced this sink: write what each consumer takes at
  // once, then let go of every fd and file (lws closes them; no callback
  // reaches the sink again), so it may be destroyed right away.
  virtual void retire() = 0;
  // A reload changed only `tables:`, `ops:` or `format:`: consumers stay
  // connected; the fan-out reroutes (Fanout::rerouted).
  virtual void refilter(const SinkConfig& next) {
    config_.tables = next.tables;
    config_.ops = next.ops;
    config_.format = next.format;
    filter_ = SinkFilter(config_.tables, config_.ops);
  }
  // True while lines are queued that could still be written.
  virtual bool pending() const = 0;
  // Bytes waiting in its queues now (every consumer's together).
  virtual size_t queuedBytes() const = 0;

  const SinkConfig& config() const { return config_; }
  const SinkFilter& filter() const { return filter_; }
  SinkFormat format() const { return config_.format; }
  const SinkStats& stats() const { return stats_; }

 protected:
  virtual void deliver(const Line& line) = 0;

  SinkConfig config_;
  SinkFilter filter_;
  SinkStats stats_;
};

}  // namespace hdb
