// HarperDB 3 transactions to envelope lines: the #publish messages captured from
// a real HarperDB 3.3 (../shared/frames/hdb3/canonical-session.txt), each
// operation's fields, the primary_key option, and malformed transactions.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hdb3_txn.h"
#include "json_util.h"
#include "sc_codec.h"

using hdb::Hdb3Transaction;
using hdb::Hdb3TxnMapper;
using Outcome = hdb::Hdb3TxnMapper::Outcome;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The data of each #publish the server sent in the canonical session, in order.
std::vector<std::string> capturedTransactions() {
  std::vector<std::string> out;
  std::istringstream in(readFile(HDB_FRAMES_DIR "/hdb3/canonical-session.txt"));
  std::string line;
  hdb::sc::PacketParser parser;
  while (std::getline(in, line)) {
    if (line.rfind("S>C text {\"event\":\"#publish\"", 0) != 0) continue;
    std::string buf = line.substr(9);
    hdb::json::reservePadding(buf);
    std::vector<hdb::sc::Packet> packets;
    std::string error;
    REQUIRE(parser.parse(buf, packets, error) == 0);
    hdb::sc::Publish pub;
    REQUIRE(parser.publish(packets.at(0).data, pub, error));
    out.emplace_back(pub.data);
  }
  return out;
}

struct Mapped {
  Outcome outcome;
  std::vector<std::string> lines;
  std::string why;
};

Mapped map(const std::string& data, const std::string& primaryKey = "id") {
  static Hdb3TxnMapper mapper;
  hdb::EnvelopeWriter writer("legacy", "dev", "animals");
  std::string buf = data;
  hdb::json::reservePadding(buf);
  std::vector<hdb::Line> lines;
  Mapped m;
  m.outcome = mapper.map(buf, buf.data() + buf.capacity(), primaryKey, writer, lines, m.why);
  for (const auto& l : lines) m.lines.push_back(*l);
  return m;
}

// A transaction as the server publishes it, around `transaction`.
std::string txn(const std::string& transaction, const std::string& extra = R"("__transacted":true)") {
  return R"({"id":"t-1","type":"HDB_TRANSACTION","transaction":)" + transaction + "," + extra +
         R"(,"timestamp":5,"schema":"dev","table":"animals"})";
}

}  // namespace

TEST_CASE("hdb3 txn: the captured session, line by line") {
  auto txns = capturedTransactions();
  REQUIRE(txns.size() == 9);
  const std::string head = R"({"v":1,"server":"legacy","database":"dev","table":"animals",)";

  Mapped insert = map(txns[0]);
  REQUIRE(insert.outcome == Outcome::Mapped);
  CHECK(insert.why.empty());
  REQUIRE(insert.lines.size() == 1);
  CHECK(insert.lines[0] ==
        head + R"("op":"insert","id":"a1","ts":1795692947526.691,"cursor":"1795692947526.691",)"
               R"("txn":"2186d83c-78c2-4cdd-b087-5d980b5d5454","record":{"id":"a1","type":"dog","name":"harper",)"
               R"("size":"medium","__updatedtime__":1795692947519,"__createdtime__":1795692947519}})"
               "\n");

  Mapped update = map(txns[1]);
  REQUIRE(update.lines.size() == 1);
  CHECK(update.lines[0] ==
        head + R"("op":"update","id":"a1","ts":1795692948356.164,"cursor":"1795692948356.164",)"
               R"("txn":"8a1a9e15-e277-409c-8e64-d11b9f872ade","record":{"id":"a1","size":"large",)"
               R"("__updatedtime__":1795692948354}})"
               "\n");

  Mapped upsert = map(txns[2]);
  REQUIRE(upsert.lines.size() == 1);
  CHECK(upsert.lines[0].find(R"("op":"upsert","id":"a2","ts":1795692949167.136,)") != std::string::npos);

  Mapped del = map(txns[3]);
  REQUIRE(del.lines.size() == 1);
  CHECK(del.lines[0] == head + R"("op":"delete","id":"a1","ts":1795692949975.717,"cursor":"1795692949975.717",)"
                               R"("txn":"44551594-7523-4152-8c7a-5035e3e2be30"})"
                               "\n");

  Mapped two = map(txns[5]);
  REQUIRE(two.lines.size() == 2);
  CHECK(two.lines[0].find(R"("op":"insert","id":"m1","ts":1795692951603.291,)") != std::string::npos);
  CHECK(two.lines[1].find(R"("op":"insert","id":"m2","ts":1795692951603.291,)") != std::string::npos);
  CHECK(two.lines[1].find(R"("record":{"id":"m2","type":"bee","name":"b","size":"tiny",)") != std::string::npos);

  // Writes made through the socket by another client come back committed, as the server's own.
  for (size_t i = 6; i < 9; ++i) {
    Mapped m = map(txns[i]);
    CHECK(m.outcome == Outcome::Mapped);
    CHECK(m.lines.size() == 1);
    CHECK(m.lines[0].find(R"("id":"ws1")") != std::string::npos);
  }
}

TEST_CASE("hdb3 txn: the parts of a transaction") {
  Hdb3TxnMapper mapper;
  std::string buf = txn(
      R"({"operation":"insert","__origin":{"timestamp":12.5,"user":"u"},"records":[{"id":1,"a":[1,{"b":null}]},{"a":2,"id":"x"}]})");
  hdb::json::reservePadding(buf);
  Hdb3Transaction t;
  std::string why;
  REQUIRE(mapper.parse(buf, buf.data() + buf.capacity(), "id", t, why) == Outcome::Mapped);
  CHECK(t.operation == "insert");
  CHECK(t.txn == R"("t-1")");
  CHECK(t.timestamp == "12.5");
  REQUIRE(t.changes.size() == 2);
  CHECK(t.changes[0].id == "1");
  CHECK(t.changes[0].record == R"({"id":1,"a":[1,{"b":null}]})");
  CHECK(t.changes[1].id == R"("x")");
  CHECK(t.changes[1].record == R"({"a":2,"id":"x"})");
  CHECK(t.skipped == 0);
}

TEST_CASE("hdb3 txn: field order and whitespace do not matter") {
  Mapped m = map(
      "{ \"transaction\" : { \"records\" : [ { \"id\" : 7 , \"n\" : \"x\" } ] ,\n"
      "  \"__origin\" : { \"timestamp\" : 3.25 } , \"operation\" : \"upsert\" } ,\n"
      "  \"type\" : \"HDB_TRANSACTION\" , \"id\" : \"t-2\" }");
  REQUIRE(m.outcome == Outcome::Mapped);
  REQUIRE(m.lines.size() == 1);
  CHECK(m.lines[0].find(R"("op":"upsert","id":7,"ts":3.25,"cursor":"3.25","txn":"t-2",)"
                        R"("record":{ "id" : 7 , "n" : "x" }})") != std::string::npos);
}

TEST_CASE("hdb3 txn: primary_key names the key field") {
  std::string data = txn(R"({"operation":"insert","__origin":{"timestamp":1},"records":[{"animal_id":9,"id":"other"}]})");
  Mapped byDefault = map(data);
  CHECK(byDefault.lines.at(0).find(R"("id":"other")") != std::string::npos);
  Mapped custom = map(data, "animal_id");
  CHECK(custom.lines.at(0).find(R"("op":"insert","id":9,)") != std::string::npos);

  // Records without the key are skipped (and said so), the others still go out.
  Mapped partial = map(txn(R"({"operation":"insert","__origin":{"timestamp":1},"records":[{"id":1},{"name":"x"},)"
                           R"({"id":{"nested":1}},[1],{"id":2}]})"));
  REQUIRE(partial.outcome == Outcome::Mapped);
  CHECK(partial.lines.size() == 2);
  CHECK(partial.why.find("3 record(s) skipped") != std::string::npos);
  CHECK(partial.why.find("primary key 'id'") != std::string::npos);
}

TEST_CASE("hdb3 txn: delete has one line per hash value and no record") {
  Mapped m = map(txn(R"({"operation":"delete","__origin":{"timestamp":2},"hash_values":[1,"b",3]})"));
  REQUIRE(m.outcome == Outcome::Mapped);
  REQUIRE(m.lines.size() == 3);
  CHECK(m.lines[0].find(R"("op":"delete","id":1,"ts":2,"cursor":"2","txn":"t-1"})") != std::string::npos);
  CHECK(m.lines[1].find(R"("id":"b")") != std::string::npos);
  for (const auto& l : m.lines) CHECK(l.find("record") == std::string::npos);

  // A delete that lists its records instead: their keys, still no record.
  Mapped byRecords = map(txn(R"({"operation":"delete","__origin":{"timestamp":2},"records":[{"id":4,"x":1}]})"));
  REQUIRE(byRecords.lines.size() == 1);
  CHECK(byRecords.lines[0].find(R"("op":"delete","id":4,)") != std::string::npos);
  CHECK(byRecords.lines[0].find("record") == std::string::npos);
}

TEST_CASE("hdb3 txn: messages that are not committed transactions are ignored") {
  CHECK(map(R"({"type":"HDB_USER","data":{}})").outcome == Outcome::Ignored);
  CHECK(map(R"({"data":{}})").outcome == Outcome::Ignored);
  // What a client publishes, before the server commits it.
  CHECK(map(R"({"hdb_header":{"__data_source":6},"type":"HDB_TRANSACTION","schema":"dev","table":"animals",)"
            R"("transaction":{"operation":"insert","schema":"dev","table":"animals","records":[{"id":"ws1"}]}})")
            .outcome == Outcome::Ignored);
  CHECK(map(txn(R"({"operation":"insert","__origin":{"timestamp":1},"records":[{"id":1}]})", R"("__transacted":false)"))
            .outcome == Outcome::Ignored);
}

TEST_CASE("hdb3 txn: malformed transactions are dropped whole, never a crash") {
  struct Case {
    std::string data;
    const char* reason;
  };
  std::vector<Case> cases = {
      {"", "padding"},
      {"[1]", "not an object"},
      {"nope", "not an object"},
      {txn(R"({"operation":"csv_data_load","__origin":{"timestamp":1},"records":[]})"), "unsupported operation 'csv_data_load'"},
      {txn(R"({"operation":"insert","__origin":{"timestamp":"1"},"records":[]})"), "not a number"},
      {txn(R"({"operation":"insert","__origin":{"timestamp":1}})"), "without \"records\""},
      {txn(R"({"operation":"insert","__origin":{"timestamp":1},"records":{}})"), "not an array"},
      {txn(R"({"operation":"delete","__origin":{"timestamp":1}})"), "without \"hash_values\""},
      {txn(R"({"__origin":{"timestamp":1},"records":[]})"), "no \"transaction.operation\""},
      {txn(R"({"operation":7,"__origin":{"timestamp":1},"records":[]})"), "not a string"},
      {txn(R"({"operation":"insert","__origin":{"timestamp":1},"records":[{"id":1,"x":tru}]})"), "bad value in a record"},
      {txn(R"({"operation":"insert","__origin":{"timestamp":1},"records":[{"id":1,"x":"\ud800"}]})"), "bad value in a record"},
      {txn(R"({"operation":"insert","__origin":[],"records":[]})"), "\"__origin\" is not an object"},
      {R"({"type":"HDB_TRANSACTION","id":5,"transaction":{}})", "\"id\" is not a string"},
      {R"({"type":"HDB_TRANSACTION","id":"x"})", "no \"transaction\""},
  };
  for (const auto& c : cases) {
    Mapped m = map(c.data);
    CHECK_MESSAGE(m.outcome == Outcome::Malformed, c.data);
    CHECK(m.lines.empty());
    CHECK_MESSAGE(m.why.find(c.reason) != std::string::npos, c.data << " -> " << m.why);
  }
}

namespace {

struct CaughtUp {
  Outcome outcome;
  std::vector<std::string> timestamps;
  std::vector<std::string> raws;
  std::vector<std::string> lines;
  size_t skipped = 0;
  std::string why;
};

CaughtUp mapCatchup(const std::string& data) {
  Hdb3TxnMapper mapper;
  hdb::EnvelopeWriter writer("legacy", "dev", "animals");
  std::string buf = data;
  hdb::json::reservePadding(buf);
  std::vector<hdb::Hdb3CaughtUp> out;
  CaughtUp c;
  c.outcome = mapper.mapCatchup(buf, buf.data() + buf.capacity(), "id", writer, out, c.skipped, c.why);
  for (const auto& e : out) {
    c.timestamps.emplace_back(e.timestamp);
    c.raws.emplace_back(e.raw);
    for (const auto& l : e.lines) c.lines.push_back(*l);
  }
  return c;
}

// A catchup ack's data around `entries`, as HarperDB 3.3 answered (raw-catchup.log).
std::string catchupAnswer(const std::string& entries) {
  return R"({"id":"c-1","type":"HDB_TRANSACTION","hdb_header":{"timestamp":1795692784831},"transaction":{)"
         R"("channel":"dev:animals","operation":"catchup","transactions":[)" + entries + R"(]},"__originator":{"n":111}})";
}

}  // namespace

TEST_CASE("hdb3 catchup: each entry becomes the same lines a live message would") {
  auto c = mapCatchup(catchupAnswer(
      R"({"operation":"insert","user_name":"HDB_ADMIN","timestamp":1795692582077.058,"hash_values":["a1"],)"
      R"("records":[{"id":"a1","name":"harper","__updatedtime__":1795692582067}]},)"
      R"({"operation":"update","user_name":"HDB_ADMIN","timestamp":1795692582900.528,"hash_values":["a1"],)"
      R"("records":[{"id":"a1","size":"large"}],"original_records":[{"id":"a1","size":"medium"}]},)"
      R"({"operation":"delete","user_name":"HDB_ADMIN","timestamp":1795692584527.513,"hash_values":["a1",2],)"
      R"("original_records":[{"id":"a1"}]})"));
  REQUIRE(c.outcome == Outcome::Mapped);
  CHECK(c.skipped == 0);
  CHECK(c.timestamps == std::vector<std::string>{"1795692582077.058", "1795692582900.528", "1795692584527.513"});
  REQUIRE(c.lines.size() == 4);
  CHECK(c.lines[0].find(R"("op":"insert","id":"a1","ts":1795692582077.058,"cursor":"1795692582077.058")") !=
        std::string::npos);
  CHECK(c.lines[0].find(R"("record":{"id":"a1","name":"harper","__updatedtime__":1795692582067})") !=
        std::string::npos);
  CHECK(c.lines[1].find(R"("record":{"id":"a1","size":"large"})") != std::string::npos);
  CHECK(c.lines[1].find("medium") == std::string::npos);  // original_records are not the change
  CHECK(c.lines[2].find(R"("op":"delete","id":"a1")") != std::string::npos);
  CHECK(c.lines[3].find(R"("op":"delete","id":2)") != std::string::npos);
  CHECK(c.lines[2].find("record") == std::string::npos);
  CHECK(c.raws[0].front() == '{');
  CHECK(c.raws[0].back() == '}');
  CHECK(c.raws[2].find("original_records") != std::string::npos);
}

TEST_CASE("hdb3 catchup: an empty answer, and bad entries") {
  CHECK(mapCatchup("").outcome == Outcome::Mapped);  // the ack carries no data when nothing changed
  CHECK(mapCatchup(catchupAnswer("")).lines.empty());
  auto c = mapCatchup(catchupAnswer(
      R"({"operation":"insert","hash_values":[1],"records":[{"id":1}]},)"
      R"({"operation":"drop_table","timestamp":3.5},)"
      R"({"operation":"insert","timestamp":4.5,"records":[{"id":4}]})"));
  REQUIRE(c.outcome == Outcome::Mapped);
  CHECK(c.skipped == 2);
  CHECK(c.why.find("without timestamp") != std::string::npos);
  CHECK(c.timestamps == std::vector<std::string>{"4.5"});
  CHECK(mapCatchup(R"({"id":"c-1","type":"HDB_TRANSACTION"})").outcome == Outcome::Malformed);
  CHECK(mapCatchup(catchupAnswer(R"({"operation":"insert","timestamp":"x","records":[]})")).outcome ==
        Outcome::Malformed);
  CHECK(mapCatchup(R"({"transaction":{"transactions":[{"operation":"insert",)").outcome == Outcome::Malformed);
}

TEST_CASE("sc codec: the catchup request") {
  CHECK(hdb::sc::catchup(7, "dev:an\"imals", 65000) ==
        R"({"event":"catchup","data":{"channel":"dev:an\"imals","milis_since_connected":65000},"cid":7})");
}
