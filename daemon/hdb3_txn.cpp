#include "hdb3_txn.h"

#include "json_util.h"

namespace hdb {
namespace {

namespace od = simdjson::ondemand;

constexpr std::string_view kOperations[] = {"insert", "update", "upsert", "delete"};

std::string_view internOperation(std::string_view s) {
  for (auto k : kOperations)
    if (k == s) return k;
  return {};
}

// Text from the network, made safe for one log line.
std::string printable(std::string_view s, size_t max = 40) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > max) out += "...";
  return out;
}

bool isKeyType(od::value& v) {
  od::json_type t;
  return v.type().get(t) == simdjson::SUCCESS && (t == od::json_type::number || t == od::json_type::string);
}

// The parts of a transaction as they are met; the operation may come before or after its records.
struct Draft {
  std::string_view operation;
  std::string unknownOperation;
  bool haveOperation = false;
  bool haveRecords = false;
  bool haveHashValues = false;
  std::vector<std::string_view> hashValues;
};

class Reader {
 public:
  // `catchupEntry`: the object is an entry of a catchup answer, whose time is its own
  // `timestamp` rather than `__origin.timestamp`.
  Reader(od::document& doc, std::string_view primaryKey, Hdb3Transaction& out, std::string& why,
         bool catchupEntry = false)
      : doc_(doc), primaryKey_(primaryKey), out_(out), why_(why), catchupEntry_(catchupEntry) {}

  // Broken JSON stops everything; a record that cannot be keyed is skipped.
  bool fail(const char* what, simdjson::error_code e = simdjson::SUCCESS) {
    why_ = what;
    if (e != simdjson::SUCCESS) why_ += std::string(": ") + simdjson::error_message(e);
    return false;
  }

  void skip(std::string reason) {
    if (out_.skipped++ == 0) out_.skipReason = std::move(reason);
  }

  bool transaction(od::value v, Draft& d) {
    od::object obj;
    if (auto e = v.get_object().get(obj)) return fail("\"transaction\" is not an object", e);
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return fail("bad key in \"transaction\"", e);
      od::value child;
      if (auto e = field.value().get(child)) return fail("bad value in \"transaction\"", e);
      if (key == "operation") {
        std::string_view op;
        if (auto e = child.get_string().get(op)) return fail("\"operation\" is not a string", e);
        d.haveOperation = true;
        d.operation = internOperation(op);
        if (d.operation.empty()) d.unknownOperation = printable(op);
      } else if (key == "__origin" && !catchupEntry_) {
        if (!origin(child)) return false;
      } else if (key == "timestamp" && catchupEntry_) {
        if (!timestamp(child, "\"timestamp\"")) return false;
      } else if (key == "records") {
        d.haveRecords = true;
        if (!records(child)) return false;
      } else if (key == "hash_values") {
        d.haveHashValues = true;
        if (!hashValues(child, d)) return false;
      }
    }
    return true;
  }

 private:
  bool origin(od::value v) {
    od::object obj;
    if (auto e = v.get_object().get(obj)) return fail("\"__origin\" is not an object", e);
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return fail("bad key in \"__origin\"", e);
      if (key != "timestamp") continue;
      od::value ts;
      if (auto e = field.value().get(ts)) return fail("bad \"__origin.timestamp\"", e);
      if (!timestamp(ts, "\"__origin.timestamp\"")) return false;
    }
    return true;
  }

  bool timestamp(od::value ts, const char* what) {
    std::string_view tok = json::trimRight(ts.raw_json_token());
    double d;
    if (auto e = ts.get_double().get(d)) return fail((std::string(what) + " is not a number").c_str(), e);
    out_.timestamp = tok;
    return true;
  }

  bool records(od::value v) {
    od::array arr;
    if (auto e = v.get_array().get(arr)) return fail("\"records\" is not an array", e);
    for (auto element : arr) {
      od::value rec;
      if (auto e = element.get(rec)) return fail("bad record", e);
      if (!record(rec)) return false;
    }
    return true;
  }

  // One record: its raw text and its primary key, every value checked on the way.
  bool record(od::value v) {
    const char* begin = v.raw_json_token().data();
    od::json_type t;
    if (auto e = v.type().get(t)) return fail("bad record", e);
    if (t != od::json_type::object) {
      if (auto e = json::validate(v)) return fail("bad record", e);
      skip("a record is not an object");
      return true;
    }
    od::object obj;
    if (auto e = v.get_object().get(obj)) return fail("bad record", e);
    Hdb3Change change;
    bool badKey = false;
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return fail("bad key in a record", e);
      od::value child;
      if (auto e = field.value().get(child)) return fail("bad value in a record", e);
      if (key == primaryKey_ && change.id.empty() && !badKey) {
        std::string_view tok = json::trimRight(child.raw_json_token());
        badKey = !isKeyType(child);
        if (auto e = json::validate(child, 1)) return fail("bad value in a record", e);
        if (!badKey) change.id = tok;
      } else if (auto e = json::validate(child, 1)) {
        return fail("bad value in a record", e);
      }
    }
    const char* end = nullptr;
    if (auto e = doc_.current_location().get(end)) return fail("truncated record", e);
    if (badKey) {
      skip("primary key '" + std::string(primaryKey_) + "' is neither a number nor a string");
    } else if (change.id.empty()) {
      skip("a record without its primary key '" + std::string(primaryKey_) + "' (is primary_key: set for this table?)");
    } else {
      change.record = json::trimRight(std::string_view(begin, size_t(end - begin)));
      out_.changes.push_back(change);
    }
    return true;
  }

  bool hashValues(od::value v, Draft& d) {
    od::array arr;
    if (auto e = v.get_array().get(arr)) return fail("\"hash_values\" is not an array", e);
    for (auto element : arr) {
      od::value hv;
      if (auto e = element.get(hv)) return fail("bad hash value", e);
      std::string_view tok = json::trimRight(hv.raw_json_token());
      bool ok = isKeyType(hv);
      if (auto e = json::validate(hv, 1)) return fail("bad hash value", e);
      if (ok) d.hashValues.push_back(tok);
      else skip("a hash value is neither a number nor a string");
    }
    return true;
  }

  od::document& doc_;
  std::string_view primaryKey_;
  Hdb3Transaction& out_;
  std::string& why_;
  bool catchupEntry_;
};

// After a transaction's fields were read: checks what they say and settles its changes.
Hdb3TxnMapper::Outcome finish(const Draft& d, Hdb3Transaction& out, std::string_view timestampKey,
                              std::string& why) {
  using Outcome = Hdb3TxnMapper::Outcome;
  if (!d.haveOperation) {
    why = "no \"operation\"";
    return Outcome::Malformed;
  }
  if (out.timestamp.empty()) {
    why = "a transaction without " + std::string(timestampKey) + " (not committed by a server)";
    return Outcome::Ignored;
  }
  if (d.operation.empty()) {
    why = "unsupported operation '" + d.unknownOperation + "'";
    return Outcome::Malformed;
  }
  out.operation = d.operation;
  if (out.operation == "delete") {
    if (d.haveHashValues) {
      out.changes.clear();  // a delete's records (if any) only repeat its keys
      for (auto hv : d.hashValues) out.changes.push_back({hv, {}});
    } else if (d.haveRecords) {
      for (auto& c : out.changes) c.record = {};
    } else {
      why = "a delete without \"hash_values\"";
      return Outcome::Malformed;
    }
  } else if (!d.haveRecords) {
    why = "'" + std::string(out.operation) + "' without \"records\"";
    return Outcome::Malformed;
  }
  return Outcome::Mapped;
}

void resetTransaction(Hdb3Transaction& out) {
  out.operation = {};
  out.txn = {};
  out.timestamp = {};
  out.changes.clear();
  out.skipped = 0;
  out.skipReason.clear();
}

}  // namespace

Hdb3TxnMapper::Outcome Hdb3TxnMapper::parse(std::string_view data, const char* bufferEnd, std::string_view primaryKey,
                                            Hdb3Transaction& out, std::string& why) {
  resetTransaction(out);
  if (data.empty() || bufferEnd < data.data() + data.size() + simdjson::SIMDJSON_PADDING) {
    why = "internal: data without padding";
    return Outcome::Malformed;
  }
  od::document doc;
  if (auto e = parser_.iterate(json::paddedView(data, bufferEnd)).get(doc)) {
    why = std::string("not JSON: ") + simdjson::error_message(e);
    return Outcome::Malformed;
  }
  od::object obj;
  if (doc.get_object().get(obj)) {
    why = "the published data is not an object";
    return Outcome::Malformed;
  }
  Reader reader(doc, primaryKey, out, why);
  auto malformed = [&](const char* what, simdjson::error_code e = simdjson::SUCCESS) {
    reader.fail(what, e);
    return Outcome::Malformed;
  };
  Draft d;
  std::string type;
  bool haveTransaction = false, transacted = true;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return malformed("bad key", e);
    od::value v;
    if (auto e = field.value().get(v)) return malformed("bad value", e);
    if (key == "type") {
      std::string_view t;
      if (auto e = v.get_string().get(t)) return malformed("\"type\" is not a string", e);
      type = printable(t);
    } else if (key == "id") {
      std::string_view tok = json::trimRight(v.raw_json_token());
      std::string_view id;
      if (auto e = v.get_string().get(id)) return malformed("\"id\" is not a string", e);
      out.txn = tok;
    } else if (key == "__transacted") {
      if (auto e = v.get_bool().get(transacted)) return malformed("\"__transacted\" is not a boolean", e);
    } else if (key == "transaction") {
      haveTransaction = true;
      if (!reader.transaction(v, d)) return Outcome::Malformed;
    }
  }
  if (type != "HDB_TRANSACTION") {
    why = type.empty() ? "a message without a type" : "a message of type '" + type + "'";
    return Outcome::Ignored;
  }
  // What another client publishes on the channel passes through the server before it is
  // committed; only the committed copy carries __origin (and __transacted: true).
  if (!transacted) {
    why = "a transaction not yet committed (__transacted: false)";
    return Outcome::Ignored;
  }
  if (!haveTransaction) return malformed("no \"transaction\"");
  if (!d.haveOperation) return malformed("no \"transaction.operation\"");
  return finish(d, out, "__origin.timestamp", why);
}

Hdb3TxnMapper::Outcome Hdb3TxnMapper::map(std::string_view data, const char* bufferEnd, std::string_view primaryKey,
                                          const EnvelopeWriter& writer, std::vector<Line>& out, std::string& why) {
  Outcome outcome = parse(data, bufferEnd, primaryKey, txn_, why);
  if (outcome != Outcome::Mapped) return outcome;
  EnvelopeFields f;
  f.op = txn_.operation;
  f.ts = txn_.timestamp;
  f.cursor = txn_.timestamp;
  f.txn = txn_.txn;
  for (const Hdb3Change& c : txn_.changes) {
    f.id = c.id;
    f.record = c.record;
    out.push_back(writer.write(f));
  }
  if (txn_.skipped) why = std::to_string(txn_.skipped) + " record(s) skipped: " + txn_.skipReason;
  return outcome;
}

Hdb3TxnMapper::Outcome Hdb3TxnMapper::mapCatchup(std::string_view data, const char* bufferEnd,
                                                 std::string_view primaryKey, const EnvelopeWriter& writer,
                                                 std::vector<Hdb3CaughtUp>& out, size_t& skipped, std::string& why) {
  skipped = 0;
  if (data.empty()) return Outcome::Mapped;  // nothing changed in the window
  if (bufferEnd < data.data() + data.size() + simdjson::SIMDJSON_PADDING) {
    why = "internal: data without padding";
    return Outcome::Malformed;
  }
  od::document doc;
  if (auto e = parser_.iterate(json::paddedView(data, bufferEnd)).get(doc)) {
    why = std::string("not JSON: ") + simdjson::error_message(e);
    return Outcome::Malformed;
  }
  auto malformed = [&](const char* what, simdjson::error_code e = simdjson::SUCCESS) {
    why = what;
    if (e != simdjson::SUCCESS) why += std::string(": ") + simdjson::error_message(e);
    return Outcome::Malformed;
  };
  od::object obj;
  if (auto e = doc.get_object().get(obj)) return malformed("the catchup answer is not an object", e);
  bool haveTransactions = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return malformed("bad key", e);
    if (key != "transaction") continue;
    od::object txn;
    if (auto e = field.value().get_object().get(txn)) return malformed("\"transaction\" is not an object", e);
    for (auto tf : txn) {
      if (auto e = tf.unescaped_key().get(key)) return malformed("bad key in \"transaction\"", e);
      if (key != "transactions") continue;
      haveTransactions = true;
      od::array entries;
      if (auto e = tf.value().get_array().get(entries)) return malformed("\"transactions\" is not an array", e);
      for (auto element : entries) {
        od::value v;
        if (auto e = element.get(v)) return malformed("bad entry in \"transactions\"", e);
        const char* begin = v.raw_json_token().data();
        resetTransaction(txn_);
        Draft d;
        std::string entryWhy;
        Reader reader(doc, primaryKey, txn_, entryWhy, true);
        if (!reader.transaction(v, d)) return malformed(("an entry of \"transactions\": " + entryWhy).c_str());
        const char* end = nullptr;
        if (auto e = doc.current_location().get(end)) return malformed("truncated catchup answer", e);
        if (finish(d, txn_, "timestamp", entryWhy) != Outcome::Mapped) {
          if (skipped++ == 0) why = entryWhy;
          continue;
        }
        Hdb3CaughtUp& c = out.emplace_back();
        c.operation = txn_.operation;
        c.timestamp = txn_.timestamp;
        c.raw = json::trimRight(std::string_view(begin, size_t(end - begin)));
        c.changes = txn_.changes;
        EnvelopeFields f;
        f.op = c.operation;
        f.ts = c.timestamp;
        f.cursor = c.timestamp;
        for (const Hdb3Change& change : c.changes) {
          f.id = change.id;
          f.record = change.record;
          c.lines.push_back(writer.write(f));
        }
        if (txn_.skipped && skipped++ == 0)
          why = std::to_string(txn_.skipped) + " record(s) skipped: " + txn_.skipReason;
      }
    }
  }
  if (!haveTransactions) return malformed("no \"transaction.transactions\" in the catchup answer");
  return Outcome::Mapped;
}

}  // namespace hdb
