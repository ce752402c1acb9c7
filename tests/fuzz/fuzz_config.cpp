// libFuzzer target: a config file's text through parseConfig (YAML, keys, values, URLs,
// sizes, durations, modes, cross-checks). Every outcome is either a config or at least one
// error, each with a reason; formatting an error never fails.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Deep YAML nesting recurses in yaml-cpp's parser (not ours); bound the input instead of
  // reporting its stack use. A config is a few KiB.
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  hdb::ConfigResult result = hdb::parseConfig(text, "/nonexistent-fuzz-dir/hdb-bridge.yaml");
  if (result.errors.empty() != result.config.has_value()) std::abort();
  for (const hdb::ConfigError& e : result.errors) {
    if (e.reason.empty()) std::abort();
    std::string line = hdb::formatError("hdb-bridge.yaml", e);
    if (line.find('\n') != std::string::npos) std::abort();  // one line per error
  }
  return 0;
}
