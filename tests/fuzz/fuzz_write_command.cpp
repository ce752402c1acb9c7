// libFuzzer target: one line a local program writes to an ingest socket, through
// the command parser (write_command.cpp) and into its answer line.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "write_command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hdb::WriteCommandParser parser;  // reused across lines, as the socket reuses it
  std::string_view line(reinterpret_cast<const char*>(data), size);
  hdb::ParsedCommand parsed;
  std::string error;
  if (!parser.parse(line, parsed, error)) {
    if (error.empty()) std::abort();  // a refusal always says why
    // The answer carries the client's ref and a message quoting the client: still one JSON line.
    fuzz::requireOneJsonLine(hdb::answerError(1, parsed.ref, error));
    return 0;
  }
  const hdb::WriteCommand& c = parsed.command;
  if (c.count == 0 || c.database.empty() || c.table.empty()) std::abort();
  // What a writer gets is a JSON array of exactly `count` elements of the right kind.
  static simdjson::dom::parser dom;
  simdjson::dom::array items;
  auto e = dom.parse(c.items).get_array().get(items);
  if (e == simdjson::NUMBER_ERROR && fuzz::hasLongDigitRun(c.items)) return 0;  // valid, beyond simdjson's DOM
  if (e || items.size() != c.count) std::abort();
  for (simdjson::dom::element item : items) {
    bool fits = c.op == hdb::WriteOp::Delete ? item.is_string() || item.is_number() : item.is_object();
    if (!fits) std::abort();
  }
  fuzz::requireOneJsonLine(hdb::answerOk(1, parsed.ref, c, ""));
  return 0;
}
