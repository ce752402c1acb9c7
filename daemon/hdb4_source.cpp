#include "hdb4_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "percent_encode.h"

namespace hdb {

namespace {

using namespace std::chrono_literals;

// HarperDB answers every upgrade with 101 and refuses afterwards with a close
// frame (3000, 3003, 1011) within milliseconds; a connection that is still open
// after this long counts as subscribed.
constexpr auto kSettleTime = 300ms;


double nowMillis() {
  using namespace std::chrono;
  return double(duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()) / 1000.0;
}

// Like HarperDB's localTime: milliseconds with a fraction.
std::string formatMillis(double ms) { return fmt::format("{:.3f}", ms); }

}  // namespace

Hdb4Source::Hdb4Source(EventLoop& loop, const ServerConfig& server, const TableConfig& table,
                       Fanout::Route route, CheckpointBook::Entry& checkpoint,
                       std::function<void()> onStateChange)
    : loop_(loop),
      server_(server),
      table_(table),
      name_(table.key() + " on server '" + server.name + "'"),
      envelope_(server.name, table.database, table.table),
      route_(std::move(route)),
      checkpoint_(checkpoint),
      client_(loop, name_, server.url.host, [this](const std::string& a, const std::string& e) { open(a, e); },
              std::move(onStateChange)),
      writer_(table.writable ? std::make_unique<Hdb4Writer>(loop, server, table) : nullptr),
      settleTimer_(loop) {
  char buf[512];
  if (lws_http_basic_auth_gen(server.username.c_str(), server.password.c_str(), buf, sizeof buf) == 0)
    authHeader_ = buf;
  std::memset(buf, 0, sizeof buf);
}

Hdb4Source::~Hdb4Source() {
  settleTimer_.cancel();
  if (wsi_) lws_set_opaque_user_data(wsi_, nullptr);
}

void Hdb4Source::start() {
  if (!checkpoint_.cursor.empty()) {
    double age = nowMillis() - std::strtod(checkpoint_.cursor.c_str(), nullptr);
    spdlog::info("{}: resuming after checkpoint {} ({} old)", name_, checkpoint_.cursor,
                 seconds(std::chrono::milliseconds(int64_t(age))));
    // Published once subscribed (onSettled), not now: nothing has served the sinks yet, so no Unix
    // consumer can be connected to receive it; by the first subscription one can.
    if (age > double(server_.historyRetention.count()))
      pendingGap_ = fmt::format("the checkpoint is older than the server's history ({} > history_retention {}); "
                                "changes before what the server still has are lost",
                                seconds(std::chrono::milliseconds(int64_t(age))), seconds(server_.historyRetention));
  }
  if (authHeader_.empty()) {
    spdlog::error("{}: credentials too long for a Basic authorization header", name_);
    client_.setState(State::Stopped);
    return;
  }
  client_.connect();
}

std::string Hdb4Source::planConnection() {
  std::string path = server_.url.path;
  if (path.empty() || path.back() != '/') path.push_back('/');
  path.append(percentEncode(table_.database, Escape::UrlPath)).append("/");
  path.append(percentEncode(table_.table, Escape::UrlPath)).append("/");
  snapshotConnection_ = false;
  resumeIgnored_ = false;
  resumeFrom_.clear();
  connectedSince_ = formatMillis(nowMillis());

  if (!checkpoint_.cursor.empty()) {
    // Everything after the last delivered change, then live; no snapshot.
    resumeFrom_ = checkpoint_.cursor;
  } else if (table_.start == StartMode::History && !snapshotDone_) {
    resumeFrom_ = formatMillis(nowMillis() - double(table_.history.count()));
  } else if (table_.start == StartMode::Snapshot && !snapshotDone_) {
    // Without omitCurrent the server first sends every current record.
    snapshotConnection_ = true;
    return path;
  } else {
    return path + "?omitCurrent=true";
  }
  resumeValue_ = std::strtod(resumeFrom_.c_str(), nullptr);
  return path + "?startTime=" + resumeFrom_;
}

void Hdb4Source::open(const std::string& address, const std::string& error) {
  if (!error.empty()) return lost(nullptr, error);
  std::string path = planConnection();
  closeCode_ = 0;
  closeReason_.clear();
  message_.clear();
  dropMessage_ = false;

  // lws counts a connection as alive while frames or pongs arrive; HarperDB
  // never pings, so we do, and hang up on a connection silent for too long.
  auto timeoutSecs = std::max<int64_t>(2, std::chrono::duration_cast<std::chrono::seconds>(server_.livenessTimeout).count());
  retryPolicy_ = lws_retry_bo_t{};
  retryPolicy_.secs_since_valid_ping = static_cast<uint16_t>(std::min<int64_t>(timeoutSecs / 2, 65535));
  retryPolicy_.secs_since_valid_hangup = static_cast<uint16_t>(std::min<int64_t>(timeoutSecs, 65535));

  lws_client_connect_info ci{};
  ci.context = loop_.context();
  ci.vhost = loop_.clientVhost(server_.name);
  ci.address = address.c_str();
  ci.port = server_.url.port;
  ci.host = server_.url.host.c_str();  // Host header, SNI and the certificate's name
  ci.origin = ci.host;
  ci.path = path.c_str();
  ci.retry_and_idle_policy = &retryPolicy_;
  ci.local_protocol_name = kHdb4ProtocolName;
  ci.opaque_user_data = opaque();
  if (server_.url.tls) {
    ci.ssl_connection = LCCSCF_USE_SSL;
    if (!server_.tls.verify)
      ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                           LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
  }
  spdlog::debug("{}: connecting to {}://{}:{}{} ({})", name_, server_.url.tls ? "wss" : "ws", server_.url.host,
                server_.url.port, path, address);
  opened_ = std::chrono::steady_clock::now();
  lws* wsi = lws_client_connect_via_info(&ci);
  // A failure may already have been reported through CLIENT_CONNECTION_ERROR.
  if (!wsi && client_.state() == State::Connecting) lost(nullptr, "cannot start a connection");
  else if (wsi && client_.state() == State::Connecting) wsi_ = wsi;
}

int Hdb4Source::onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept {
  try {
    return onEvent(wsi, reason, in, len);
  } catch (const std::exception& e) {
    spdlog::error("{}: internal error: {}", name_, e.what());
    return -1;
  }
}

int Hdb4Source::onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      auto** p = static_cast<unsigned char**>(in);
      unsigned char* end = *p + len;
      if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                       reinterpret_cast<const unsigned char*>(authHeader_.data()),
                                       static_cast<int>(authHeader_.size()), p, end))
        return -1;
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      wsi_ = wsi;
      onEstablished();
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      lastTraffic_ = std::chrono::steady_clock::now();
      // lws counts liveness from the last pong only; a frame proves it as well,
      // so the timeout runs from the last traffic of either kind.
      lws_validity_confirmed(wsi);
      return onReceive(wsi, in, len);
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
      lastTraffic_ = std::chrono::steady_clock::now();
      return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      // The only thing we ever write is the close frame set up in shutdown().
      return client_.state() == State::Closing ? -1 : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      onPeerClose(in, len);
      return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      lost(wsi, in ? printable(static_cast<const char*>(in)) : std::string("connection failed"));
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
      lost(wsi, "connection closed");
      return 0;
    default:
      return 0;
  }
}

void Hdb4Source::onEstablished() {
  ++stats_.connects;
  lastTraffic_ = std::chrono::steady_clock::now();
  client_.setState(State::Open);
  settleTimer_.start(kSettleTime, [this] { onSettled(); });
}

void Hdb4Source::onSettled() {
  if (client_.state() != State::Open) return;
  settleTimer_.cancel();
  std::string lastProblem = client_.succeeded();
  snapshotDone_ = true;
  // Nothing delivered yet: remember when this subscription started, so a drop
  // before the first change still resumes without a hole.
  if (checkpoint_.cursor.empty()) checkpoint_.set(connectedSince_);
  // Before the first replayed change (onReceive settles before handling a frame).
  if (!pendingGap_.empty()) {
    publishGap("history_expired", pendingGap_);
    pendingGap_.clear();
  }
  if (!lastProblem.empty())
    spdlog::info("{}: subscribed again (last problem: {})", name_, lastProblem);
  else
    spdlog::info("{}: subscribed", name_);
  client_.setState(State::Subscribed);
}

int Hdb4Source::onReceive(lws* wsi, const void* in, size_t len) {
  if (client_.state() == State::Open) onSettled();
  if (!dropMessage_) {
    // A message bigger than this is not a record change: drop it and reset the connection.
    if (message_.size() + len > server_.maxMessageBytes) {
      ++stats_.malformed;
      ++stats_.oversized;
      spdlog::error("{}: message larger than {} bytes (max_message_bytes); dropping it and resetting the "
                    "connection ({} so far)", name_, server_.maxMessageBytes, stats_.oversized);
      dropMessage_ = true;
      message_.clear();
      message_.shrink_to_fit();
      return -1;
    }
    message_.append(static_cast<const char*>(in), len);
  }
  if (!lws_is_final_fragment(wsi)) return 0;
  if (lws_frame_is_binary(wsi)) {
    ++stats_.malformed;
    uint64_t held = 0;
    if (malformedLog_.allow(held))
      spdlog::warn("{}: unexpected binary message of {} bytes dropped ({} similar not logged)", name_,
                   message_.size(), held);
  } else if (!dropMessage_) {
    onMessage();
  }
  dropMessage_ = false;
  // Keep the buffer warm for the next message unless one huge message grew it.
  if (message_.capacity() > (1u << 20)) std::string().swap(message_);
  message_.clear();
  return 0;
}

void Hdb4Source::onMessage() {
  ++stats_.frames;
  reservePadding(message_);
  Hdb4Change change;
  std::string error;
  if (!parser_.parse(message_, change, error)) {
    ++stats_.malformed;
    uint64_t held = 0;
    if (malformedLog_.allow(held))
      spdlog::warn("{}: dropped a malformed frame of {} bytes: {} ({} similar not logged)", name_,
                   message_.size(), error, held);
    return;
  }
  if (change.hasSize) lastReplayFrame_ = std::chrono::steady_clock::now();
  std::string_view op = change.type;
  if (change.hasSize && !resumeFrom_.empty() && !resumeIgnored_ && alreadyDelivered(change.localTime)) {
    // A replay never goes back to or before startTime; a record this old is
    // the table's current content: the server ignored startTime.
    resumeIgnored_ = true;
    publishGap("resume_ignored",
               "the server ignored startTime and sent the table's current records instead of the changes since "
               "the checkpoint; is the table exported by the hdb-bridge component (hdb-bridge install-component)?");
  }
  bool snapshot = change.hasSize && (snapshotConnection_ || resumeIgnored_);
  if (snapshot) {
    op = "snapshot";
  } else if (!resumeFrom_.empty() && alreadyDelivered(change.localTime)) {
    ++stats_.duplicates;
    return;
  }
  std::string_view record = change.type == "delete" ? std::string_view{} : change.value;
  EnvelopeFields fields;
  fields.op = op;
  fields.id = change.id;
  fields.ts = change.version;
  fields.cursor = change.localTime;
  fields.record = record;
  route_.publish(Change{op, route_.wantsEnvelope() ? envelope_.write(fields) : nullptr, record}, message_);
  ++stats_.records;
  lastChange_ = std::chrono::system_clock::now();
  // Snapshot records are not in localTime order: they never move the cursor.
  if (!snapshot) checkpoint_.set(change.localTime);
}

bool Hdb4Source::alreadyDelivered(std::string_view localTime) const {
  // Cursors are compared as the numbers they are; equal text is an equal double.
  double value = std::strtod(std::string(localTime).c_str(), nullptr);
  return value <= resumeValue_;
}

void Hdb4Source::publishGap(std::string_view reason, const std::string& message) {
  ++stats_.gaps;
  spdlog::warn("{}: gap: {}", name_, message);
  route_.publish(envelope_.gap(reason, checkpoint_.cursor, message));
}

void Hdb4Source::onPeerClose(const void* in, size_t len) {
  const auto* bytes = static_cast<const unsigned char*>(in);
  if (len >= 2) {
    closeCode_ = (bytes[0] << 8) | bytes[1];
    closeReason_ = printable(std::string_view(reinterpret_cast<const char*>(bytes) + 2, len - 2));
  }
}

void Hdb4Source::lost(lws* wsi, const std::string& why) {
  if (wsi) lws_set_opaque_user_data(wsi, nullptr);  // no more callbacks for this one
  bool wasOpen = client_.state() == State::Open || client_.state() == State::Subscribed;
  bool stalled = wsi && client_.state() == State::Connecting &&
                 connectTimedOut(why, std::chrono::steady_clock::now() - opened_);
  wsi_ = nullptr;
  settleTimer_.cancel();
  if (client_.finished()) return;
  ++stats_.drops;

  // Refusals that retrying quickly cannot fix (credentials, permissions, a table
  // that is not exported) back off like authentication failures.
  bool refused = true;
  std::string problem;
  std::string detail = closeCode_ ? fmt::format("close {}{}{}", closeCode_, closeReason_.empty() ? "" : ": ",
                                                closeReason_)
                                  : why;
  // lws hangs up a silent connection without saying so; tell it apart by the clock.
  auto silent = std::chrono::steady_clock::now() - lastTraffic_;
  if (!closeCode_ && wasOpen && silent >= server_.livenessTimeout * 9 / 10) {
    ++stats_.timeouts;
    detail = fmt::format("no frame or pong for {} (liveness_timeout)",
                         seconds(std::chrono::duration_cast<std::chrono::milliseconds>(silent)));
  } else if (!closeCode_ && stalled) {
    ++stats_.timeouts;
    detail = fmt::format("no answer within {} s: a TCP connect, TLS handshake or WebSocket upgrade that stalled ({})",
                         kLwsConnectTimeout.count(), why);
  }
  if (closeCode_ == 3000 || why.find("unauthorized") != std::string::npos) {
    problem = fmt::format("authentication failed as user '{}' ({})", server_.username, detail);
  } else if (closeCode_ == 3003) {
    problem = fmt::format("user '{}' may not read this table ({})", server_.username, detail);
  } else if (closeCode_ == 1011) {
    problem = fmt::format("the server does not serve this table ({}); is it exported by a component?", detail);
  } else {
    refused = false;
    problem = detail;
  }
  client_.retryLater(problem, refused);
}

void Hdb4Source::shutdown() {
  settleTimer_.cancel();
  if (client_.shutdown(wsi_) && wsi_) {
    static constexpr char kBye[] = "bridge stopping";
    lws_close_reason(wsi_, LWS_CLOSE_STATUS_GOINGAWAY, reinterpret_cast<unsigned char*>(const_cast<char*>(kBye)),
                     sizeof kBye - 1);
    lws_callback_on_writable(wsi_);
  }
}

const char* Hdb4Source::stateName() const {
  switch (client_.state()) {
    case State::Idle: return "idle";
    case State::Connecting: return "connecting";
    case State::Open: return "settling";
    case State::Subscribed: return "subscribed";
    case State::Waiting: return "waiting";
    case State::Closing: return "closing";
    case State::Stopped: return "stopped";
  }
  return "unknown";
}

TableWriter* Hdb4Source::writer(std::string_view key) {
  return key == table_.key() ? writer_.get() : nullptr;
}

void Hdb4Source::tableStats(std::vector<TableStats>& out) const {
  // HarperDB marks replayed changes (`size`) but not the end of the replay:
  // a second without one means the replay is over.
  bool replaying = subscribed() && lastReplayFrame_ != std::chrono::steady_clock::time_point{} &&
                   std::chrono::steady_clock::now() - lastReplayFrame_ < std::chrono::seconds(1);
  out.push_back({&table_, subscribed(), replaying, stats_.records, lastChange_, checkpoint_.written});
}

}  // namespace hdb
