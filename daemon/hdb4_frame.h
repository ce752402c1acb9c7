// HarperDB 4 WebSocket feed: one text frame is one change of one record.
//   {"id":1,"localTime":1795693388920.1797,"value":{...},"version":1795693388907.117,"type":"put"}
// This file turns such a frame into a Hdb4Change whose fields are the raw JSON
// text of each part, validated, so the envelope can copy them without re-encoding.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace hdb {

struct Hdb4Change {
  std::string_view type;       // "put", "delete", "message", ... (unquoted, [A-Za-z_]+)
  std::string_view id;         // raw JSON: a number or a quoted string
  std::string_view localTime;  // raw JSON number: the change's position (cursor)
  std::string_view version;    // raw JSON number: the transaction time
  std::string_view value;      // raw JSON object, empty when the frame has none (delete)
  bool hasSize = false;        // "size" present: a snapshot or replayed record
};

// Reusable parsing state: one per source keeps simdjson's buffers warm.
class Hdb4FrameParser {
 public:
  // `message` must have at least SIMDJSON_PADDING bytes of capacity past its size.
  // On success the views in `out` point into `message` (or are static) and stay
  // valid until `message` changes. On failure returns false and sets `error`.
  bool parse(const std::string& message, Hdb4Change& out, std::string& error);

 private:
  simdjson::ondemand::parser parser_;
};

// Grows `s` so that it can be handed to Hdb4FrameParser::parse.
void reservePadding(std::string& s);

}  // namespace hdb
