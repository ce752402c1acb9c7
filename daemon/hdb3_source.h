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
#pragma once

#include <libwebsockets.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "backoff.h"
#include "config.h"
#include "envelope.h"
#include "event_loop.h"
#include "fanout.h"
#include "hdb3_txn.h"
#include "logging.h"
#include "lws_client.h"
#include "sc_codec.h"
#include "source.h"

namespace hdb {

inline constexpr const char* kHdb3ProtocolName = "hdb3";

class Hdb3Source : public Source, public LwsClient {
 public:
  enum class State { Idle, Connecting, LoggingIn, Subscribing, Subscribed, Waiting, Closing, Stopped };

  struct Table {
    const TableConfig* config;
    Fanout::Route route;
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
  bool subscribed() const override { return state_ == State::Subscribed; }
  bool stopped() const override { return state_ == State::Stopped; }
  const std::string& name() const override { return name_; }
  const SourceStats& stats() const override { return stats_; }
  const char* stateName() const override;
  void tableStats(std::vector<TableStats>& out) const override;

  // The lws protocol callback for every HarperDB 3 client connection.
  int onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept override;

 private:
  struct Channel {
    std::string name;        // schema:table
    std::string primaryKey;
    EnvelopeWriter envelope;
    Fanout::Route route;
    int64_t subscribeCid = 0;
    bool subscribed = false;
    std::string lastCursor;  // of the last line delivered; empty before the first
    const TableConfig* config = nullptr;
    uint64_t records = 0;    // lines delivered (metrics)
    std::chrono::system_clock::time_point lastChange{};
  };

  int onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void connect();
  void open(const std::string& address);
  void onEstablished();
  int onReceive(lws* wsi, const void* in, size_t len);
  int onWriteable(lws* wsi);
  void onMessage();
  void onPacket(const sc::Packet& p);
  void onAck(const sc::Packet& p);
  void onAuthenticated();
  void onPublish(const sc::Packet& p);
  void onAllSubscribed();
  void onPeerClose(const void* in, size_t len);
  void send(std::string text);
  void checkLiveness();
  // Ends the connection for a reason of our own; lost() reports `problem`.
  void abandon(std::string problem, bool refused);
  void lost(lws* wsi, const std::string& why);
  void setState(State s);
  std::string requestPath() const;
  void logMalformed(const std::string& what);

  EventLoop& loop_;
  const ServerConfig& server_;
  std::string name_;  // "server 'x'" for log lines
  std::vector<Channel> channels_;
  std::function<void()> onStateChange_;

  State state_ = State::Idle;
  lws* wsi_ = nullptr;
  uint64_t resolveTicket_ = 0;      // a name look-up in flight (Resolver)
  std::string message_;             // reassembly buffer, padded for simdjson
  bool dropMessage_ = false;        // the current message is oversized: skip it
  std::deque<std::string> outbox_;  // text messages with LWS_PRE bytes of head room
  bool pongQueued_ = false;
  int64_t nextCid_ = 1;
  int64_t handshakeCid_ = 0;
  bool authenticated_ = false;      // #setAuthToken seen on this connection
  bool everSubscribed_ = false;     // a later subscription may have missed changes
  std::chrono::milliseconds pingTimeout_{0};
  std::chrono::steady_clock::time_point lastReceive_{};
  std::chrono::steady_clock::time_point opened_{};  // when the current connection was started

  sc::PacketParser parser_;
  std::vector<sc::Packet> packets_;
  Hdb3TxnMapper mapper_;
  std::vector<Line> lines_;
  std::vector<Change> changes_;  // lines_ as the fan-out takes them

  int closeCode_ = 0;               // from #disconnect or the close frame
  std::string closeReason_;
  std::string abandonProblem_;      // set by abandon()
  bool abandonRefused_ = false;
  std::string lastProblem_;         // suppresses repeating the same log line
  Backoff backoff_;
  Timer retryTimer_;
  Timer stepTimer_;                 // login and subscribe deadlines
  Timer livenessTimer_;
  LogLimiter malformedLog_;
  LogLimiter ignoredLog_;
  SourceStats stats_;
};

}  // namespace hdb
