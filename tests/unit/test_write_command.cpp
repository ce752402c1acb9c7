// The ingest socket's command lines (daemon/write_command.cpp): what a valid
// command becomes, every refusal with its exact message, and the answer lines.
#include <doctest/doctest.h>

#include <string>

#include "write_command.h"

namespace {

struct Outcome {
  bool ok;
  std::string error;
  hdb::ParsedCommand parsed;
};

Outcome parse(const std::string& line) {
  static hdb::WriteCommandParser parser;  // reused, as the socket reuses it
  Outcome o;
  o.ok = parser.parse(line, o.parsed, o.error);
  return o;
}

}  // namespace

TEST_CASE("write command: each op, its items and count") {
  auto o = parse(R"({"op":"insert","database":"dev","table":"animals","records":[{"id":1,"name":"a"}, {"id":2}]})");
  REQUIRE(o.ok);
  CHECK(o.error.empty());
  CHECK(o.parsed.command.op == hdb::WriteOp::Insert);
  CHECK(o.parsed.command.database == "dev");
  CHECK(o.parsed.command.table == "animals");
  CHECK(o.parsed.command.items == R"([{"id":1,"name":"a"}, {"id":2}])");
  CHECK(o.parsed.command.count == 2);
  CHECK(o.parsed.ref.empty());

  o = parse(R"({"records":[{"id":"x"}],"op":"update","schema":"dev","table":"t","ref":"req-1"})");
  REQUIRE(o.ok);
  CHECK(o.parsed.command.op == hdb::WriteOp::Update);
  CHECK(o.parsed.command.database == "dev");  // schema: a synonym
  CHECK(o.parsed.ref == R"("req-1")");

  o = parse(R"({"op":"upsert","database":"d","table":"t","records":[{}],"ref":-12.5e1} )");
  REQUIRE(o.ok);
  CHECK(o.parsed.command.op == hdb::WriteOp::Upsert);
  CHECK(o.parsed.ref == "-12.5e1");

  o = parse(R"({"op":"delete","database":"d","table":"t","ids":[1,"two",3.5]})");
  REQUIRE(o.ok);
  CHECK(o.parsed.command.op == hdb::WriteOp::Delete);
  CHECK(o.parsed.command.items == R"([1,"two",3.5])");
  CHECK(o.parsed.command.count == 3);

  // Escapes in names are decoded; the items keep the client's text.
  o = parse(R"({"op":"insert","database":"d\u0065v","table":"t","records":[{"n":"\u00e9\n"}]})");
  REQUIRE(o.ok);
  CHECK(o.parsed.command.database == "dev");
  CHECK(o.parsed.command.items == R"([{"n":"\u00e9\n"}])");
}

TEST_CASE("write command: every refusal, with its message") {
  struct Case {
    const char* line;
    const char* error;
    const char* ref;  // echoed with the error
  };
  const Case cases[] = {
      {"not json", "not valid JSON: Problem while parsing an atom starting with the letter 'n'", ""},
      {"{\"op\":", "not valid JSON: JSON document ended early in the middle of an object or array.", ""},
      {"[1,2]", "a command is a JSON object, not an array", ""},
      {"\"insert\"", "a command is a JSON object, not a string", ""},
      {"42", "a command is a JSON object, not a number", ""},
      {"{}", "missing \"op\" (insert, update, upsert or delete)", ""},
      {R"({"op":"nuke","database":"d","table":"t","ids":[1],"ref":"r1"})",
       "unknown op \"nuke\"; expected insert, update, upsert or delete", "\"r1\""},
      {R"({"op":1,"database":"d","table":"t","ids":[1],"ref":2})", "\"op\" must be a string, not a number", "2"},
      {R"({"op":"insert","table":"t","records":[{}]})", "missing \"database\"", ""},
      {R"({"op":"insert","database":"d","records":[{}]})", "missing \"table\"", ""},
      {R"({"op":"insert","database":"d","schema":"d","table":"t","records":[{}]})",
       "\"schema\" is another name for \"database\"; give one", ""},
      {R"({"op":"insert","database":"","table":"t","records":[{}]})", "\"database\" is empty", ""},
      {R"({"op":"insert","database":"d","table":null,"records":[{}]})", "\"table\" must be a string, not null", ""},
      {R"({"op":"insert","database":"d","table":"t"})", "missing \"records\"", ""},
      {R"({"op":"delete","database":"d","table":"t"})", "missing \"ids\"", ""},
      {R"({"op":"delete","database":"d","table":"t","records":[{}]})", "delete takes \"ids\", not \"records\"", ""},
      {R"({"op":"upsert","database":"d","table":"t","ids":[1]})", "upsert takes \"records\", not \"ids\"", ""},
      {R"({"op":"insert","database":"d","table":"t","records":[]})", "\"records\" is empty; give at least one", ""},
      {R"({"op":"insert","database":"d","table":"t","records":{"id":1}})",
       "\"records\" must be an array, not an object", ""},
      {R"({"op":"insert","database":"d","table":"t","records":[{},[1]],"ref":"x"})",
       "records[1] is an array; each record must be an object", "\"x\""},
      {R"({"op":"delete","database":"d","table":"t","ids":[1,{"id":2}]})",
       "ids[1] is an object; each id must be a string or a number", ""},
      {R"({"op":"delete","database":"d","table":"t","ids":[true]})",
       "ids[0] is true or false; each id must be a string or a number", ""},
      {R"({"op":"insert","op":"delete","database":"d","table":"t","records":[{}]})", "\"op\" is given twice", ""},
      {R"({"op":"insert","database":"d","table":"t","records":[{}],"server":"x"})",
       "unknown key \"server\"; a command has op, database (or schema), table, records (ids for delete) and "
       "optionally ref", ""},
      {R"({"op":"insert","database":"d","table":"t","records":[{}],"ref":{"a":1}})",
       "\"ref\" must be a string or a number, not an object", ""},
      {R"({"op":"insert","database":"d","table":"t","records":[{}]} {"op":"insert"})",
       "text follows the command's closing brace (one command per line)", ""},
      {R"({"op":"insert","database":"d","table":"t","records":[{"a":tru}]})",
       "not valid JSON: The JSON element does not have the requested type.", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    auto o = parse(c.line);
    CHECK_FALSE(o.ok);
    CHECK(o.error == c.error);
    CHECK(o.parsed.ref == c.ref);
  }
}

TEST_CASE("write command: limits") {
  std::string longName(hdb::kMaxNameBytes + 1, 'n');
  auto o = parse(R"({"op":"insert","database":")" + longName + R"(","table":"t","records":[{}]})");
  CHECK_FALSE(o.ok);
  CHECK(o.error == "\"database\" is longer than 255 bytes");

  std::string longRef(hdb::kMaxRefBytes, 'r');
  o = parse(R"({"op":"insert","database":"d","table":"t","records":[{}],"ref":")" + longRef + R"("})");
  CHECK_FALSE(o.ok);
  CHECK(o.error == "\"ref\" is longer than 256 bytes");
  CHECK(o.parsed.ref.empty());

  // Nesting deeper than a record could need is refused, not recursed into.
  std::string deep = "{\"op\":\"insert\",\"database\":\"d\",\"table\":\"t\",\"records\":[" + std::string(100, '[') +
                     std::string(100, ']') + "]}";
  o = parse(deep);
  CHECK_FALSE(o.ok);
  CHECK(o.error.starts_with("not valid JSON"));

  // A long unknown op is shortened in the message, never cut inside a UTF-8 character.
  o = parse("{\"op\":\"" + std::string(39, 'x') + "\xc3\xa9zzz\",\"database\":\"d\",\"table\":\"t\",\"ids\":[1]}");
  CHECK_FALSE(o.ok);
  CHECK(o.error == "unknown op \"" + std::string(39, 'x') + "...\"; expected insert, update, upsert or delete");
}

TEST_CASE("write command: answer lines") {
  hdb::WriteCommand c;
  c.op = hdb::WriteOp::Upsert;
  c.database = "dev";
  c.table = "an\"imals";
  c.count = 3;
  CHECK(hdb::answerOk(7, "\"r\"", c, "\"written\":[1,2,3]") ==
        "{\"line\":7,\"ref\":\"r\",\"ok\":true,\"op\":\"upsert\",\"database\":\"dev\",\"table\":\"an\\\"imals\","
        "\"count\":3,\"written\":[1,2,3]}\n");
  CHECK(hdb::answerOk(1, "", c, "") ==
        "{\"line\":1,\"ok\":true,\"op\":\"upsert\",\"database\":\"dev\",\"table\":\"an\\\"imals\",\"count\":3}\n");
  CHECK(hdb::answerError(2, "5", "bad\nthing") == "{\"line\":2,\"ref\":5,\"ok\":false,\"error\":\"bad\\nthing\"}\n");
  CHECK(hdb::answerError(3, "", "x") == "{\"line\":3,\"ok\":false,\"error\":\"x\"}\n");
}
