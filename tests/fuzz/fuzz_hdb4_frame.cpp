// libFuzzer target: one HarperDB 4 WebSocket message (any bytes a server could send)
// through the frame parser and, when it parses, into an envelope line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "envelope.h"
#include "fuzz_util.h"
#include "hdb4_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hdb::Hdb4FrameParser parser;  // reused across inputs, as a source reuses it across frames
  static const hdb::EnvelopeWriter writer("fuzz", "dev", "animals");
  std::string message(reinterpret_cast<const char*>(data), size);
  hdb::reservePadding(message);
  hdb::Hdb4Change change;
  std::string error;
  if (!parser.parse(message, change, error)) {
    if (error.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  fuzz::requireInside(change.id, message);
  fuzz::requireInside(change.localTime, message);
  fuzz::requireInside(change.version, message);
  fuzz::requireInside(change.value, message);
  if (change.type.empty() || change.id.empty() || change.localTime.empty() || change.version.empty()) std::abort();
  hdb::EnvelopeFields f;
  f.op = change.type;
  f.id = change.id;
  f.ts = change.version;
  f.cursor = change.localTime;
  f.record = change.value;
  hdb::Line line = writer.write(f);
  // The envelope is built from validated pieces: it must be one line of JSON.
  fuzz::requireOneJsonLine(*line);
  return 0;
}
