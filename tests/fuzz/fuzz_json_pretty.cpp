// libFuzzer target: what a consumer (`hdb-bridge tail --pretty`, `--ops`) reads from a
// socket, i.e. any line, through the pretty printer and the op extractor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "json_pretty.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto plain = hdb::prettyJson(line, false);
  auto colored = hdb::prettyJson(line, true);
  if (plain.has_value() != colored.has_value()) std::abort();
  hdb::jsonOp(line);
  return 0;
}
