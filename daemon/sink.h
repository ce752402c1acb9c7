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

// An ingest sink's command counters (docs/ingest.md, "Counters"); every
// command line ends in exactly one of ok, failed, malformed, refused or
// dropped (its client left before the answer came).
struct IngestStats {
  uint64_t commands = 0;   // non-blank lines read
  uint64_t ok = 0;         // answered ok by a writer
  uint64_t failed = 0;     // answered with an error by a writer
  uint64_t malformed = 0;  // not a valid command (or over max_line_bytes); never forwarded
  uint64_t refused = 0;    // valid, but the socket's tables/ops or the table's config do not allow it
  uint64_t dropped = 0;    // in flight when their client left: the answer had no one to go to
  uint64_t inFlight = 0;   // submitted to a writer, answer not in yet (gauge)
};

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
  IngestStats ingest;              // type ingest only
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
  // False for a sink that is no destination for the feed (ingest): the
  // fan-out never routes lines to it, and flushes it on every wake-up.
  virtual bool takesFeed() const { return true; }
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
