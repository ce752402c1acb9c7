// The write path's seam (issue 8). The ingest socket (sink_ingest.cpp) turns
// each line a local program writes into a WriteCommand, finds the table's
// TableWriter through a WriterLookup, and submits it; the writer answers
// exactly once, on the loop thread. HarperDB 4 tables write over HTTP
// (hdb4_writer.cpp); HarperDB 3 tables publish on the clustering connection and
// are confirmed when the transaction comes back on the subscription
// (hdb3_writer.cpp). Only tables with `writable: true` have a writer.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace hdb {

enum class WriteOp { Insert, Update, Upsert, Delete };

// "insert", "update", "upsert", "delete".
inline const char* writeOpName(WriteOp op) {
  switch (op) {
    case WriteOp::Insert: return "insert";
    case WriteOp::Update: return "update";
    case WriteOp::Upsert: return "upsert";
    case WriteOp::Delete: return "delete";
  }
  return "?";
}

struct WriteCommand {
  WriteOp op = WriteOp::Insert;
  std::string database;
  std::string table;
  // insert/update/upsert: the command's "records" array as JSON text, each
  // element an object; delete: its "ids" array, each a string or a number.
  // Validated by the ingest socket before a writer sees it.
  std::string items;
  size_t count = 0;  // elements in items (at least 1)
};

struct WriteResult {
  bool ok = false;
  std::string error;   // !ok: what went wrong, for a person
  // Extra members for the answer line, as JSON text without the braces
  // (e.g. "\"written\":[1,2]"); may be empty.
  std::string fields;
};

using WriteDone = std::function<void(WriteResult)>;

class TableWriter {
 public:
  virtual ~TableWriter() = default;
  // Sends the command. `done` runs exactly once, on the loop thread, never
  // from inside submit(). A writer destroyed with commands in flight answers
  // them first (ok=false, saying whether the write may have been applied).
  virtual void submit(WriteCommand command, WriteDone done) = 0;
};

// What the ingest socket gets for a command's table: its writer, or why there
// is none (not configured, not writable) as a message for the client.
struct WriteTarget {
  TableWriter* writer = nullptr;
  std::string error;
};
using WriterLookup = std::function<WriteTarget(std::string_view database, std::string_view table)>;

}  // namespace hdb
