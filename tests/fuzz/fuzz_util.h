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

// `line` is one JSON object followed by exactly one '\n', with no other newline in it.
// An integer beyond 64 bits is valid JSON (a server's number is copied verbatim) that
// simdjson's DOM refuses with BIGINT_ERROR; that one refusal is accepted.
inline void requireOneJsonLine(const std::string& line) {
  if (line.empty() || line.back() != '\n') std::abort();
  if (line.find('\n') != line.size() - 1) std::abort();
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto error = parser.parse(line.data(), line.size() - 1).get(doc);
  if (error == simdjson::BIGINT_ERROR && line.front() == '{') return;
  if (error || !doc.is_object()) std::abort();
}

}  // namespace fuzz
