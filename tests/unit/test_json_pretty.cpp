// The tail command's pretty-printer and op extraction (daemon/json_pretty.cpp).
#include <doctest/doctest.h>

#include <string>

#include "json_pretty.h"

TEST_CASE("pretty: indentation, key spacing, empty containers, strings with specials") {
  auto out = hdb::prettyJson(R"({"v":1,"op":"put","record":{"a":[1,2,{}],"b":[],"s":"x, y: {z}\"]"},"n":null})", false);
  REQUIRE(out);
  CHECK(*out == R"({
  "v": 1,
  "op": "put",
  "record": {
    "a": [
      1,
      2,
      {}
    ],
    "b": [],
    "s": "x, y: {z}\"]"
  },
  "n": null
})");
}

TEST_CASE("pretty: colours keys, strings, numbers and literals") {
  auto out = hdb::prettyJson(R"({"k":"v","n":-1.5e3,"t":true})", true);
  REQUIRE(out);
  CHECK(*out ==
        "{\n  \033[34m\"k\"\033[0m: \033[32m\"v\"\033[0m,\n  \033[34m\"n\"\033[0m: \033[33m-1.5e3\033[0m,\n"
        "  \033[34m\"t\"\033[0m: \033[35mtrue\033[0m\n}");
}

TEST_CASE("pretty: whitespace in the input is normalised; invalid JSON is refused") {
  CHECK(hdb::prettyJson("  [ 1 ,\n 2 ]  ", false) == std::string("[\n  1,\n  2\n]"));
  CHECK_FALSE(hdb::prettyJson(R"({"a":)", false));
  CHECK_FALSE(hdb::prettyJson("not json", false));
  CHECK_FALSE(hdb::prettyJson("", false));
}

TEST_CASE("op of a line") {
  CHECK(hdb::jsonOp(R"({"v":1,"op":"delete","id":3})") == std::string("delete"));
  CHECK(hdb::jsonOp(R"({"v":1,"op":"gap","dropped":3})") == std::string("gap"));
  CHECK_FALSE(hdb::jsonOp(R"({"id":3,"name":"x"})"));  // format: record
  CHECK_FALSE(hdb::jsonOp(R"({"op":3})"));
  CHECK_FALSE(hdb::jsonOp("[1]"));
  CHECK_FALSE(hdb::jsonOp("{broken"));
}
