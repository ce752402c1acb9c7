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

// The per-change parts of an envelope, each the raw JSON text of its value
// (already validated); an empty field is left out of the line.
struct EnvelopeFields {
  std::string_view op{};      // a plain identifier, written quoted
  std::string_view id{};      // number or quoted string
  std::string_view ts{};      // number: the transaction time
  std::string_view cursor{};  // a number's text, written quoted (kept verbatim)
  std::string_view txn{};     // quoted string: the transaction id (HarperDB 3)
  std::string_view record{};  // object
};

// Identity of one subscribed table; builds the constant head of its envelopes once.
class EnvelopeWriter {
 public:
  EnvelopeWriter(std::string_view server, std::string_view database, std::string_view table);

  // Returns the line including its '\n'.
  Line write(const EnvelopeFields& fields) const;
  // A line telling consumers that changes of this table may be missing:
  // {"v":1,...,"op":"gap","reason":REASON,"cursor":CURSOR,"message":TEXT}
  Line gap(std::string_view reason, std::string_view cursor, std::string_view message) const;

  const std::string& tableKey() const { return tableKey_; }

 private:
  std::string head_;      // {"v":1,"server":...,"database":...,"table":...,
  std::string tableKey_;  // database.table
};

}  // namespace hdb
