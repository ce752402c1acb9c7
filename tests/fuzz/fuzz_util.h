// Checks shared by the fuzz targets: a broken invariant aborts, which libFuzzer reports as a crash.
#pragma once

#include <simdjson.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

// A view the parser returned must point into the message it was given (or be empty).
inline void requireInside(std::string_view part, const std::string& message) {
  if (part.empty()) return;
  if (part.data() < message.data() || part.data() + part.size() > message.data() + message.size()) std::abort();
}

inline bool hasLongDigitRun(const std::string& s) {
  size_t run = 0;
  for (char c : s) {
    run = (c >= '0' && c <= '9') ? run + 1 : 0;
    if (run >= 20) return true;
  }
  return false;
}

// `line` is one JSON object followed by exactly one '\n', with no other newline in it.
// An integer beyond 64 bits is valid JSON (a server's number is copied verbatim) that
// simdjson 3.0's DOM refuses with NUMBER_ERROR; that refusal is accepted when the line
// holds such an integer (20 digits or more in a row).
inline void requireOneJsonLine(const std::string& line) {
  if (line.empty() || line.back() != '\n') std::abort();
  if (line.find('\n') != line.size() - 1) std::abort();
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto error = parser.parse(line.data(), line.size() - 1).get(doc);
  if (error == simdjson::NUMBER_ERROR && line.front() == '{' && hasLongDigitRun(line)) return;
  if (error || !doc.is_object()) std::abort();
}

}  // namespace fuzz
