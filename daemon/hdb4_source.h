// HarperDB 4 source: one WebSocket per configured table to
// ws[s]://HOST:PORT/<database>/<table>/ with Basic auth. Frames are reassembled,
// parsed (hdb4_frame), turned into envelope lines and handed to the fan-out.
// Any drop is followed by a reconnect after a jittered, growing delay, and the
// reconnect resumes after the last delivered change (`?startTime=<cursor>`,
// served by the project's HarperDB component), dropping anything replayed
// twice. See docs/delivery.md.
#pragma once

#include <libwebsockets.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "checkpoint.h"
#include "config.h"
#include "envelope.h"
#include "event_loop.h"
#include "fanout.h"
#include "hdb4_frame.h"
#include "hdb4_writer.h"
#include "logging.h"
#include "lws_client.h"
#include "reconnecting_client.h"
#include "source.h"

namespace hdb {

inline constexpr const char* kHdb4ProtocolName = "hdb4";

class Hdb4Source : public Source, public LwsClient {
 public:
  // State::Open: upgraded, waiting to see whether the server refuses the table.
  using State = ReconnectingClient::State;

  // `onStateChange` runs whenever subscribed() or stopped() may have changed.
  // `checkpoint` holds the table's last delivered cursor (loaded from the
  // state dir; updated here on every change).
  Hdb4Source(EventLoop& loop, const ServerConfig& server, const TableConfig& table, Fanout::Route route,
             CheckpointBook::Entry& checkpoint, std::function<void()> onStateChange);
  ~Hdb4Source() override;
  Hdb4Source(const Hdb4Source&) = delete;
  Hdb4Source& operator=(const Hdb4Source&) = delete;

  void start() override;
  void shutdown() override;
  bool subscribed() const override { return client_.state() == State::Subscribed; }
  bool stopped() const override { return client_.state() == State::Stopped; }
  const std::string& name() const override { return name_; }
  const SourceStats& stats() const override { return stats_; }
  const char* stateName() const override;
  void tableStats(std::vector<TableStats>& out) const override;
  TableWriter* writer(std::string_view key) override;

  // The lws protocol callback for every HarperDB 4 client connection.
  int onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept override;

 private:
  int onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void open(const std::string& address, const std::string& error);
  void onEstablished();
  void onSettled();
  int onReceive(lws* wsi, const void* in, size_t len);
  void onMessage();
  void onPeerClose(const void* in, size_t len);
  void lost(lws* wsi, const std::string& why);
  // Decides what this connection asks for: resume, snapshot or live.
  std::string planConnection();
  void publishGap(std::string_view reason, const std::string& message);
  bool alreadyDelivered(std::string_view localTime) const;

  EventLoop& loop_;
  const ServerConfig& server_;
  const TableConfig& table_;
  std::string name_;  // "db.table on server 'x'" for log lines
  EnvelopeWriter envelope_;
  Fanout::Route route_;
  CheckpointBook::Entry& checkpoint_;
  ReconnectingClient client_;
  std::unique_ptr<Hdb4Writer> writer_;  // when the table is writable
  lws* wsi_ = nullptr;
  std::string authHeader_;
  std::string message_;           // reassembly buffer, padded for simdjson
  bool dropMessage_ = false;      // the current message is oversized: skip it
  Hdb4FrameParser parser_;
  bool snapshotDone_ = false;     // the first-run snapshot has been asked for
  bool snapshotConnection_ = false;
  // Resuming: changes at or before this cursor were delivered already.
  std::string resumeFrom_;
  double resumeValue_ = 0;
  bool resumeIgnored_ = false;    // the server answered startTime with a snapshot
  std::string pendingGap_;        // a history_expired message to publish on the first subscription
  std::string connectedSince_;    // wall clock (ms) when this connection was started
  std::chrono::steady_clock::time_point lastTraffic_{};  // the last frame or pong
  std::chrono::steady_clock::time_point opened_{};       // when the current connection was started

  int closeCode_ = 0;             // from the server's close frame, if any
  std::string closeReason_;
  lws_retry_bo_t retryPolicy_{};
  Timer settleTimer_;
  LogLimiter malformedLog_;
  SourceStats stats_;
  std::chrono::system_clock::time_point lastChange_{};
  std::chrono::steady_clock::time_point lastReplayFrame_{};  // the last change with `size` (snapshot, resume)
};

}  // namespace hdb
