// The NDJSON envelope every sink receives (docs/envelope.md):
//   {"v":1,"server":"local","database":"dev","table":"animals","op":"put","id":1,
//    "ts":1795693388907.117,"cursor":"1795693388920.1797","record":{...}}
// One line is serialized once per change and shared by every consumer.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace hdb {

using Line = std::shared_ptr<const std::string>;

// Appends `s` to `out` as a JSON string literal (with quotes).
void appendJsonString(std::string& out, std::string_view s);

// Identity of one subscribed table; builds the constant head of its envelopes once.
class EnvelopeWriter {
 public:
  EnvelopeWriter(std::string_view server, std::string_view database, std::string_view table);

  // Fields are raw JSON text (see Hdb4Change); `record` may be empty (absent).
  // `op` must be a plain identifier. Returns the line including its '\n'.
  Line write(std::string_view op, std::string_view id, std::string_view ts, std::string_view cursor,
             std::string_view record) const;

  const std::string& tableKey() const { return tableKey_; }

 private:
  std::string head_;      // {"v":1,"server":...,"database":...,"table":...,
  std::string tableKey_;  // database.table
};

}  // namespace hdb
