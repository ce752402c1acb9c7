#include "sc_codec.h"

#include "envelope.h"  // appendJsonString
#include "json_util.h"

namespace hdb::sc {
namespace {

namespace od = simdjson::ondemand;

constexpr std::string_view kKnownEvents[] = {kLogin,   kSetAuthToken, kRemoveAuthToken, kPublish,    kDisconnect,
                                             kKickOut, kHandshake,    kSubscribe,       kUnsubscribe};

// Known names as static strings: the parser's string buffer is overwritten by its next call.
std::string_view internEvent(std::string_view name) {
  for (auto k : kKnownEvents)
    if (k == name) return k;
  return {};
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  return json::trimRight(s);
}

// A packet-level problem: `code` is set when the JSON itself is broken (the rest of
// the message cannot be trusted), `what` says which part.
struct Fault {
  const char* what = nullptr;
  simdjson::error_code code = simdjson::SUCCESS;
};

std::string describe(const Fault& f) {
  std::string s = f.what;
  if (f.code != simdjson::SUCCESS) {
    s += ": ";
    s += simdjson::error_message(f.code);
  }
  return s;
}

bool fail(std::string& error, const char* what, simdjson::error_code e = simdjson::SUCCESS) {
  error = describe({what, e});
  return false;
}

bool positiveId(od::value v, int64_t& out) {
  int64_t n = 0;
  if (v.get_int64().get(n) || n < 1) return false;
  out = n;
  return true;
}

// `docEnd`: where the message text ends (the values copied out are checked by
// json::scanValue, once).
Fault parsePacket(od::object obj, const char* docEnd, Packet& p) {
  bool haveEvent = false, haveRid = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return {"bad key", e};
    od::value v;
    if (auto e = field.value().get(v)) return {"bad value", e};
    if (key == "event") {
      std::string_view raw = json::trimRight(v.raw_json_token());
      std::string_view name;
      if (auto e = v.get_string().get(name)) return {"\"event\" is not a string", e == simdjson::INCORRECT_TYPE ? simdjson::SUCCESS : e};
      p.event = internEvent(name);
      if (p.event.empty()) p.event = raw;
      haveEvent = true;
    } else if (key == "data" || key == "error") {
      std::string_view span;
      if (auto e = json::scannedSpan(v, docEnd, span)) return {key == "data" ? "bad \"data\"" : "bad \"error\"", e};
      (key == "data" ? p.data : p.error) = span;
    } else if (key == "cid") {
      if (!positiveId(v, p.cid)) return {"\"cid\" is not a positive integer"};
    } else if (key == "rid") {
      if (!positiveId(v, p.rid)) return {"\"rid\" is not a positive integer"};
      haveRid = true;
    }
    // Other keys are skipped unread: nothing of them is copied out.
  }
  if (haveEvent) {
    p.type = PacketType::Event;
    p.rid = 0;
  } else if (haveRid) {
    p.type = PacketType::Ack;
    p.cid = 0;
  } else {
    return {"neither \"event\" nor \"rid\""};
  }
  return {};
}

}  // namespace

bool PacketParser::inMessage(std::string_view data) const {
  return !data.empty() && data.data() >= bufferBegin_ && data.data() + data.size() <= bufferEnd_;
}

size_t PacketParser::parse(const std::string& message, std::vector<Packet>& out, std::string& error) {
  bufferBegin_ = message.data();
  bufferEnd_ = message.data() + message.capacity();
  std::string_view text = trimmed(message);
  if (text == "#1" || text == "#2") {
    Packet p;
    p.type = text == "#1" ? PacketType::Ping : PacketType::Pong;
    out.push_back(p);
    return 0;
  }
  if (message.capacity() < message.size() + simdjson::SIMDJSON_PADDING) {
    error = "internal: message buffer without padding";
    return 1;
  }
  od::document doc;
  if (auto e = parser_.iterate(json::paddedView(message, bufferEnd_)).get(doc)) {
    error = describe({"not JSON", e});
    return 1;
  }
  const char* docEnd = message.data() + message.size();
  od::json_type t;
  if (auto e = doc.type().get(t)) {
    error = describe({"not JSON", e});
    return 1;
  }
  size_t malformed = 0;
  auto note = [&](const Fault& f) {
    if (malformed++ == 0) error = describe(f);
  };
  if (t == od::json_type::object) {
    od::object obj;
    if (auto e = doc.get_object().get(obj)) {
      note({"not a packet", e});
      return malformed;
    }
    Packet p;
    Fault f = parsePacket(obj, docEnd, p);
    if (f.what) {
      note(f);
      return malformed;
    }
    out.push_back(p);
  } else if (t == od::json_type::array) {
    od::array arr;
    if (auto e = doc.get_array().get(arr)) {
      note({"not a packet", e});
      return malformed;
    }
    for (auto element : arr) {
      od::object obj;
      if (auto e = element.get_object().get(obj)) {
        note({"a batch element is not an object", e == simdjson::INCORRECT_TYPE ? simdjson::SUCCESS : e});
        if (e != simdjson::INCORRECT_TYPE) return malformed;
        continue;
      }
      Packet p;
      Fault f = parsePacket(obj, docEnd, p);
      if (f.what) {
        note(f);
        if (f.code != simdjson::SUCCESS) return malformed;  // broken JSON: stop reading
        continue;
      }
      out.push_back(p);
    }
  } else {
    note({"neither a packet nor a batch of packets"});
    return malformed;
  }
  // At the end of the document there is no current location; anything else is
  // text after the packet.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) note({"trailing content after the packet"});
  return malformed;
}

bool PacketParser::publish(std::string_view data, Publish& out, std::string& error) {
  out = Publish{};
  if (!inMessage(data)) {
    error = "#publish without data";
    return false;
  }
  od::document doc;
  od::object obj;
  if (auto e = parser_.iterate(json::paddedView(data, bufferEnd_)).get(doc)) return fail(error, "bad #publish data", e);
  if (doc.get_object().get(obj)) return fail(error, "#publish data is not an object");
  bool haveData = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return fail(error, "bad #publish key", e);
    od::value v;
    if (auto e = field.value().get(v)) return fail(error, "bad #publish value", e);
    if (key == "channel") {
      if (auto e = v.get_string().get(out.channel)) return fail(error, "bad #publish channel", e);
    } else if (key == "data") {
      if (auto e = json::scannedSpan(v, data.data() + data.size(), out.data)) return fail(error, "bad #publish data", e);
      haveData = true;
    }
  }
  if (out.channel.empty()) return fail(error, "#publish without a channel");
  if (!haveData) return fail(error, "#publish without data");
  return true;
}

bool PacketParser::handshakeAck(std::string_view data, HandshakeAck& out, std::string& error) {
  out = HandshakeAck{};
  if (!inMessage(data)) return true;  // an ack without data is still an ack
  od::document doc;
  od::object obj;
  if (auto e = parser_.iterate(json::paddedView(data, bufferEnd_)).get(doc)) return fail(error, "bad handshake data", e);
  if (doc.get_object().get(obj)) return fail(error, "handshake data is not an object");
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return fail(error, "bad handshake key", e);
    od::value v;
    if (auto e = field.value().get(v)) return fail(error, "bad handshake value", e);
    if (key == "id") {
      if (v.get_string().get(out.id)) return fail(error, "handshake \"id\" is not a string");
    } else if (key == "pingTimeout") {
      double ms = 0;
      if (v.get_double().get(ms) || !(ms >= 0 && ms < 1e12)) return fail(error, "bad handshake \"pingTimeout\"");
      out.pingTimeoutMs = static_cast<int64_t>(ms);
    } else if (key == "isAuthenticated") {
      if (v.get_bool().get(out.isAuthenticated)) return fail(error, "handshake \"isAuthenticated\" is not a boolean");
    }
  }
  return true;
}

bool PacketParser::disconnect(std::string_view data, Disconnect& out, std::string& error) {
  out = Disconnect{};
  if (!inMessage(data)) return true;
  od::document doc;
  od::object obj;
  if (auto e = parser_.iterate(json::paddedView(data, bufferEnd_)).get(doc)) return fail(error, "bad #disconnect data", e);
  if (doc.get_object().get(obj)) return fail(error, "#disconnect data is not an object");
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return fail(error, "bad #disconnect key", e);
    od::value v;
    if (auto e = field.value().get(v)) return fail(error, "bad #disconnect value", e);
    if (key == "code") {
      int64_t code = 0;
      if (v.get_int64().get(code) || code < 0 || code > 65535) return fail(error, "bad #disconnect \"code\"");
      out.code = static_cast<int>(code);
    } else if (key == "data") {
      std::string_view reason;
      if (v.get_string().get(reason) == simdjson::SUCCESS) out.reason = reason;  // any other shape: no reason
    }
  }
  return true;
}

std::string handshake(int64_t cid) {
  return "{\"event\":\"#handshake\",\"data\":{\"authToken\":null},\"cid\":" + std::to_string(cid) + "}";
}

std::string loginAck(int64_t rid, std::string_view username, std::string_view password) {
  std::string out = "{\"rid\":" + std::to_string(rid) + ",\"data\":{\"username\":";
  appendJsonString(out, username);
  out += ",\"password\":";
  appendJsonString(out, password);
  out += "}}";
  return out;
}

std::string subscribe(int64_t cid, std::string_view channel) {
  std::string out = "{\"event\":\"#subscribe\",\"data\":{\"channel\":";
  appendJsonString(out, channel);
  out += "},\"cid\":" + std::to_string(cid) + "}";
  return out;
}

std::string catchup(int64_t cid, std::string_view channel, int64_t millis) {
  std::string out = "{\"event\":\"catchup\",\"data\":{\"channel\":";
  appendJsonString(out, channel);
  out.append(",\"milis_since_connected\":").append(std::to_string(millis));
  out.append("},\"cid\":").append(std::to_string(cid)).append("}");
  return out;
}

std::string disconnect(int code, std::string_view reason) {
  std::string out = "{\"event\":\"#disconnect\",\"data\":{\"code\":" + std::to_string(code);
  if (!reason.empty()) {
    out += ",\"data\":";
    appendJsonString(out, reason);
  }
  out += "}}";
  return out;
}

std::string publishTransaction(std::string_view channel, std::string_view schema, std::string_view table,
                               std::string_view operation, std::string_view itemsKey, std::string_view items) {
  std::string out;
  out.reserve(items.size() + 200);
  out.append("{\"event\":\"#publish\",\"data\":{\"channel\":");
  appendJsonString(out, channel);
  out.append(",\"data\":{\"type\":\"HDB_TRANSACTION\",\"schema\":");
  appendJsonString(out, schema);
  out.append(",\"table\":");
  appendJsonString(out, table);
  out.append(",\"transaction\":{\"operation\":");
  appendJsonString(out, operation);
  out.append(",\"schema\":");
  appendJsonString(out, schema);
  out.append(",\"table\":");
  appendJsonString(out, table);
  out.append(",");
  appendJsonString(out, itemsKey);
  out.append(":").append(items).append("}}}}");
  return out;
}

// SocketCluster's own texts for its codes (sc-errors), WebSocket's for the others.
std::string_view describeCloseCode(int code) {
  switch (code) {
    case 1000: return "normal closure";
    case 1001: return "going away";
    case 1002: return "WebSocket protocol error";
    case 1003: return "invalid data";
    case 1005: return "closed without a status code";
    case 1006: return "connection lost without a close frame";
    case 1007: return "message format was incorrect";
    case 1008: return "policy violation";
    case 1009: return "message too big";
    case 1011: return "server error";
    case 4000: return "server ping timed out";
    case 4001: return "the server heard nothing from us within its ping timeout";
    case 4002: return "server failed to sign the auth token";
    case 4003: return "failed to complete the handshake";
    case 4005: return "the server got no #handshake in time";
    case 4006: return "server failed to bind the socket to its broker";
    case 4007: return "connection establishment timed out";
    case 4008: return "server rejected the handshake";
    case 4009: return "server got a message before the handshake";
    default: return code >= 4000 && code < 5000 ? "SocketCluster close code" : "unexpected close code";
  }
}

}  // namespace hdb::sc
