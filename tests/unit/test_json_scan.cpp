// json::scanValue, the one-pass check of a value's text that the HarperDB 4
// frame parser relies on: it must refuse what a full JSON parser refuses, and
// say where a valid value ends.
#include <doctest/doctest.h>

#include <simdjson.h>

#include <string>

#include "json_util.h"

namespace {

simdjson::error_code scan(const std::string& text, size_t& length) {
  return hdb::json::scanValue(text, length);
}

// The text is one value, maybe with whitespace after it.
bool accepted(const std::string& text) {
  size_t length = 0;
  if (scan(text, length) != simdjson::SUCCESS) return false;
  return text.find_first_not_of(" \t\r\n", length) == std::string::npos;
}

// simdjson's DOM parser checks a whole document; it is the reference here.
bool domAccepts(const std::string& text) {
  static simdjson::dom::parser parser;
  simdjson::dom::element e;
  return parser.parse(text).get(e) == simdjson::SUCCESS;
}

}  // namespace

TEST_CASE("scanValue accepts and refuses what a full JSON parser does") {
  const char* cases[] = {
      "{}", "[]", "0", "-0", "1.5", "-1.5e10", "1E+2", "2e-3", "true", "false", "null", "\"\"",
      R"("a\"b\\c\/d\b\f\n\r\t")", R"("\u00e9\uD83D\uDE00")", "\"caf\xc3\xa9\"",
      R"({"a":1,"b":[1,2,{"c":null}],"d":{"e":"f"}})", " [ 1 , 2 ] ", R"({ "a" : { } , "b" : [ ] })",
      // refused
      "", "{", "[", "}", "]", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{1:2}", "{\"a\":1,}", "[1,]", "[,1]", "[1 2]",
      "{\"a\":1 \"b\":2}", "01", "1.", ".5", "-", "1e", "1e+", "+1", "0x10", "tru", "truex", "nul", "fals",
      "\"abc", R"("\q")", R"("\u12")", R"("\u12G4")", "\"a\tb\"", "\"a\nb\"", "\"\x01\"", "[1]]", "{}}", "nan",
      "[\"a\",]", "{\"a\":1}x",
      // a double's range: 1e309 is infinity to a reader (found by fuzz_hdb4_frame); underflow is zero
      "1e308", "1.7976931348623157e308", "-1e-400", "1e309", "-1E+309", "21.7976931348623157e309",
  };
  for (const char* c : cases) {
    std::string text = c;
    // A value followed by nothing is the whole text here; the DOM needs the
    // whole document to be exactly one value too.
    CHECK_MESSAGE(accepted(text) == domAccepts(text), text);
  }
}

TEST_CASE("scanValue: a real number past a double's range, however it is written") {
  std::string big(320, '9');
  CHECK_FALSE(accepted(big + ".5"));
  CHECK_FALSE(domAccepts(big + ".5"));
  CHECK(accepted("0." + big));
}

TEST_CASE("scanValue: surrogates only in pairs") {
  CHECK(accepted(R"("\uD83D\uDE00")"));
  CHECK_FALSE(accepted(R"("\uD83D")"));
  CHECK_FALSE(accepted(R"("\uD83Dx")"));
  CHECK_FALSE(accepted(R"("\uD83D\u0041")"));
  CHECK_FALSE(accepted(R"("\uDE00")"));
}

TEST_CASE("scanValue stops at the end of the value and reports a truncated one") {
  size_t length = 0;
  REQUIRE(scan(R"({"a":[1,2]} ,"next":1})", length) == simdjson::SUCCESS);
  CHECK(length == 11);
  REQUIRE(scan("123,", length) == simdjson::SUCCESS);
  CHECK(length == 3);
  REQUIRE(scan("\"x\"}", length) == simdjson::SUCCESS);
  CHECK(length == 3);
  CHECK(scan(R"({"a":[1,2)", length) == simdjson::OUT_OF_BOUNDS);
  CHECK(scan(R"({"a":"b)", length) == simdjson::OUT_OF_BOUNDS);
  CHECK(scan("123x", length) != simdjson::SUCCESS);
}

TEST_CASE("scanValue refuses nesting past kMaxDepth without recursing") {
  std::string ok, deep;
  for (int i = 0; i < hdb::json::kMaxDepth; ++i) ok += "[";
  for (int i = 0; i < hdb::json::kMaxDepth; ++i) ok += "]";
  CHECK(accepted(ok));
  for (int i = 0; i < 100000; ++i) deep += "[";
  for (int i = 0; i < 100000; ++i) deep += "]";
  size_t length = 0;
  CHECK(scan(deep, length) == simdjson::DEPTH_ERROR);
}
