// The HarperDB 4 writer's pure parts: the operations API body it sends and
// how it reads HarperDB's answers (captured from harperdb@4.7.29).
#include <doctest/doctest.h>

#include "hdb4_writer.h"

using namespace hdb;

namespace {
WriteCommand command(WriteOp op, std::string items, size_t count) {
  WriteCommand c;
  c.op = op;
  c.database = "dev";
  c.table = "ani\"mals";
  c.items = std::move(items);
  c.count = count;
  return c;
}
HttpResult answer(int status, std::string body) {
  HttpResult r;
  r.status = status;
  r.body = std::move(body);
  r.sent = true;
  return r;
}
}  // namespace

TEST_CASE("hdb4WriteBody: the operation, names escaped, records or ids as given") {
  CHECK(hdb4WriteBody(command(WriteOp::Insert, R"([{"id":1,"name":"a"}])", 1)) ==
        R"({"operation":"insert","database":"dev","table":"ani\"mals","records":[{"id":1,"name":"a"}]})");
  CHECK(hdb4WriteBody(command(WriteOp::Upsert, R"([{"id":1}])", 1)) ==
        R"({"operation":"upsert","database":"dev","table":"ani\"mals","records":[{"id":1}]})");
  CHECK(hdb4WriteBody(command(WriteOp::Delete, R"([1,"b"])", 2)) ==
        R"({"operation":"delete","database":"dev","table":"ani\"mals","ids":[1,"b"]})");
}

TEST_CASE("hdb4WriteResult: written and skipped ids from each operation's answer") {
  auto r = hdb4WriteResult(answer(200, R"({"message":"inserted 2 of 2 records","inserted_hashes":[1,2],"skipped_hashes":[]})"));
  CHECK(r.ok);
  CHECK(r.fields == R"("written":[1,2],"skipped":[])");
  r = hdb4WriteResult(answer(200, R"({"message":"updated 1 of 2 records","update_hashes":[1],"skipped_hashes":[99]})"));
  CHECK(r.fields == R"("written":[1],"skipped":[99])");
  r = hdb4WriteResult(answer(200, R"({"message":"upserted 1 of 1 records","upserted_hashes":["x"]})"));
  CHECK(r.fields == R"("written":["x"])");
  r = hdb4WriteResult(answer(200, R"({"message":"2 of 2 records successfully deleted","deleted_hashes":[1,77],"skipped_hashes":[]})"));
  CHECK(r.fields == R"("written":[1,77],"skipped":[])");
  r = hdb4WriteResult(answer(200, R"({"message":"ok"})"));
  CHECK(r.ok);
  CHECK(r.fields.empty());
}

TEST_CASE("hdb4WriteResult: HarperDB's refusals keep its words") {
  auto r = hdb4WriteResult(answer(400, R"({"error":"Table 'dev.nope' does not exist"})"));
  CHECK_FALSE(r.ok);
  CHECK(r.error == "HarperDB 4 answered 400: Table 'dev.nope' does not exist");
  r = hdb4WriteResult(answer(500, "<html>oops</html>"));
  CHECK(r.error == "HarperDB 4 answered 500: <html>oops</html>");
  r = hdb4WriteResult(answer(401, std::string(1000, 'x')));
  CHECK(r.error.size() < 400);
  r = hdb4WriteResult(answer(200, "not json"));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("may have been applied") != std::string::npos);
}

TEST_CASE("hdb4WriteResult: no answer says whether anything could have been written") {
  HttpResult r;
  r.error = "connection refused";
  CHECK(hdb4WriteResult(r).error ==
        "no answer from HarperDB 4's operations API (connection refused); nothing was written");
  r.sent = true;
  r.error = "no answer within 30 s";
  CHECK(hdb4WriteResult(r).error.find("may or may not have been applied") != std::string::npos);
}
