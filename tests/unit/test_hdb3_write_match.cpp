// Matching HarperDB 3 echoes to pending writes (hdb3_write_match.h). The echoes
// are shaped as HarperDB 3.3 sent them back to the writer (docs/harperdb3.md,
// "Writing"): only the records it applied, our own ids not repeated, a UUID for
// a record inserted without a key.
#include <doctest/doctest.h>

#include <string>

#include "hdb3_txn.h"
#include "hdb3_write_match.h"
#include "json_util.h"

using hdb::Hdb3Transaction;
using hdb::Hdb3TxnMapper;
using hdb::Hdb3WriteMatcher;
using hdb::WriteOp;

namespace {

// A transaction as the mapper reads it from an echo's #publish data. Holds the
// buffer the views point into.
struct Echo {
  std::string buf;
  Hdb3TxnMapper mapper;
  const Hdb3Transaction* txn = nullptr;

  Echo(const std::string& operation, const std::string& items, const std::string& ts = "1795725695208.737",
       const std::string& key = "id") {
    buf = R"({"id":"7ec9a110-26ff-46e5-8f65-5b03351a7937","type":"HDB_TRANSACTION","hdb_header":{"timestamp":1795725695224},)"
          R"("transaction":{"operation":")" + operation + R"(","schema":"dev","table":"animals","__origin":{"timestamp":)" +
          ts + R"(,"user":"cluster_user","node_name":"hdb3test"},)" + items +
          R"(},"__originator":{"hdb3test":111},"__transacted":true,"timestamp":1795725695225,"schema":"dev","table":"animals"})";
    hdb::json::reservePadding(buf);
    Hdb3Transaction t;
    std::string why;
    REQUIRE(mapper.parse(buf, buf.data() + buf.capacity(), key, t, why) == Hdb3TxnMapper::Outcome::Mapped);
    std::vector<hdb::Line> lines;
    hdb::EnvelopeWriter writer("s", "dev", "animals");
    REQUIRE(mapper.map(buf, buf.data() + buf.capacity(), key, writer, lines, why) == Hdb3TxnMapper::Outcome::Mapped);
    txn = &mapper.transaction();
  }
};

void add(Hdb3WriteMatcher& m, uint64_t token, WriteOp op, const std::string& items, const std::string& key = "id") {
  std::string why;
  REQUIRE_MESSAGE(m.add(token, op, items, key, why), why);
}

}  // namespace

TEST_CASE("canonical keys: numbers by value, strings by their text") {
  CHECK(hdb::canonicalKey("7") == hdb::canonicalKey("7.0"));
  CHECK(hdb::canonicalKey("7") == hdb::canonicalKey("7e0"));
  CHECK(hdb::canonicalKey("7") != hdb::canonicalKey("\"7\""));
  CHECK(hdb::canonicalKey("\"p1\"") == hdb::canonicalKey(R"("\u0070\u0031")"));
  CHECK(hdb::canonicalKey("\"a\"") != hdb::canonicalKey("\"b\""));
  CHECK(hdb::canonicalKey("") == "");
  CHECK(hdb::canonicalKey("nonsense") == "");
}

TEST_CASE("an echo confirms the write with its operation and keys, and says what it confirmed") {
  Hdb3WriteMatcher m;
  add(m, 1, WriteOp::Insert, R"([{"id":"p1","name":"harper"}])");
  Echo e("insert", R"("records":[{"id":"p1","name":"harper","__updatedtime__":1,"__createdtime__":1}])");
  auto c = m.match(*e.txn);
  REQUIRE(c);
  CHECK(c->token == 1);
  CHECK(c->fields ==
        R"("confirmed_at":1795725695208.737,"txn":"7ec9a110-26ff-46e5-8f65-5b03351a7937","written":["p1"],"skipped":[])");
  CHECK(m.size() == 0);
  CHECK_FALSE(m.match(*e.txn));  // the same echo again confirms nothing
}

TEST_CASE("someone else's transaction confirms nothing") {
  Hdb3WriteMatcher m;
  add(m, 1, WriteOp::Insert, R"([{"id":"p1"}])");
  CHECK_FALSE(m.match(*Echo("insert", R"("records":[{"id":"other"}])").txn));
  CHECK_FALSE(m.match(*Echo("update", R"("records":[{"id":"p1"}])").txn));        // another operation
  CHECK_FALSE(m.match(*Echo("insert", R"("records":[{"id":"p1"},{"id":"p9"}])").txn));  // more than we wrote
  CHECK(m.size() == 1);
}

TEST_CASE("records HarperDB skipped are reported as skipped") {
  Hdb3WriteMatcher m;
  // An insert of an existing p1 with a new p2: HarperDB 3 echoes p2 alone.
  add(m, 1, WriteOp::Insert, R"([{"id":"p1","name":"dup"},{"id":"p2","name":"new"}])");
  auto c = m.match(*Echo("insert", R"("records":[{"id":"p2","name":"new"}])").txn);
  REQUIRE(c);
  CHECK(c->fields.ends_with(R"("written":["p2"],"skipped":["p1"])"));
  // A delete of a missing id and an existing one.
  add(m, 2, WriteOp::Delete, R"(["missing4", 2])");
  c = m.match(*Echo("delete", R"("hash_values":[2])").txn);
  REQUIRE(c);
  CHECK(c->token == 2);
  CHECK(c->fields.ends_with(R"("written":[2],"skipped":["missing4"])"));
}

TEST_CASE("FIFO: the oldest write that fits takes the echo") {
  Hdb3WriteMatcher m;
  add(m, 1, WriteOp::Update, R"([{"id":1,"n":1}])");
  add(m, 2, WriteOp::Update, R"([{"id":2,"n":2}])");
  add(m, 3, WriteOp::Update, R"([{"id":1,"n":3}])");
  // Echoes may come out of order (HarperDB 3 did that once in 1,000): keys decide.
  auto c = m.match(*Echo("update", R"("records":[{"id":2,"n":2}])").txn);
  REQUIRE(c);
  CHECK(c->token == 2);
  c = m.match(*Echo("update", R"("records":[{"id":1,"n":1}])").txn);
  REQUIRE(c);
  CHECK(c->token == 1);
  c = m.match(*Echo("update", R"("records":[{"id":1.0,"n":3}])").txn);
  REQUIRE(c);
  CHECK(c->token == 3);
}

TEST_CASE("an insert without keys takes the ids HarperDB made up") {
  Hdb3WriteMatcher m;
  add(m, 1, WriteOp::Insert, R"([{"name":"nokey"},{"id":"k1","name":"keyed"}])");
  add(m, 2, WriteOp::Insert, R"([{"name":"other"}])");
  auto c = m.match(*Echo("insert", R"("records":[{"name":"nokey","id":"924c2665-2810-431b-aef1-b681d6f246be"},)"
                                   R"({"id":"k1","name":"keyed"}])").txn);
  REQUIRE(c);
  CHECK(c->token == 1);
  CHECK(c->fields.ends_with(R"("written":["924c2665-2810-431b-aef1-b681d6f246be","k1"],"skipped":[])"));
  // One made-up id cannot fill two keyless records' worth, nor a keyed one.
  add(m, 3, WriteOp::Insert, R"([{"id":"k3"}])");
  c = m.match(*Echo("insert", R"("records":[{"name":"other","id":"0b1c"}])").txn);
  REQUIRE(c);
  CHECK(c->token == 2);
  CHECK(m.size() == 1);
}

TEST_CASE("a table keyed by another field") {
  Hdb3WriteMatcher m;
  add(m, 1, WriteOp::Upsert, R"([{"order_id":7,"n":1},{"order_id":"x"}])", "order_id");
  auto c = m.match(*Echo("upsert", R"("records":[{"order_id":"x"},{"order_id":7,"n":1}])", "1.5", "order_id").txn);
  REQUIRE(c);
  CHECK(c->fields == R"("confirmed_at":1.5,"txn":"7ec9a110-26ff-46e5-8f65-5b03351a7937","written":["x",7],"skipped":[])");
}

TEST_CASE("remove() forgets a write; unreadable items are refused") {
  Hdb3WriteMatcher m;
  add(m, 1, WriteOp::Delete, R"([1])");
  m.remove(1);
  CHECK(m.size() == 0);
  CHECK_FALSE(m.match(*Echo("delete", R"("hash_values":[1])").txn));
  std::string why;
  CHECK_FALSE(m.add(2, WriteOp::Delete, R"([{"id":1}])", "id", why));
  CHECK(why.find("not a string or a number") != std::string::npos);
  CHECK_FALSE(m.add(3, WriteOp::Insert, R"({"id":1})", "id", why));
  CHECK(m.size() == 0);
}
