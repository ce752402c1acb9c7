#include "envelope.h"

#include <algorithm>
#include <cstring>

namespace hdb {

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

EnvelopeWriter::EnvelopeWriter(std::string_view server, std::string_view database, std::string_view table) {
  head_ = "{\"v\":1,\"server\":";
  appendJsonString(head_, server);
  head_ += ",\"database\":";
  appendJsonString(head_, database);
  head_ += ",\"table\":";
  appendJsonString(head_, table);
  head_ += ",";
  tableKey_.append(database).append(".").append(table);
}

Line EnvelopeWriter::write(const EnvelopeFields& f) const {
  auto line = std::make_shared<std::string>();
  line->reserve(head_.size() + f.op.size() + f.id.size() + f.ts.size() + f.cursor.size() + f.txn.size() +
                f.record.size() + 64);
  line->append(head_);
  line->append("\"op\":\"").append(f.op).append("\"");
  if (!f.id.empty()) line->append(",\"id\":").append(f.id);
  if (!f.ts.empty()) line->append(",\"ts\":").append(f.ts);
  // The cursor is a number's text kept verbatim: quoting it keeps every digit.
  if (!f.cursor.empty()) line->append(",\"cursor\":\"").append(f.cursor).append("\"");
  if (!f.txn.empty()) line->append(",\"txn\":").append(f.txn);
  if (!f.record.empty()) {
    line->append(",\"record\":");
    size_t from = line->size();
    line->append(f.record);
    // A record is copied as the server wrote it, and JSON allows line breaks between its
    // tokens (never inside a string): as spaces they cannot split the NDJSON line.
    // Most records have none, which two memchr find faster than a replacing pass.
    if (std::memchr(f.record.data(), '\n', f.record.size()) || std::memchr(f.record.data(), '\r', f.record.size()))
      std::replace_if(line->begin() + static_cast<std::ptrdiff_t>(from), line->end(),
                      [](char c) { return c == '\n' || c == '\r'; }, ' ');
  }
  line->append("}\n");
  return line;
}

Line EnvelopeWriter::gap(std::string_view reason, std::string_view cursor, std::string_view message) const {
  auto line = std::make_shared<std::string>(head_);
  line->append("\"op\":\"gap\",\"reason\":");
  appendJsonString(*line, reason);
  if (!cursor.empty()) {
    line->append(",\"cursor\":");
    appendJsonString(*line, cursor);
  }
  line->append(",\"message\":");
  appendJsonString(*line, message);
  line->append("}\n");
  return line;
}

}  // namespace hdb
