// Which pending HarperDB 3 write a committed transaction confirms. Pure: no lws.
//
// HarperDB 3 answers a `#publish` write with nothing: the writer learns that it
// was applied only when the transaction comes back on its own subscription, and
// nothing we add to the message comes back with it (measured: docs/harperdb3.md,
// "Writing"). So an echo is matched by what it does carry: the table (one
// matcher per table), the operation, and the keys of its records (`hash_values`
// for a delete). Rules, in submit order (FIFO), the first pending write that
// fits takes the echo:
//   - same operation;
//   - every echoed key is one of the write's keys not yet seen, or, for an
//     insert or upsert with records that have no key, a key HarperDB made up
//     for one of those (it assigns a UUID);
// Keys the write named that the echo lacks were skipped by HarperDB (an insert
// of an existing id, an update or delete of a missing one). A write that
// changes nothing at all is never echoed: it can only time out.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hdb3_txn.h"
#include "writer.h"

namespace hdb {

// A key as it compares: "s:" + the unescaped string, or "n:" + the number in
// its shortest round-trip form (7, 7.0 and 7e0 are one key). Empty: not a key.
std::string canonicalKey(std::string_view rawJson);

class Hdb3WriteMatcher {
 public:
  struct Confirmation {
    uint64_t token = 0;
    // For the answer line (WriteResult::fields), without braces:
    // "confirmed_at":TS,"txn":"uuid","written":[ids],"skipped":[ids]
    // (skipped: what HarperDB left out; [] when nothing, as HarperDB 4's answers).
    std::string fields;
  };

  // Remembers a write about to be sent: `items` is a WriteCommand's records
  // (insert/update/upsert; each record's key is its `primaryKey` field) or ids
  // (delete). False, with `why`, when they cannot be read.
  bool add(uint64_t token, WriteOp op, std::string_view items, std::string_view primaryKey, std::string& why);

  // The pending write that `txn` (a transaction mapped from this table's channel)
  // confirms, removed from the pending ones; nullopt when it confirms none
  // (someone else's write).
  std::optional<Confirmation> match(const Hdb3Transaction& txn);

  // Forgets a write (answered otherwise: timed out, connection lost).
  void remove(uint64_t token);
  size_t size() const { return pending_.size(); }

 private:
  struct Key {
    std::string canonical;
    std::string raw;  // the JSON text the client sent
  };
  struct Pending {
    uint64_t token;
    std::string_view operation;  // static: writeOpName()
    std::vector<Key> keys;
    size_t keyless = 0;          // insert/upsert records without the key field
  };
  // Which of `p`'s keys each echoed key takes (index, or SIZE_MAX for a keyless record).
  bool fits(const Pending& p, const std::vector<std::string>& echoed, std::vector<size_t>& taken) const;

  simdjson::ondemand::parser parser_;
  std::vector<Pending> pending_;  // submit order
};

}  // namespace hdb
