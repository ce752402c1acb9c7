#include "hdb3_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "json_util.h"

namespace hdb {

namespace {

using namespace std::chrono_literals;

// The server asks for credentials right after the handshake and answers them within
// milliseconds; a login that takes longer than this will not complete.
constexpr auto kLoginTimeout = 10s;
// Subscribe acks come back in milliseconds, even for unknown channels.
constexpr auto kSubscribeTimeout = 10s;
// Until the handshake ack tells the server's pingTimeout (HarperDB 3.3: 60 s, with a
// ping every 20 s), this is how long silence may last. Bounds for what a server says.
constexpr std::chrono::milliseconds kDefaultPingTimeout = 60s;
constexpr std::chrono::milliseconds kMinPingTimeout = 1s;
constexpr std::chrono::milliseconds kMaxPingTimeout = 10min;
// Packets we send are few (handshake, login, one subscribe and one catchup per table, pongs, bye);
// more than this waiting means the server stopped reading.
constexpr size_t kOutboxSlack = 16;
// Live messages held back during a catch-up, per channel, at most this many bytes
// (in max_message_bytes) before the connection is reset and the catch-up starts again.
constexpr size_t kHeldLimit = 4;


}  // namespace

Hdb3Source::Hdb3Source(EventLoop& loop, const ServerConfig& server, std::vector<Table> tables,
                       std::function<void()> onStateChange)
    : loop_(loop),
      server_(server),
      name_("server '" + server.name + "'"),
      client_(loop, name_, server.url.host, [this](const std::string& a, const std::string& e) { open(a, e); },
              std::move(onStateChange)),
      stepTimer_(loop),
      livenessTimer_(loop) {
  channels_.reserve(tables.size());
  for (Table& t : tables) {
    const TableConfig& tc = *t.config;
    channels_.push_back(Channel{tc.database + ":" + tc.table, &tc, EnvelopeWriter(server.name, tc.database, tc.table),
                                std::move(t.route), t.checkpoint, 0, false, 0, false, 0, false, {}, {}, 0});
    if (tc.writable)
      channels_.back().writer = std::make_unique<Hdb3Writer>(
          loop, server.name, tc, server.writeTimeout,
          Hdb3Writer::Link{[this] { return subscribed() && wsi_ != nullptr; },
                           [this](std::string text) { send(std::move(text)); }});
  }
}

Hdb3Source::~Hdb3Source() {
  // Writers answer what is still waiting while the rest of the source is intact.
  for (Channel& ch : channels_) ch.writer.reset();
  stepTimer_.cancel();
  livenessTimer_.cancel();
  if (wsi_) lws_set_opaque_user_data(wsi_, nullptr);
  for (auto& m : outbox_) std::fill(m.begin(), m.end(), '\0');  // a login ack holds the password
}

void Hdb3Source::start() {
  for (const Channel& ch : channels_)
    if (!ch.checkpoint->cursor.empty())
      spdlog::info("{}: channel '{}' resumes after checkpoint {}", name_, ch.name, ch.checkpoint->cursor);
  client_.connect();
}

std::string Hdb3Source::requestPath() const {
  // The url names the clustering port; SocketCluster listens under /socketcluster/
  // (the trailing slash is required).
  std::string path = server_.url.path;
  if (path.empty() || path.back() != '/') path.push_back('/');
  if (!path.ends_with("/socketcluster/")) path += "socketcluster/";
  return path;
}

void Hdb3Source::open(const std::string& address, const std::string& error) {
  if (!error.empty()) return lost(nullptr, error);
  std::string path = requestPath();
  closeCode_ = 0;
  closeReason_.clear();
  abandonProblem_.clear();
  abandonRefused_ = false;
  message_.clear();
  dropMessage_ = false;
  outbox_.clear();
  pongQueued_ = false;
  nextCid_ = 1;
  handshakeCid_ = 0;
  authenticated_ = false;
  pingTimeout_ = std::max(kDefaultPingTimeout, server_.livenessTimeout);
  for (Channel& ch : channels_) {
    ch.subscribed = false;
    ch.subscribeCid = 0;
    ch.catchupCid = 0;
    ch.held.clear();
    ch.heldBytes = 0;
  }

  lws_client_connect_info ci{};
  ci.context = loop_.context();
  ci.vhost = loop_.clientVhost(server_.name);
  ci.address = address.c_str();
  ci.port = server_.url.port;
  ci.host = server_.url.host.c_str();  // Host header, SNI and the certificate's name
  ci.origin = ci.host;
  ci.path = path.c_str();
  ci.local_protocol_name = kHdb3ProtocolName;
  ci.opaque_user_data = opaque();
  // HarperDB 3 lets connections from 127.0.0.1 in without a login: binding the
  // source address (e.g. 127.0.0.2) is how tests see the real authentication.
  if (!server_.bindAddress.empty()) ci.iface = server_.bindAddress.c_str();
  if (server_.url.tls) {
    ci.ssl_connection = LCCSCF_USE_SSL;
    if (!server_.tls.verify)
      ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                           LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
  }
  spdlog::debug("{}: connecting to {}://{}:{}{} ({}{})", name_, server_.url.tls ? "wss" : "ws", server_.url.host,
                server_.url.port, path, address, server_.bindAddress.empty() ? "" : " from " + server_.bindAddress);
  opened_ = std::chrono::steady_clock::now();
  lws* wsi = lws_client_connect_via_info(&ci);
  // A failure may already have been reported through CLIENT_CONNECTION_ERROR.
  if (!wsi && client_.state() == State::Connecting) lost(nullptr, "cannot start a connection");
  else if (wsi && client_.state() == State::Connecting) wsi_ = wsi;
}

int Hdb3Source::onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept {
  try {
    return onEvent(wsi, reason, in, len);
  } catch (const std::exception& e) {
    spdlog::error("{}: internal error: {}", name_, e.what());
    return -1;
  }
}

int Hdb3Source::onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      wsi_ = wsi;
      onEstablished();
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      return onReceive(wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return onWriteable(wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      onPeerClose(in, len);
      return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      lost(wsi, in ? printable(static_cast<const char*>(in)) : std::string("connection failed"));
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
      // Without a close frame or #disconnect (closeCode_ stays 0) this is HarperDB
      // stopping, restarting or crashing: SocketCluster calls it 1006.
      lost(wsi, "connection lost without a close frame (1006)");
      return 0;
    default:
      return 0;
  }
}

void Hdb3Source::onEstablished() {
  ++stats_.connects;
  phase_ = Phase::LoggingIn;
  client_.setState(State::Open);
  lastReceive_ = std::chrono::steady_clock::now();
  checkLiveness();
  handshakeCid_ = nextCid_++;
  send(sc::handshake(handshakeCid_));
  stepTimer_.start(kLoginTimeout, [this] {
    abandon(fmt::format("no login answer within {} (is this the clustering port of a HarperDB 3 server?)",
                        seconds(kLoginTimeout)),
            false);
  });
}

int Hdb3Source::onReceive(lws* wsi, const void* in, size_t len) {
  if (!dropMessage_) {
    // HarperDB 3 publishes all records of one operation in one message: the
    // limit (max_message_bytes) must fit the biggest operation.
    if (message_.size() + len > server_.maxMessageBytes) {
      ++stats_.malformed;
      ++stats_.oversized;
      spdlog::error("{}: message larger than {} bytes (max_message_bytes); dropping it and resetting the "
                    "connection ({} so far){}", name_, server_.maxMessageBytes, stats_.oversized,
                    phase_ == Phase::CatchingUp ? "; a catchup answer holds every change since the checkpoint in "
                                                  "one message: raise max_message_bytes to resume"
                                                : "");
      dropMessage_ = true;
      message_.clear();
      message_.shrink_to_fit();
      abandon("a message was too large", false);
      return -1;
    }
    message_.append(static_cast<const char*>(in), len);
  }
  if (!lws_is_final_fragment(wsi)) return 0;
  lastReceive_ = std::chrono::steady_clock::now();
  if (lws_frame_is_binary(wsi)) {
    ++stats_.malformed;
    logMalformed(fmt::format("unexpected binary message of {} bytes", message_.size()));
  } else if (!dropMessage_) {
    onMessage();
  }
  dropMessage_ = false;
  // Keep the buffer warm for the next message unless one huge message grew it.
  if (message_.capacity() > (1u << 20)) std::string().swap(message_);
  message_.clear();
  return abandonProblem_.empty() ? 0 : -1;
}

void Hdb3Source::onMessage() {
  ++stats_.frames;
  json::reservePadding(message_);
  packets_.clear();
  std::string error;
  if (parser_.parse(message_, packets_, error) > 0) {
    ++stats_.malformed;
    logMalformed(fmt::format("malformed packet in a message of {} bytes: {}", message_.size(), error));
  }
  for (const sc::Packet& p : packets_) {
    if (!abandonProblem_.empty() || client_.state() == State::Closing) break;
    onPacket(p);
  }
}

void Hdb3Source::onPacket(const sc::Packet& p) {
  switch (p.type) {
    case sc::PacketType::Ping:
      if (!pongQueued_) {
        pongQueued_ = true;
        send(sc::pong());
      }
      return;
    case sc::PacketType::Pong:
      return;
    case sc::PacketType::Ack:
      onAck(p);
      return;
    case sc::PacketType::Event:
      break;
  }
  if (p.event == sc::kPublish) {
    onPublish(p);
  } else if (p.event == sc::kLogin) {
    // The server asks for credentials; the ack of its event carries them.
    if (p.cid == 0) {
      ++stats_.malformed;
      return logMalformed("a login request without a cid cannot be answered");
    }
    send(sc::loginAck(p.cid, server_.username, server_.password));
  } else if (p.event == sc::kSetAuthToken) {
    if (!authenticated_) onAuthenticated();
  } else if (p.event == sc::kDisconnect) {
    // The close frame follows; its code is the same one.
    sc::Disconnect d;
    std::string error;
    if (!parser_.disconnect(p.data, d, error)) {
      ++stats_.malformed;
      return logMalformed(error);
    }
    closeCode_ = d.code;
    closeReason_ = printable(d.reason);
  } else if (p.event == sc::kKickOut) {
    abandon(fmt::format("the server removed us from a channel ({})", printable(p.data)), false);
  } else {
    ++stats_.ignored;
    uint64_t held = 0;
    if (ignoredLog_.allow(held))
      spdlog::debug("{}: ignoring event {} ({} similar not logged)", name_, printable(p.event, 60), held);
  }
}

void Hdb3Source::onAck(const sc::Packet& p) {
  if (p.rid == handshakeCid_) {
    if (!p.error.empty()) return abandon("the server refused the handshake: " + printable(p.error), false);
    sc::HandshakeAck ack;
    std::string error;
    if (!parser_.handshakeAck(p.data, ack, error)) {
      ++stats_.malformed;
      return logMalformed(error);
    }
    if (ack.pingTimeoutMs > 0) {
      // The server pings on its own schedule (a SocketCluster client cannot ask it to), so
      // silence shorter than its pingTimeout proves nothing: liveness_timeout can only lengthen it.
      auto declared = std::clamp(std::chrono::milliseconds(ack.pingTimeoutMs), kMinPingTimeout, kMaxPingTimeout);
      pingTimeout_ = std::max(declared, server_.livenessTimeout);
      checkLiveness();
    }
    spdlog::debug("{}: handshake done (socket {}, ping timeout {})", name_, printable(ack.id, 40),
                  seconds(pingTimeout_));
    return;
  }
  auto caught = std::find_if(channels_.begin(), channels_.end(),
                             [&](const Channel& c) { return c.catchupCid != 0 && c.catchupCid == p.rid; });
  if (caught != channels_.end()) return onCatchup(*caught, p);
  auto ch = std::find_if(channels_.begin(), channels_.end(),
                         [&](const Channel& c) { return c.subscribeCid == p.rid; });
  if (ch == channels_.end()) {
    ++stats_.ignored;
    uint64_t held = 0;
    if (ignoredLog_.allow(held))
      spdlog::debug("{}: ignoring an ack for cid {} ({} similar not logged)", name_, p.rid, held);
    return;
  }
  if (!p.error.empty())
    return abandon(fmt::format("the server refused the subscription to channel '{}': {}", ch->name,
                               printable(p.error)),
                   true);
  ch->subscribed = true;
  if (std::all_of(channels_.begin(), channels_.end(), [](const Channel& c) { return c.subscribed; }))
    onAllSubscribed();
}

void Hdb3Source::onAuthenticated() {
  // The token itself is of no use to us: every connection logs in afresh.
  authenticated_ = true;
  phase_ = Phase::Subscribing;
  for (Channel& ch : channels_) {
    ch.subscribeCid = nextCid_++;
    send(sc::subscribe(ch.subscribeCid, ch.name));
  }
  stepTimer_.start(kSubscribeTimeout, [this] {
    abandon(fmt::format("no answer to the subscriptions within {}", seconds(kSubscribeTimeout)), false);
  });
}

void Hdb3Source::onPublish(const sc::Packet& p) {
  sc::Publish pub;
  std::string why;
  if (!parser_.publish(p.data, pub, why)) {
    ++stats_.malformed;
    return logMalformed(why);
  }
  auto ch = std::find_if(channels_.begin(), channels_.end(), [&](const Channel& c) { return c.name == pub.channel; });
  if (ch == channels_.end()) {
    // SocketCluster publishes only on channels a socket subscribed to: this server is confused.
    ++stats_.ignored;
    return logMalformed(fmt::format("ignoring a message on channel '{}', which we did not subscribe to",
                                    printable(pub.channel, 60)));
  }
  if (ch->catchupCid == 0) return deliver(*ch, pub.data, parser_.bufferEnd(), message_);
  // Catching up: this waits until the answer is delivered.
  if (ch->heldBytes + message_.size() > kHeldLimit * server_.maxMessageBytes)
    return abandon(fmt::format("channel '{}': more than {} bytes of live changes arrived during the catch-up",
                               ch->name, ch->heldBytes),
                   false);
  Held& h = ch->held.emplace_back();
  h.message = message_;
  json::reservePadding(h.message);
  h.dataOffset = size_t(pub.data.data() - message_.data());
  h.dataSize = pub.data.size();
  ch->heldBytes += message_.size();
}

void Hdb3Source::deliver(Channel& ch, std::string_view data, const char* bufferEnd, std::string_view raw) {
  std::string why;
  lines_.clear();
  auto outcome = mapper_.map(data, bufferEnd, ch.config->primaryKey, ch.envelope, lines_, why);
  if (outcome == Hdb3TxnMapper::Outcome::Mapped && !lines_.empty()) {
    const Hdb3Transaction& txn = mapper_.transaction();
    if (alreadyDelivered(ch, txn.timestamp)) {
      ++stats_.duplicates;
      return;
    }
    // One Change per record, so sinks apply ops: and format: (raw: the message once).
    changes_.clear();
    for (size_t i = 0; i < lines_.size(); ++i)
      changes_.push_back(Change{txn.operation, lines_[i], txn.changes[i].record});
    ch.route.publish(changes_, raw);
    stats_.records += lines_.size();
    advance(ch, txn.timestamp, lines_.size());
    // It may be the echo of a write of ours (after the feed got it: it is a change like any other).
    if (ch.writer) ch.writer->onTransaction(txn);
  }
  switch (outcome) {
    case Hdb3TxnMapper::Outcome::Mapped:
      if (!why.empty()) {
        ++stats_.malformed;
        logMalformed(fmt::format("channel '{}': {}", ch.name, why));
      }
      return;
    case Hdb3TxnMapper::Outcome::Ignored: {
      ++stats_.ignored;
      uint64_t held = 0;
      if (ignoredLog_.allow(held))
        spdlog::debug("{}: channel '{}': ignoring {} ({} similar not logged)", name_, ch.name, why, held);
      return;
    }
    case Hdb3TxnMapper::Outcome::Malformed:
      ++stats_.malformed;
      logMalformed(fmt::format("channel '{}': dropped a transaction: {}", ch.name, why));
      return;
  }
}

void Hdb3Source::logMalformed(const std::string& what) {
  uint64_t held = 0;
  if (malformedLog_.allow(held)) spdlog::warn("{}: {} ({} similar not logged)", name_, what, held);
}

void Hdb3Source::send(std::string text) {
  if (!wsi_) return;
  // Each writable table may have up to kHdb3MaxPendingWrites publishes on their way.
  auto writable = size_t(
      std::count_if(channels_.begin(), channels_.end(), [](const Channel& c) { return c.writer != nullptr; }));
  if (outbox_.size() >= 2 * channels_.size() + kOutboxSlack + writable * kHdb3MaxPendingWrites) {
    abandon("the server does not read what we send", false);
    return;
  }
  std::string framed(LWS_PRE, '\0');
  framed += text;
  std::fill(text.begin(), text.end(), '\0');
  outbox_.push_back(std::move(framed));
  lws_callback_on_writable(wsi_);
}

int Hdb3Source::onWriteable(lws* wsi) {
  if (!abandonProblem_.empty()) return -1;
  if (!outbox_.empty()) {
    std::string& m = outbox_.front();
    size_t len = m.size() - LWS_PRE;
    bool pong = len == 2 && m.compare(LWS_PRE, 2, "#2") == 0;
    int n = lws_write(wsi, reinterpret_cast<unsigned char*>(m.data()) + LWS_PRE, len, LWS_WRITE_TEXT);
    std::fill(m.begin(), m.end(), '\0');
    outbox_.pop_front();
    if (pong) pongQueued_ = false;
    if (n < static_cast<int>(len)) return -1;
    if (!outbox_.empty()) {
      lws_callback_on_writable(wsi);
      return 0;
    }
  }
  if (client_.state() == State::Closing) {
    static constexpr char kBye[] = "bridge stopping";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, reinterpret_cast<unsigned char*>(const_cast<char*>(kBye)),
                     sizeof kBye - 1);
    return -1;
  }
  return 0;
}

void Hdb3Source::checkLiveness() {
  if (!wsi_ || client_.state() == State::Closing) return;
  auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - lastReceive_);
  if (silent >= pingTimeout_) {
    ++stats_.timeouts;
    abandon(fmt::format("nothing received for {} (the server's ping timeout); the connection is dead",
                        seconds(silent)),
            false);
    return;
  }
  livenessTimer_.start(pingTimeout_ - silent + 1ms, [this] { checkLiveness(); });
}

void Hdb3Source::onPeerClose(const void* in, size_t len) {
  const auto* bytes = static_cast<const unsigned char*>(in);
  if (len >= 2) {
    closeCode_ = (bytes[0] << 8) | bytes[1];
    if (len > 2) closeReason_ = printable(std::string_view(reinterpret_cast<const char*>(bytes) + 2, len - 2));
  }
}

void Hdb3Source::abandon(std::string problem, bool refused) {
  if (!abandonProblem_.empty()) return;
  abandonProblem_ = std::move(problem);
  abandonRefused_ = refused;
  stepTimer_.cancel();
  livenessTimer_.cancel();
  // Closed from the loop rather than from inside whatever callback we are in.
  if (wsi_) lws_set_timeout(wsi_, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

void Hdb3Source::lost(lws* wsi, const std::string& why) {
  if (wsi) lws_set_opaque_user_data(wsi, nullptr);  // no more callbacks for this one
  wsi_ = nullptr;
  // Writes still waiting for their echo will not get it on another connection.
  bool stopping = client_.state() == State::Closing || client_.state() == State::Stopped || loop_.closing();
  for (Channel& ch : channels_)
    if (ch.writer) ch.writer->connectionLost(stopping);
  stepTimer_.cancel();
  livenessTimer_.cancel();
  for (auto& m : outbox_) std::fill(m.begin(), m.end(), '\0');
  outbox_.clear();
  if (client_.finished()) return;
  ++stats_.drops;

  bool refused = false;
  std::string problem;
  std::string detail = closeCode_ ? fmt::format("close {} ({}){}{}", closeCode_, sc::describeCloseCode(closeCode_),
                                                closeReason_.empty() ? "" : ": ", closeReason_)
                                  : why;
  if (!abandonProblem_.empty()) {
    problem = abandonProblem_;
    refused = abandonRefused_;
  } else if (client_.state() == State::Open && phase_ == Phase::LoggingIn && closeCode_ == 1000) {
    // HarperDB 3 answers bad credentials (unknown user or wrong password) by
    // closing with 1000 right after the handshake, without a word.
    problem = fmt::format("authentication failed as user '{}' at {} (the server closed the connection with 1000 "
                          "before accepting the login)",
                          server_.username, server_.urlText);
    refused = true;
  } else if (wsi && client_.state() == State::Connecting &&
             connectTimedOut(why, std::chrono::steady_clock::now() - opened_)) {
    ++stats_.timeouts;
    problem = fmt::format("no answer from {} within {} s: a TCP connect, TLS handshake or WebSocket upgrade that "
                          "stalled ({})",
                          server_.urlText, kLwsConnectTimeout.count(), why);
  } else if (client_.state() == State::Connecting && why.find("SSL") != std::string::npos) {
    problem = fmt::format("TLS handshake with {} failed ({}); HarperDB 3 uses its own self-signed certificate: "
                          "give it as tls: {{ca_file: ...}}, or set tls: {{verify: false}}",
                          server_.urlText, why);
  } else {
    problem = detail;
  }
  client_.retryLater(problem, refused);
}

void Hdb3Source::shutdown() {
  stepTimer_.cancel();
  livenessTimer_.cancel();
  bool open = client_.state() == State::Open || client_.state() == State::Subscribed;
  // SocketCluster's goodbye: #disconnect, then the close frame (in onWriteable).
  if (open) send(sc::disconnect(LWS_CLOSE_STATUS_GOINGAWAY, "bridge stopping"));
  if (client_.shutdown(wsi_) && wsi_) lws_callback_on_writable(wsi_);
}

const char* Hdb3Source::stateName() const {
  switch (client_.state()) {
    case State::Idle: return "idle";
    case State::Connecting: return "connecting";
    case State::Open:
      switch (phase_) {
        case Phase::LoggingIn: return "logging_in";
        case Phase::Subscribing: return "subscribing";
        case Phase::CatchingUp: return "catching_up";
      }
      return "unknown";
    case State::Subscribed: return "subscribed";
    case State::Waiting: return "waiting";
    case State::Closing: return "closing";
    case State::Stopped: return "stopped";
  }
  return "unknown";
}

TableWriter* Hdb3Source::writer(std::string_view key) {
  for (Channel& ch : channels_)
    if (ch.writer && ch.envelope.tableKey() == key) return ch.writer.get();
  return nullptr;
}

// Subscribed means caught up: the catch-up runs before (State::Open, Phase::CatchingUp).
void Hdb3Source::tableStats(std::vector<TableStats>& out) const {
  for (const Channel& ch : channels_)
    out.push_back({ch.config, subscribed(), false, ch.records, ch.lastChange, ch.checkpoint->written});
}

}  // namespace hdb
