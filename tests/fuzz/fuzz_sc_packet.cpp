// libFuzzer target: one SocketCluster message as HarperDB 3 could send it, through the
// packet parser, the readers of packet data, and for #publish the transaction mapping
// into envelope lines: the path of Hdb3Source::onMessage without the socket.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "envelope.h"
#include "fuzz_util.h"
#include "hdb3_txn.h"
#include "json_util.h"
#include "sc_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hdb::sc::PacketParser parser;
  static hdb::Hdb3TxnMapper mapper;
  static const hdb::EnvelopeWriter writer("fuzz", "dev", "animals");
  std::string message(reinterpret_cast<const char*>(data), size);
  hdb::json::reservePadding(message);
  std::vector<hdb::sc::Packet> packets;
  std::string error;
  size_t malformed = parser.parse(message, packets, error);
  if (malformed > 0 && error.empty()) std::abort();
  for (const hdb::sc::Packet& p : packets) {
    fuzz::requireInside(p.data, message);
    fuzz::requireInside(p.error, message);
    if (p.type == hdb::sc::PacketType::Ack) {
      hdb::sc::HandshakeAck ack;
      parser.handshakeAck(p.data, ack, error);
      continue;
    }
    if (p.type != hdb::sc::PacketType::Event) continue;
    if (p.event == hdb::sc::kDisconnect) {
      hdb::sc::Disconnect d;
      parser.disconnect(p.data, d, error);
    } else if (p.event == hdb::sc::kPublish) {
      hdb::sc::Publish pub;
      if (!parser.publish(p.data, pub, error)) continue;
      fuzz::requireInside(pub.data, message);
      std::vector<hdb::Line> lines;
      std::string why;
      mapper.map(pub.data, parser.bufferEnd(), "id", writer, lines, why);
      for (const hdb::Line& line : lines) fuzz::requireOneJsonLine(*line);
    }
  }
  return 0;
}
