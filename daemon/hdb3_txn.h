// HarperDB 3 transactions to envelope lines. A #publish on a `schema:table`
// channel carries one committed operation with all its records:
//   {"id":"2186d83c-...","type":"HDB_TRANSACTION","transaction":{"operation":"insert",
//    "__origin":{"timestamp":1795692947526.691,...},"records":[{...},...]},"__transacted":true,...}
// Each record (or each of `hash_values` for a delete) becomes one line:
//   op      the operation: insert, update (the record holds only the changed fields), upsert, delete
//   id      the record's primary key (the table's `primary_key:`, default "id") / a hash value
//   ts      __origin.timestamp, the transaction time on the node that committed it
//   cursor  the same timestamp's text: the catchup RPC answers with each transaction's
//           __origin.timestamp and is asked for a time window, so a consumer resumes with
//           "everything after this cursor" (docs/harperdb3.md)
//   txn     the transaction id (a UUID; not ordered, not known to catchup)
//   record  the record as sent; absent for delete
// The catchup RPC answers with the same transactions in another shape (mapCatchup):
//   {"type":"HDB_TRANSACTION","transaction":{"operation":"catchup","transactions":[
//    {"operation":"insert","timestamp":1795692582077.058,"hash_values":[..],"records":[..]},...]}}
// where each entry's `timestamp` is the text of the live message's __origin.timestamp.
// Pure: no lws, no I/O.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "envelope.h"

namespace hdb {

struct Hdb3Change {
  std::string_view id;      // raw JSON: a number or a quoted string
  std::string_view record;  // raw JSON object; empty for delete
};

struct Hdb3Transaction {
  std::string_view operation;  // "insert", "update", "upsert", "delete" (static strings)
  std::string_view txn;        // raw JSON string; empty when the server sent no id
  std::string_view timestamp;  // raw JSON number: __origin.timestamp
  std::vector<Hdb3Change> changes;
  size_t skipped = 0;          // records without a usable primary key
  std::string skipReason;      // why the first of them was skipped
};

// One transaction of a catchup answer, mapped.
struct Hdb3CaughtUp {
  std::string_view operation;  // static strings, as in Hdb3Transaction
  std::string_view timestamp;  // raw JSON number, inside the answer: the cursor
  std::string_view raw;        // the entry's JSON text (for format: raw)
  std::vector<Hdb3Change> changes;
  std::vector<Line> lines;     // one per change
};

class Hdb3TxnMapper {
 public:
  enum class Outcome {
    Mapped,     // `out` holds the lines (possibly none, possibly with some records skipped)
    Ignored,    // not a committed HarperDB transaction (another message type, not yet transacted)
    Malformed,  // unreadable or incomplete: dropped whole
  };

  // `data` is the raw JSON of a #publish's data, inside a buffer whose allocation ends at
  // `bufferEnd`, at least SIMDJSON_PADDING bytes past `data` (sc::PacketParser::bufferEnd()).
  // Appends one line per change to `out`; `why` tells why a transaction was not mapped, or
  // why records were skipped.
  Outcome map(std::string_view data, const char* bufferEnd, std::string_view primaryKey,
              const EnvelopeWriter& writer, std::vector<Line>& out, std::string& why);

  // The transaction map() last returned Mapped for: its changes match map()'s lines one to one.
  const Hdb3Transaction& transaction() const { return txn_; }

  // The data of a catchup ack (absent when nothing changed: pass an empty view). Appends one
  // entry per transaction, in the server's order. Entries that cannot be mapped are skipped
  // and counted in `skipped`, `why` telling about the first; Malformed when the answer as a
  // whole is unreadable (nothing can be trusted then).
  Outcome mapCatchup(std::string_view data, const char* bufferEnd, std::string_view primaryKey,
                     const EnvelopeWriter& writer, std::vector<Hdb3CaughtUp>& out, size_t& skipped,
                     std::string& why);

  // The first step of map(), for tests: the transaction's parts without the lines.
  Outcome parse(std::string_view data, const char* bufferEnd, std::string_view primaryKey, Hdb3Transaction& out,
                std::string& why);

 private:
  simdjson::ondemand::parser parser_;
  Hdb3Transaction txn_;  // reused: keeps the vector's capacity
};

}  // namespace hdb
