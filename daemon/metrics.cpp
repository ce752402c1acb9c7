#include "metrics.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string_view>

#include "exposition.h"

namespace hdb {
namespace {

using Type = Exposition::Type;

double seconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1e6; }

double unixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Every state a source reports (Hdb4Source and Hdb3Source::stateName):
// each table gets one series per state, 1 for the current one, so a state
// change never makes a series vanish.
constexpr const char* kStates[] = {"idle",       "connecting", "settling", "logging_in", "subscribing",
                                   "catching_up", "subscribed", "waiting",  "closing",    "stopped"};

struct TableRow {
  TableStats stats;
  const Source* source;
};

void tableMetrics(Exposition& out, const std::vector<TableRow>& rows) {
  auto each = [&](auto&& fn) {
    for (const TableRow& r : rows) fn(r, r.stats.table->server, r.stats.table->database, r.stats.table->table);
  };
  out.family("hdb_bridge_table_records_total", Type::Counter,
             "Record changes received for the table and handed to the sinks (snapshot records included).");
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    out.sample({{"server", s}, {"database", d}, {"table", t}}, r.stats.records);
  });
  out.family("hdb_bridge_table_reconnects_total", Type::Counter,
             "Times the connection carrying the table was established again after the first time "
             "(HarperDB 3: the server's one shared connection).");
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    uint64_t connects = r.source->stats().connects;
    out.sample({{"server", s}, {"database", d}, {"table", t}}, connects > 0 ? connects - 1 : uint64_t{0});
  });
  out.family("hdb_bridge_table_last_change_timestamp_seconds", Type::Gauge,
             "When the table's last change arrived (Unix time); 0 before the first.");
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    double at = r.stats.lastChange.time_since_epoch().count() == 0 ? 0.0 : unixSeconds(r.stats.lastChange);
    out.sample({{"server", s}, {"database", d}, {"table", t}}, at);
  });
  out.family("hdb_bridge_table_checkpoint_age_seconds", Type::Gauge,
             "Age of the change recorded in the table's checkpoint file (now minus its HarperDB time): "
             "how far back a restart would resume. Only tables with a checkpoint (HarperDB 4).");
  double now = unixSeconds(std::chrono::system_clock::now());
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    if (r.stats.checkpoint.empty()) return;
    double ms = std::strtod(std::string(r.stats.checkpoint).c_str(), nullptr);
    out.sample({{"server", s}, {"database", d}, {"table", t}}, std::max(0.0, now - ms / 1000));
  });
  out.family("hdb_bridge_table_subscribed", Type::Gauge, "1 while the table is subscribed, else 0.");
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    out.sample({{"server", s}, {"database", d}, {"table", t}}, uint64_t{r.stats.subscribed ? 1u : 0u});
  });
  out.family("hdb_bridge_table_replaying", Type::Gauge,
             "1 while a subscribed table still receives the snapshot or resume replay it asked for (until a "
             "second passes without a replayed change), else 0.");
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    out.sample({{"server", s}, {"database", d}, {"table", t}}, uint64_t{r.stats.replaying ? 1u : 0u});
  });
  out.family("hdb_bridge_table_state", Type::Gauge,
             "The state of the connection carrying the table: 1 for the current state, 0 for the others.");
  each([&](const TableRow& r, std::string_view s, std::string_view d, std::string_view t) {
    std::string_view current = r.source->stateName();
    for (const char* state : kStates)
      out.sample({{"server", s}, {"database", d}, {"table", t}, {"state", state}},
                 uint64_t{current == state ? 1u : 0u});
  });
}

// Connection-level counters, summed per server (a HarperDB 4 server has one
// connection per table, a HarperDB 3 server one for all).
void serverMetrics(Exposition& out, const std::vector<RunningSource>& sources,
                   const std::vector<TableRow>& rows) {
  // A source's server is the server of any of its tables.
  std::map<const Source*, const std::string*> serverOf;
  for (const TableRow& r : rows) serverOf.emplace(r.source, &r.stats.table->server);
  std::map<std::string, SourceStats> byServer;
  for (const auto& running : sources) {
    auto it = serverOf.find(running.source.get());
    if (it == serverOf.end()) continue;
    SourceStats& sum = byServer[*it->second];
    const SourceStats& s = running.source->stats();
    sum.frames += s.frames;
    sum.malformed += s.malformed;
    sum.oversized += s.oversized;
    sum.connects += s.connects;
    sum.drops += s.drops;
    sum.duplicates += s.duplicates;
    sum.gaps += s.gaps;
    sum.ignored += s.ignored;
    sum.timeouts += s.timeouts;
  }
  out.family("hdb_bridge_server_messages_total", Type::Counter, "Complete WebSocket messages received.");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.frames);
  out.family("hdb_bridge_server_dropped_messages_total", Type::Counter,
             "Messages dropped as bad input, by reason: malformed (unparseable or not a change) or oversized "
             "(over max_message_bytes; the connection is reset).");
  for (const auto& [server, s] : byServer) {
    out.sample({{"server", server}, {"reason", "malformed"}}, s.malformed - s.oversized);
    out.sample({{"server", server}, {"reason", "oversized"}}, s.oversized);
  }
  out.family("hdb_bridge_server_ignored_messages_total", Type::Counter,
             "Well-formed messages not meant for us (a channel, event or answer we did not ask for), ignored.");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.ignored);
  out.family("hdb_bridge_server_timeouts_total", Type::Counter,
             "Connections given up for silence: no frame within liveness_timeout, or a connect, TLS handshake or "
             "upgrade that stalled.");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.timeouts);
  out.family("hdb_bridge_server_duplicates_total", Type::Counter,
             "Replayed changes dropped because they were delivered already (after a resume).");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.duplicates);
  out.family("hdb_bridge_server_gaps_total", Type::Counter, "Times changes may have been missed (gap lines sent).");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.gaps);
  out.family("hdb_bridge_server_connects_total", Type::Counter, "Connections established (upgrades accepted).");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.connects);
  out.family("hdb_bridge_server_connection_losses_total", Type::Counter,
             "Connections lost or refused (each is followed by a reconnect after a backoff).");
  for (const auto& [server, s] : byServer) out.sample({{"server", server}}, s.drops);
}

void sinkMetrics(Exposition& out, const std::vector<std::unique_ptr<Sink>>& sinks) {
  auto each = [&](auto&& fn) {
    for (const auto& sink : sinks) fn(*sink, std::string_view(sink->config().name));
  };
  out.family("hdb_bridge_sink_consumers", Type::Gauge,
             "Consumers connected now (fifo: 1 while a reader has it open; stdout is not counted).");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().consumers); });
  out.family("hdb_bridge_sink_lines_total", Type::Counter, "Lines the sink took (after its filters, in its format).");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().lines); });
  out.family("hdb_bridge_sink_bytes_total", Type::Counter, "Bytes of the lines the sink took.");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().bytes); });
  out.family("hdb_bridge_sink_written_bytes_total", Type::Counter,
             "Bytes written to consumers (summed over consumers, gap lines included).");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().queue.bytesWritten); });
  out.family("hdb_bridge_sink_dropped_lines_total", Type::Counter,
             "Lines a consumer did not get, by reason: drop_oldest, drop_newest (full queue), disconnect "
             "(discarded with a consumer cut off for falling behind), reader_gone (fifo reader left mid-line).");
  each([&](const Sink& k, std::string_view n) {
    const SinkStats& s = k.stats();
    out.sample({{"sink", n}, {"reason", "drop_oldest"}}, s.queue.droppedOldest);
    out.sample({{"sink", n}, {"reason", "drop_newest"}}, s.queue.droppedNewest);
    out.sample({{"sink", n}, {"reason", "disconnect"}}, s.droppedDisconnect);
    out.sample({{"sink", n}, {"reason", "reader_gone"}}, s.droppedReaderGone);
  });
  out.family("hdb_bridge_sink_gap_lines_total", Type::Counter, "Gap lines queued to tell consumers about drops.");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().queue.gapLines); });
  out.family("hdb_bridge_sink_queue_bytes", Type::Gauge, "Bytes waiting in the sink's queues now (all consumers).");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, uint64_t{k.queuedBytes()}); });
  out.family("hdb_bridge_sink_consumers_accepted_total", Type::Counter, "Consumers (fifo: readers) since the start.");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().consumersAccepted); });
  out.family("hdb_bridge_sink_consumers_cut_total", Type::Counter, "Consumers disconnected for falling behind.");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().consumersCut); });
  out.family("hdb_bridge_sink_consumers_rejected_total", Type::Counter,
             "Consumers refused by allow_uids / allow_gids.");
  each([&](const Sink& k, std::string_view n) { out.sample({{"sink", n}}, k.stats().consumersRejected); });
}

// Ingest sockets (docs/ingest.md): every command line ends in one result.
void ingestMetrics(Exposition& out, const std::vector<std::unique_ptr<Sink>>& sinks) {
  auto each = [&](auto&& fn) {
    for (const auto& sink : sinks)
      if (sink->config().type == SinkType::Ingest) fn(sink->stats().ingest, std::string_view(sink->config().name));
  };
  out.family("hdb_bridge_ingest_commands_total", Type::Counter,
             "Command lines an ingest socket read, by result: ok, failed (the writer answered with an error), "
             "malformed (not a valid command; never forwarded), refused (tables:/ops: of the socket or the table's "
             "config do not allow it), dropped (its client left before the answer); in_flight ones have none yet.");
  each([&](const IngestStats& i, std::string_view n) {
    out.sample({{"sink", n}, {"result", "ok"}}, i.ok);
    out.sample({{"sink", n}, {"result", "failed"}}, i.failed);
    out.sample({{"sink", n}, {"result", "malformed"}}, i.malformed);
    out.sample({{"sink", n}, {"result", "refused"}}, i.refused);
    out.sample({{"sink", n}, {"result", "dropped"}}, i.dropped);
  });
  out.family("hdb_bridge_ingest_in_flight", Type::Gauge,
             "Commands submitted to a writer whose answer a connected client still waits for.");
  each([&](const IngestStats& i, std::string_view n) { out.sample({{"sink", n}}, i.inFlight); });
}

void processMetrics(Exposition& out, const BridgeView& view, const HttpCounters& http) {
  out.family("hdb_bridge_build_info", Type::Gauge, "Always 1; the version is a label.");
  out.sample({{"version", HDB_BRIDGE_VERSION}}, uint64_t{1});
  out.family("hdb_bridge_start_time_seconds", Type::Gauge, "When the process started (Unix time).");
  out.sample(unixSeconds(view.startedWall));
  out.family("hdb_bridge_uptime_seconds", Type::Gauge, "Seconds since the process started.");
  out.sample(std::chrono::duration<double>(std::chrono::steady_clock::now() - view.started).count());
  out.family("hdb_bridge_loop_lag_seconds", Type::Gauge,
             "How late the last 100 ms loop timer fired: time the loop spent busy before it got to it.");
  out.sample(seconds(view.lag.last()));
  out.family("hdb_bridge_loop_lag_max_seconds", Type::Gauge, "The worst loop lag of about the last 10 seconds.");
  out.sample(seconds(view.lag.recentMax()));
  out.family("hdb_bridge_http_requests_total", Type::Counter,
             "Requests to this endpoint, by status code (408: closed for being too slow; 503: refused at the "
             "client limit or /readyz while not ready).");
  out.sample({{"code", "200"}}, http.ok);
  out.sample({{"code", "400"}}, http.badRequest);
  out.sample({{"code", "404"}}, http.notFound);
  out.sample({{"code", "405"}}, http.badMethod);
  out.sample({{"code", "408"}}, http.timedOut);
  out.sample({{"code", "503"}}, http.unavailable + http.refused);
}

std::vector<TableRow> tableRows(const BridgeView& view) {
  std::vector<TableRow> rows;
  std::vector<TableStats> stats;
  for (const auto& running : view.sources) {
    stats.clear();
    running.source->tableStats(stats);
    for (const TableStats& t : stats) rows.push_back({t, running.source.get()});
  }
  return rows;
}

}  // namespace

std::string renderMetrics(const BridgeView& view, const HttpCounters& http) {
  Exposition out;
  std::vector<TableRow> rows = tableRows(view);
  tableMetrics(out, rows);
  serverMetrics(out, view.sources, rows);
  sinkMetrics(out, view.sinks);
  ingestMetrics(out, view.sinks);
  processMetrics(out, view, http);
  return out.take();
}

bool bridgeReady(const BridgeView& view, std::string& why) {
  why.clear();
  if (view.stopping && view.stopping()) {
    why = "shutting down\n";
    return false;
  }
  for (const TableRow& r : tableRows(view)) {
    if (r.stats.subscribed && !r.stats.replaying) continue;
    why.append(r.stats.table->key()).append(" on server '").append(r.stats.table->server).append("': ");
    why.append(r.stats.subscribed ? "replaying" : r.source->stateName()).append("\n");
  }
  return why.empty();
}

}  // namespace hdb
