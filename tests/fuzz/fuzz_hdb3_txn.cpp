// libFuzzer target: the data of one #publish (an HDB_TRANSACTION, or anything else a peer
// puts there) through the HarperDB 3 transaction mapping into envelope lines. The first
// byte picks the primary key name, so records keyed by other fields are reached too, and
// whether the data is read as a catchup answer (a list of past transactions) instead.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "envelope.h"
#include "fuzz_util.h"
#include "hdb3_txn.h"
#include "json_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hdb::Hdb3TxnMapper mapper;
  static const hdb::EnvelopeWriter writer("fuzz", "dev", "animals");
  static const char* const kKeys[] = {"id", "name", "\xc3\xa9", ""};
  if (size == 0) return 0;
  const char* key = kKeys[data[0] % 4];
  std::string message(reinterpret_cast<const char*>(data) + 1, size - 1);
  hdb::json::reservePadding(message);
  std::vector<hdb::Line> lines;
  std::string why;
  if (data[0] & 4) {
    static std::vector<hdb::Hdb3CaughtUp> caught;
    caught.clear();
    size_t skipped = 0;
    auto outcome = mapper.mapCatchup(message, message.data() + message.capacity(), key, writer, caught, skipped, why);
    if (outcome != hdb::Hdb3TxnMapper::Outcome::Mapped && why.empty()) std::abort();
    if (skipped && why.empty()) std::abort();
    for (const hdb::Hdb3CaughtUp& c : caught) {
      if (c.lines.size() != c.changes.size() || c.timestamp.empty()) std::abort();
      for (const hdb::Line& line : c.lines) fuzz::requireOneJsonLine(*line);
    }
    return 0;
  }
  auto outcome = mapper.map(message, message.data() + message.capacity(), key, writer, lines, why);
  if (outcome != hdb::Hdb3TxnMapper::Outcome::Mapped && (why.empty() || !lines.empty())) std::abort();
  for (const hdb::Line& line : lines) fuzz::requireOneJsonLine(*line);
  return 0;
}
