#include <doctest/doctest.h>

#include "envelope.h"

TEST_CASE("envelope line: head, fields in order, newline") {
  hdb::EnvelopeWriter w("local", "dev", "animals");
  auto line = w.write({.op = "put", .id = "1", .ts = "1795693388907.117", .cursor = "1795693388920.1797",
                      .record = R"({"id":1,"name":"Harper"})"});
  CHECK(*line ==
        "{\"v\":1,\"server\":\"local\",\"database\":\"dev\",\"table\":\"animals\",\"op\":\"put\",\"id\":1,"
        "\"ts\":1795693388907.117,\"cursor\":\"1795693388920.1797\",\"record\":{\"id\":1,\"name\":\"Harper\"}}\n");
  CHECK(w.tableKey() == "dev.animals");
}

TEST_CASE("envelope without record (delete) and with a string id") {
  hdb::EnvelopeWriter w("s", "d", "t");
  auto line = w.write({.op = "delete", .id = "\"abc\"", .ts = "2.5", .cursor = "3.5"});
  CHECK(*line == "{\"v\":1,\"server\":\"s\",\"database\":\"d\",\"table\":\"t\",\"op\":\"delete\",\"id\":\"abc\","
                 "\"ts\":2.5,\"cursor\":\"3.5\"}\n");
}

TEST_CASE("names are JSON-escaped") {
  hdb::EnvelopeWriter w("a\"b", "d\\b", "t\n\x01");
  auto line = w.write({.op = "put", .id = "1", .record = "{}"});
  CHECK(line->find(R"("server":"a\"b","database":"d\\b","table":"t\n\u0001")") != std::string::npos);
}

TEST_CASE("appendJsonString") {
  std::string out;
  hdb::appendJsonString(out, "x\t\r\"\\\x1f" "é");
  CHECK(out == "\"x\\t\\r\\\"\\\\\\u001fé\"");
}

TEST_CASE("HarperDB 3 envelopes carry the transaction id") {
  hdb::EnvelopeWriter w("old", "dev", "animals");
  auto line = w.write({.op = "update", .id = "\"a1\"", .ts = "1795692948354.5", .cursor = "1795692948354.5",
                       .txn = "\"2186d83c\"", .record = R"({"id":"a1","size":"large"})"});
  CHECK(*line == "{\"v\":1,\"server\":\"old\",\"database\":\"dev\",\"table\":\"animals\",\"op\":\"update\","
                 "\"id\":\"a1\",\"ts\":1795692948354.5,\"cursor\":\"1795692948354.5\",\"txn\":\"2186d83c\","
                 "\"record\":{\"id\":\"a1\",\"size\":\"large\"}}\n");
}

TEST_CASE("gap lines name the table, the reason and the cursor") {
  hdb::EnvelopeWriter w("local", "dev", "animals");
  auto line = w.gap("history_expired", "1795693388920.1797", "the \"checkpoint\" is older than the history");
  CHECK(*line == "{\"v\":1,\"server\":\"local\",\"database\":\"dev\",\"table\":\"animals\",\"op\":\"gap\","
                 "\"reason\":\"history_expired\",\"cursor\":\"1795693388920.1797\","
                 "\"message\":\"the \\\"checkpoint\\\" is older than the history\"}\n");
}

// Found by fuzz_hdb3_txn: a server that pretty-prints its JSON put a line break inside the
// envelope, and every consumer read one change as two broken lines.
TEST_CASE("line breaks between a record's tokens become spaces") {
  hdb::EnvelopeWriter w("old", "dev", "animals");
  auto line = w.write({.op = "insert", .id = "1", .record = "{\"id\": 1,\n\"s\": \"a\\nb\"\r\n}"});
  CHECK(*line == "{\"v\":1,\"server\":\"old\",\"database\":\"dev\",\"table\":\"animals\",\"op\":\"insert\","
                 "\"id\":1,\"record\":{\"id\": 1, \"s\": \"a\\nb\"  }}\n");
}
