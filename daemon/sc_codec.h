// SocketCluster v14 packets, as HarperDB 3.x speaks them on its clustering port
// (../shared/docs/harperdb-feeds.md, "HarperDB 3.3"). Pure: no lws, no I/O.
//
//   event   {"event":E,"data":D[,"cid":N]}     N: the sender wants an ack
//   ack     {"rid":N[,"data":D][,"error":X]}   answers the event whose cid was N
//   ping    #1 (bare text; the answer is #2)
// A message is one packet or a JSON array of packets.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hdb::sc {

enum class PacketType { Ping, Pong, Event, Ack };

struct Packet {
  PacketType type = PacketType::Event;
  // Event: the name. Names this client acts on are static strings; any other
  // name is its raw JSON token (quoted), inside the message.
  std::string_view event;
  int64_t cid = 0;        // Event: 0 when the peer wants no ack
  int64_t rid = 0;        // Ack
  std::string_view data;  // raw JSON (validated), inside the message; empty when absent
  std::string_view error; // Ack: raw JSON of "error"; empty when absent
};

// Event names this client knows.
inline constexpr std::string_view kLogin = "login";
inline constexpr std::string_view kSetAuthToken = "#setAuthToken";
inline constexpr std::string_view kRemoveAuthToken = "#removeAuthToken";
inline constexpr std::string_view kPublish = "#publish";
inline constexpr std::string_view kDisconnect = "#disconnect";
inline constexpr std::string_view kKickOut = "#kickOut";
inline constexpr std::string_view kHandshake = "#handshake";
inline constexpr std::string_view kSubscribe = "#subscribe";
inline constexpr std::string_view kUnsubscribe = "#unsubscribe";

// The data of a #publish event.
struct Publish {
  std::string_view channel;  // unescaped; valid until the parser's next call
  std::string_view data;     // raw JSON (validated) of the published value, inside the message
};

// The data of the handshake ack.
struct HandshakeAck {
  std::string_view id;        // socket id, unescaped; valid until the parser's next call
  int64_t pingTimeoutMs = 0;  // 0 when absent
  bool isAuthenticated = false;
};

// The data of a #disconnect event (the close code and reason the server is about to send).
struct Disconnect {
  int code = 0;
  std::string_view reason;  // unescaped; valid until the parser's next call
};

// Parses messages; one per connection keeps simdjson's buffers warm.
class PacketParser {
 public:
  // Appends the packets of `message` to `out`. `message` must have SIMDJSON_PADDING
  // bytes of capacity past its size (json::reservePadding) and must not change while
  // the packets are used. Returns the number of malformed packets skipped (or 1 when
  // the whole message is unreadable); `error` then tells what was wrong with the first.
  size_t parse(const std::string& message, std::vector<Packet>& out, std::string& error);

  // Readers for the data of packets from the last parse() (the views point into its message).
  bool publish(std::string_view data, Publish& out, std::string& error);
  bool handshakeAck(std::string_view data, HandshakeAck& out, std::string& error);
  bool disconnect(std::string_view data, Disconnect& out, std::string& error);

  // Where the allocation of the last parsed message ends (sub-documents are parsed in place).
  const char* bufferEnd() const { return bufferEnd_; }

 private:
  bool inMessage(std::string_view data) const;

  simdjson::ondemand::parser parser_;
  const char* bufferBegin_ = nullptr;
  const char* bufferEnd_ = nullptr;
};

// Client packets. Each returns the text of one WebSocket text message.
std::string handshake(int64_t cid);
// The ack of the server's `login` event. Holds the password: never log it.
std::string loginAck(int64_t rid, std::string_view username, std::string_view password);
std::string subscribe(int64_t cid, std::string_view channel);
// HarperDB's catchup RPC: the channel's transactions of the last `millis` ms (by the
// server's clock), answered in the ack (Hdb3TxnMapper::mapCatchup).
std::string catchup(int64_t cid, std::string_view channel, int64_t millis);
std::string disconnect(int code, std::string_view reason);
// A write, as the original harperdb-websocket-client sent it: a #publish (no cid)
// on `channel` of {"type":"HDB_TRANSACTION","schema":S,"table":T,"transaction":
// {"operation":OP,"schema":S,"table":T,<itemsKey>:ITEMS}}. `items` is valid JSON
// (an array of records, or of ids with itemsKey "hash_values").
std::string publishTransaction(std::string_view channel, std::string_view schema, std::string_view table,
                               std::string_view operation, std::string_view itemsKey, std::string_view items);
inline std::string pong() { return "#2"; }

// What a WebSocket/SocketCluster close code means, for a log line.
std::string_view describeCloseCode(int code);

}  // namespace hdb::sc
