// The SocketCluster packet codec against every packet captured from a real
// HarperDB 3.3 (../shared/frames/hdb3/), against malformed packets, and the
// client packets byte for byte as the original client sent them.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json_util.h"
#include "sc_codec.h"

using hdb::sc::Packet;
using hdb::sc::PacketParser;
using hdb::sc::PacketType;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Captured {
  bool fromServer;
  std::string text;
};

// "S>C text {...}" / "C>S text {...}" (canonical-session.txt) and "  NN S>C  {...}" (raw-*.log).
std::vector<Captured> capturedPackets() {
  std::vector<Captured> out;
  const std::string dir = HDB_FRAMES_DIR "/hdb3/";
  for (const char* name : {"canonical-session.txt", "raw-catchup.log", "raw-publish-ack.log", "raw-wrong-password.log"}) {
    std::istringstream in(readFile(dir + name));
    std::string line;
    while (std::getline(in, line)) {
      for (const char* tag : {"S>C", "C>S"}) {
        auto pos = line.find(tag);
        if (pos == std::string::npos) continue;
        auto brace = line.find('{', pos);
        if (brace == std::string::npos) continue;
        out.push_back({tag[0] == 'S', line.substr(brace)});
      }
    }
  }
  return out;
}

struct Parsed {
  std::string buffer;  // keeps the views alive
  std::vector<Packet> packets;
  size_t malformed = 0;
  std::string error;
};

Parsed parse(PacketParser& parser, const std::string& text) {
  Parsed p;
  p.buffer = text;
  hdb::json::reservePadding(p.buffer);
  p.malformed = parser.parse(p.buffer, p.packets, p.error);
  return p;
}

}  // namespace

TEST_CASE("sc codec: every captured packet parses") {
  auto captured = capturedPackets();
  REQUIRE(captured.size() >= 30);
  PacketParser parser;
  size_t publishes = 0;
  for (const auto& c : captured) {
    Parsed p = parse(parser, c.text);
    CHECK_MESSAGE(p.malformed == 0, c.text << " -> " << p.error);
    REQUIRE(p.packets.size() == 1);
    const Packet& packet = p.packets[0];
    if (packet.type == PacketType::Event && packet.event == hdb::sc::kPublish) {
      hdb::sc::Publish pub;
      std::string error;
      CHECK_MESSAGE(parser.publish(packet.data, pub, error), c.text << " -> " << error);
      CHECK(pub.channel == "dev:animals");
      CHECK(pub.data.front() == '{');
      CHECK(pub.data.back() == '}');
      ++publishes;
    }
  }
  CHECK(publishes >= 12);
}

TEST_CASE("sc codec: the login sequence") {
  PacketParser parser;
  Parsed login = parse(parser, R"({"event":"login","data":"send login credentials","cid":1})");
  REQUIRE(login.packets.size() == 1);
  CHECK(login.packets[0].type == PacketType::Event);
  CHECK(login.packets[0].event == hdb::sc::kLogin);
  CHECK(login.packets[0].cid == 1);
  CHECK(login.packets[0].data == R"("send login credentials")");

  Parsed ack = parse(parser, R"({"rid":1,"data":{"id":"dRxwaPl4EvUDHtUlAAAE","pingTimeout":60000,"isAuthenticated":false}})");
  REQUIRE(ack.packets.size() == 1);
  CHECK(ack.packets[0].type == PacketType::Ack);
  CHECK(ack.packets[0].rid == 1);
  CHECK(ack.packets[0].cid == 0);
  hdb::sc::HandshakeAck hs;
  std::string error;
  REQUIRE_MESSAGE(parser.handshakeAck(ack.packets[0].data, hs, error), error);
  CHECK(hs.id == "dRxwaPl4EvUDHtUlAAAE");
  CHECK(hs.pingTimeoutMs == 60000);
  CHECK_FALSE(hs.isAuthenticated);

  Parsed token = parse(parser, R"({"event":"#setAuthToken","data":{"token":"eyJ.x.y"}})");
  REQUIRE(token.packets.size() == 1);
  CHECK(token.packets[0].event == hdb::sc::kSetAuthToken);
  CHECK(token.packets[0].cid == 0);

  Parsed sub = parse(parser, R"({"rid":2})");
  REQUIRE(sub.packets.size() == 1);
  CHECK(sub.packets[0].type == PacketType::Ack);
  CHECK(sub.packets[0].rid == 2);
  CHECK(sub.packets[0].data.empty());
  CHECK(sub.packets[0].error.empty());
}

TEST_CASE("sc codec: refusals") {
  PacketParser parser;
  Parsed bye = parse(parser, R"({"event":"#disconnect","data":{"code":1000}})");
  REQUIRE(bye.packets.size() == 1);
  hdb::sc::Disconnect d;
  std::string error;
  REQUIRE(parser.disconnect(bye.packets[0].data, d, error));
  CHECK(d.code == 1000);
  CHECK(d.reason.empty());

  Parsed withReason = parse(parser, R"({"event":"#disconnect","data":{"code":4001,"data":"ping timeout"}})");
  REQUIRE(parser.disconnect(withReason.packets[0].data, d, error));
  CHECK(d.code == 4001);
  CHECK(d.reason == "ping timeout");

  Parsed failed = parse(parser, R"({"rid":3,"error":"Issue in room publish in rules WORKER_RULE_FAILURE"})");
  REQUIRE(failed.packets.size() == 1);
  CHECK(failed.packets[0].rid == 3);
  CHECK(failed.packets[0].error == R"("Issue in room publish in rules WORKER_RULE_FAILURE")");
}

TEST_CASE("sc codec: heartbeats") {
  PacketParser parser;
  for (const char* text : {"#1", " #1\n"}) {
    Parsed p = parse(parser, text);
    REQUIRE(p.packets.size() == 1);
    CHECK(p.packets[0].type == PacketType::Ping);
    CHECK(p.malformed == 0);
  }
  Parsed pong = parse(parser, "#2");
  REQUIRE(pong.packets.size() == 1);
  CHECK(pong.packets[0].type == PacketType::Pong);
  CHECK(hdb::sc::pong() == "#2");
}

TEST_CASE("sc codec: a batch of packets in one message") {
  PacketParser parser;
  Parsed p = parse(parser,
                   R"([{"event":"#publish","data":{"channel":"dev:a","data":{"x":1}}},{"rid":2},)"
                   R"({"event":"login","data":"send login credentials","cid":1}])");
  CHECK(p.malformed == 0);
  REQUIRE(p.packets.size() == 3);
  CHECK(p.packets[0].event == hdb::sc::kPublish);
  CHECK(p.packets[1].type == PacketType::Ack);
  CHECK(p.packets[2].event == hdb::sc::kLogin);
  hdb::sc::Publish pub;
  std::string error;
  REQUIRE(parser.publish(p.packets[0].data, pub, error));
  CHECK(pub.channel == "dev:a");
  CHECK(pub.data == R"({"x":1})");

  // A bad element is skipped, the others are kept.
  Parsed mixed = parse(parser, R"([{"rid":2}, 5, {"data":1}, {"event":"x"}])");
  CHECK(mixed.malformed == 2);
  REQUIRE(mixed.packets.size() == 2);
  CHECK(mixed.packets[0].rid == 2);
  CHECK(mixed.packets[1].event == R"("x")");  // unknown names stay raw

  Parsed empty = parse(parser, "[]");
  CHECK(empty.malformed == 0);
  CHECK(empty.packets.empty());
}

TEST_CASE("sc codec: malformed packets are counted, never a crash") {
  struct Case {
    std::string text;
    const char* reason;
  };
  std::string deep(200, '[');
  std::vector<Case> cases = {
      {"", "not JSON"},
      {"#3", "not JSON"},
      {"hello", "not JSON"},
      {R"("text")", "neither a packet nor a batch"},
      {"42", "neither a packet nor a batch"},
      {R"({"data":1})", "neither \"event\" nor \"rid\""},
      {R"({"event":5})", "\"event\" is not a string"},
      {R"({"rid":-1})", "\"rid\" is not a positive integer"},
      {R"({"rid":1.5})", "\"rid\" is not a positive integer"},
      {R"({"rid":"1"})", "\"rid\" is not a positive integer"},
      {R"({"event":"x","cid":0})", "\"cid\" is not a positive integer"},
      {R"({"event":"x","data":{"a":}})", "bad \"data\""},
      {R"({"event":"x","data":"\u12"})", "bad \"data\""},
      {R"({"event":"x","data":[1,2)", "ended early"},
      {R"({"rid":1}garbage)", "not a packet"},
      {R"({"rid":1} {"rid":2})", "trailing content"},
      {R"({"event":"#publish","data":{"channel":"a")", "ended early"},
      {R"({"event":"x","data":)" + deep + std::string(200, ']') + "}", "bad \"data\""},
  };
  PacketParser parser;
  for (const auto& c : cases) {
    Parsed p = parse(parser, c.text);
    CHECK_MESSAGE(p.malformed >= 1, c.text);
    CHECK_MESSAGE(p.error.find(c.reason) != std::string::npos, c.text << " -> " << p.error);
  }
}

TEST_CASE("sc codec: malformed data of known events") {
  PacketParser parser;
  std::string error;
  hdb::sc::Publish pub;
  Parsed noChannel = parse(parser, R"({"event":"#publish","data":{"data":{}}})");
  CHECK_FALSE(parser.publish(noChannel.packets.at(0).data, pub, error));
  CHECK(error.find("without a channel") != std::string::npos);
  Parsed noData = parse(parser, R"({"event":"#publish","data":{"channel":"a"}})");
  CHECK_FALSE(parser.publish(noData.packets.at(0).data, pub, error));
  Parsed notObject = parse(parser, R"({"event":"#publish","data":"dev:a"})");
  CHECK_FALSE(parser.publish(notObject.packets.at(0).data, pub, error));
  Parsed absent = parse(parser, R"({"event":"#publish"})");
  CHECK_FALSE(parser.publish(absent.packets.at(0).data, pub, error));

  hdb::sc::HandshakeAck hs;
  Parsed badPing = parse(parser, R"({"rid":1,"data":{"pingTimeout":"soon"}})");
  CHECK_FALSE(parser.handshakeAck(badPing.packets.at(0).data, hs, error));
  Parsed negative = parse(parser, R"({"rid":1,"data":{"pingTimeout":-5}})");
  CHECK_FALSE(parser.handshakeAck(negative.packets.at(0).data, hs, error));
  Parsed noData2 = parse(parser, R"({"rid":1})");
  CHECK(parser.handshakeAck(noData2.packets.at(0).data, hs, error));  // an ack without data is fine
  CHECK(hs.pingTimeoutMs == 0);

  hdb::sc::Disconnect d;
  Parsed badCode = parse(parser, R"({"event":"#disconnect","data":{"code":"x"}})");
  CHECK_FALSE(parser.disconnect(badCode.packets.at(0).data, d, error));
  Parsed odd = parse(parser, R"({"event":"#disconnect","data":{"code":1000,"data":{"why":1}}})");
  CHECK(parser.disconnect(odd.packets.at(0).data, d, error));
  CHECK(d.code == 1000);
  CHECK(d.reason.empty());
}

TEST_CASE("sc codec: client packets match what the original client sent") {
  CHECK(hdb::sc::handshake(1) == R"({"event":"#handshake","data":{"authToken":null},"cid":1})");
  CHECK(hdb::sc::loginAck(1, "cluster_user", "password") ==
        R"({"rid":1,"data":{"username":"cluster_user","password":"password"}})");
  CHECK(hdb::sc::subscribe(2, "dev:animals") == R"({"event":"#subscribe","data":{"channel":"dev:animals"},"cid":2})");
  CHECK(hdb::sc::disconnect(1000, "bye") == R"({"event":"#disconnect","data":{"code":1000,"data":"bye"}})");
  CHECK(hdb::sc::disconnect(1001, "") == R"({"event":"#disconnect","data":{"code":1001}})");
}

TEST_CASE("sc codec: a write is the original client's HDB_TRANSACTION publish, without a cid") {
  CHECK(hdb::sc::publishTransaction("dev:animals", "dev", "animals", "insert", "records", R"([{"id":1}])") ==
        R"({"event":"#publish","data":{"channel":"dev:animals","data":{"type":"HDB_TRANSACTION","schema":"dev",)"
        R"("table":"animals","transaction":{"operation":"insert","schema":"dev","table":"animals",)"
        R"("records":[{"id":1}]}}}})");
  // A delete names its ids; odd names are escaped, and the packet parses back.
  std::string del = hdb::sc::publishTransaction("d\"b:t", "d\"b", "t", "delete", "hash_values", R"(["a",2])");
  PacketParser parser;
  Parsed p = parse(parser, del);
  REQUIRE_MESSAGE(p.malformed == 0, del << " -> " << p.error);
  REQUIRE(p.packets.size() == 1);
  CHECK(p.packets[0].event == hdb::sc::kPublish);
  CHECK(p.packets[0].cid == 0);
  hdb::sc::Publish pub;
  std::string error;
  REQUIRE(parser.publish(p.packets[0].data, pub, error));
  CHECK(pub.channel == "d\"b:t");
  CHECK(pub.data.find(R"("operation":"delete","schema":"d\"b","table":"t","hash_values":["a",2])") !=
        std::string_view::npos);
}

TEST_CASE("sc codec: credentials are escaped, and read back intact") {
  std::string ack = hdb::sc::loginAck(7, "us\"er", "p\\a\"ss\n\x01");
  PacketParser parser;
  Parsed p = parse(parser, ack);
  REQUIRE_MESSAGE(p.malformed == 0, ack << " -> " << p.error);
  REQUIRE(p.packets.size() == 1);
  CHECK(p.packets[0].rid == 7);
  CHECK(p.packets[0].data == R"({"username":"us\"er","password":"p\\a\"ss\n\u0001"})");
}

TEST_CASE("sc codec: close codes have a meaning for the log") {
  CHECK(hdb::sc::describeCloseCode(4001).find("ping timeout") != std::string_view::npos);
  CHECK(hdb::sc::describeCloseCode(4005).find("#handshake") != std::string_view::npos);
  CHECK(hdb::sc::describeCloseCode(1006).find("without a close frame") != std::string_view::npos);
  CHECK(hdb::sc::describeCloseCode(1000) == "normal closure");
  CHECK(hdb::sc::describeCloseCode(4999) == "SocketCluster close code");
  CHECK(hdb::sc::describeCloseCode(3000) == "unexpected close code");
}
