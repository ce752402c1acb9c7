// One line a local program writes to an ingest socket (docs/ingest.md), turned
// into a WriteCommand for a TableWriter, or refused with a message for the
// client. Pure parsing: no sockets, no config. The answer line for a command
// is built here too, so its format lives next to the command's.
//
//   {"op":"insert"|"update"|"upsert"|"delete","database":D,"table":T,
//    "records":[{...},...]}            ("ids":[...] for delete; "schema" = "database")
//   optional "ref": a string or a number, echoed in the answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "writer.h"

namespace hdb {

// Limits of a command beyond the line's length (max_line_bytes).
inline constexpr size_t kMaxNameBytes = 255;  // database, table
inline constexpr size_t kMaxRefBytes = 256;   // the ref's JSON text

struct ParsedCommand {
  WriteCommand command;
  // The "ref" value's JSON text (a string with its quotes, or a number);
  // empty when the command has none. Set even when the command is refused,
  // as long as the ref itself was readable.
  std::string ref;
};

class WriteCommandParser {
 public:
  // Parses one line (without its '\n'). Returns false with `error` set (for
  // the client) when the line is not a valid command; `out.ref` may still be set.
  bool parse(std::string_view line, ParsedCommand& out, std::string& error);

 private:
  simdjson::ondemand::parser parser_;
  std::string buffer_;  // the line with simdjson's padding
};

// {"line":N,"ref":R,"ok":true,"op":OP,"database":D,"table":T,"count":C,FIELDS}\n
std::string answerOk(uint64_t line, std::string_view ref, const WriteCommand& command, std::string_view fields);
// {"line":N,"ref":R,"ok":false,"error":TEXT}\n
std::string answerError(uint64_t line, std::string_view ref, std::string_view error);

}  // namespace hdb
