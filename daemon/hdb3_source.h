// HarperDB 3 source: SocketCluster v14 on the clustering port
// (wss://HOST:PORT/socketcluster/). One WebSocket per server carries the
// channels (`schema:table`) of all its configured tables: the server
// authenticates sockets, not channels, so one login and one heartbeat serve
// them all (docs/harperdb3.md).
//
//   connect -> #handshake -> the server's `login` event, acked with the
//   credentials -> #setAuthToken (success) -> #subscribe per table -> acks
//   -> subscribed; #publish messages become envelope lines (hdb3_txn).
//
// The server pings (#1) every 20 s and we answer #2; if nothing arrives for
// the handshake's pingTimeout the connection is taken for dead. A close 1000
// before #setAuthToken is a refused login. Any drop is followed by a reconnect
// after a jittered, growing delay (a long one after a refused login), and the
// whole sequence runs again.
//
// Resume: once subscribed, each table with a checkpoint asks the `catchup` RPC
// for what changed since then; live messages that arrive meanwhile wait. The
// catch-up is delivered, then the waiting messages, then live, each
// transaction once (hdb3_catchup.cpp; docs/harperdb3.md, "Resume").
#pragma once

#include <libwebsockets.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "config.h"
#include "envelope.h"
#include "event_loop.h"
#include "fanout.h"
#include "hdb3_txn.h"
#include "hdb3_writer.h"
#include "logging.h"
#include "lws_client.h"
#include "reconnecting_client.h"
#include "sc_codec.h"
#include "source.h"

namespace hdb {

inline constexpr const char* kHdb3ProtocolName = "hdb3";

class Hdb3Source : public Source, public LwsClient {
 public:
  using State = ReconnectingClient::State;
  // Where an open connection is (ReconnectingClient's State::Open).
  enum class Phase { LoggingIn, Subscribing, CatchingUp };

  struct Table {
    const TableConfig* config;
    Fanout::Route route;
    CheckpointBook::Entry* checkpoint;  // the last delivered cursor (loaded from the state dir)
  };

  // `tables` are this server's tables. `onStateChange` runs whenever
  // subscribed() or stopped() may have changed.
  Hdb3Source(EventLoop& loop, const ServerConfig& server, std::vector<Table> tables,
             std::function<void()> onStateChange);
  ~Hdb3Source() override;
  Hdb3Source(const Hdb3Source&) = delete;
  Hdb3Source& operator=(const Hdb3Source&) = delete;

  void start() override;
  void shutdown() override;
  bool subscribed() const override { return client_.state() == State::Subscribed; }
  bool stopped() const override { return client_.state() == State::Stopped; }
  const std::string& name() const override { return name_; }
  const SourceStats& stats() const override { return stats_; }
  const char* stateName() const override;
  void tableStats(std::vector<TableStats>& out) const override;
  // The table's Hdb3Writer when it is writable (`writable: true`).
  TableWriter* writer(std::string_view key) override;

  // The lws protocol callback for every HarperDB 3 client connection.
  int onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept override;

 private:
  // A live message held back while its channel catches up.
  struct Held {
    std::string message;  // the whole WebSocket message, padded for simdjson
    size_t dataOffset = 0, dataSize = 0;  // the #publish's data inside it
  };

  struct Channel {
    std::string name;        // schema:table
    const TableConfig* config;
    EnvelopeWriter envelope;
    Fanout::Route route;
    CheckpointBook::Entry* checkpoint;
    int64_t subscribeCid = 0;
    bool subscribed = false;
    int64_t catchupCid = 0;  // a catchup RPC in flight
    // This connection resumed: transactions at or before this time were delivered.
    bool resuming = false;
    double resumeValue = 0;
    bool verifyReach = false;      // the catch-up must reach back to the checkpoint's transaction
    std::vector<double> caughtUp;  // sorted: the catch-up's last timestamps, whose live copies are duplicates
    std::vector<Held> held;
    size_t heldBytes = 0;
    uint64_t records = 0;    // lines delivered (metrics)
    std::chrono::system_clock::time_point lastChange{};
    std::unique_ptr<Hdb3Writer> writer{};  // writable tables only
  };

  int onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void open(const std::string& address, const std::string& error);
  void onEstablished();
  int onReceive(lws* wsi, const void* in, size_t len);
  int onWriteable(lws* wsi);
  void onMessage();
  void onPacket(const sc::Packet& p);
  void onAck(const sc::Packet& p);
  void onAuthenticated();
  void onPublish(const sc::Packet& p);
  void deliver(Channel& ch, std::string_view data, const char* bufferEnd, std::string_view raw);
  // The catch-up (hdb3_catchup.cpp): from every subscription acknowledged to State::Subscribed.
  void onAllSubscribed();
  // Asks for what the channel missed, if anything; returns whether it did.
  bool startCatchup(Channel& ch);
  void onCatchup(Channel& ch, const sc::Packet& p);
  void deliverCatchup(Channel& ch);
  void onCaughtUp();
  void publishGap(Channel& ch, std::string_view reason, const std::string& message);
  bool alreadyDelivered(const Channel& ch, std::string_view timestamp) const;
  // A transaction of `lines` lines went out: count it, move the checkpoint forward.
  void advance(Channel& ch, std::string_view ts, size_t lines);
  void onPeerClose(const void* in, size_t len);
  void send(std::string text);
  void checkLiveness();
  // Ends the connection for a reason of our own; lost() reports `problem`.
  void abandon(std::string problem, bool refused);
  void lost(lws* wsi, const std::string& why);
  std::string requestPath() const;
  void logMalformed(const std::string& what);

  EventLoop& loop_;
  const ServerConfig& server_;
  std::string name_;  // "server 'x'" for log lines
  std::vector<Channel> channels_;

  ReconnectingClient client_;
  Phase phase_ = Phase::LoggingIn;
  lws* wsi_ = nullptr;
  std::string message_;             // reassembly buffer, padded for simdjson
  bool dropMessage_ = false;        // the current message is oversized: skip it
  std::deque<std::string> outbox_;  // text messages with LWS_PRE bytes of head room
  bool pongQueued_ = false;
  int64_t nextCid_ = 1;
  int64_t handshakeCid_ = 0;
  bool authenticated_ = false;      // #setAuthToken seen on this connection
  std::chrono::milliseconds pingTimeout_{0};
  std::chrono::steady_clock::time_point lastReceive_{};
  std::chrono::steady_clock::time_point opened_{};  // when the current connection was started

  sc::PacketParser parser_;
  std::vector<sc::Packet> packets_;
  Hdb3TxnMapper mapper_;
  std::vector<Line> lines_;
  std::vector<Change> changes_;  // lines_ as the fan-out takes them
  std::vector<Hdb3CaughtUp> caught_;  // a catchup answer, mapped

  int closeCode_ = 0;               // from #disconnect or the close frame
  std::string closeReason_;
  std::string abandonProblem_;      // set by abandon()
  bool abandonRefused_ = false;
  Timer stepTimer_;                 // login and subscribe deadlines
  Timer livenessTimer_;
  LogLimiter malformedLog_;
  LogLimiter ignoredLog_;
  SourceStats stats_;
};

}  // namespace hdb
