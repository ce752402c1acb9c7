// The HarperDB 4 frame parser against every frame shape captured from a real
// 4.7 server (../shared/frames/hdb4/) and against malformed input.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "hdb4_frame.h"

using hdb::Hdb4Change;
using hdb::Hdb4FrameParser;

namespace {

struct Parsed {
  bool ok;
  Hdb4Change change;
  std::string error;
  std::string buffer;  // keeps the views alive
};

Parsed parse(Hdb4FrameParser& parser, const std::string& text) {
  Parsed p;
  p.buffer = text;
  hdb::reservePadding(p.buffer);
  p.ok = parser.parse(p.buffer, p.change, p.error);
  return p;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Frames in the capture logs: `TEXT {...}` lines and the `payload="..."` of raw wire dumps.
std::vector<std::string> capturedFrames() {
  std::vector<std::string> frames;
  const std::string dir = HDB_FRAMES_DIR "/hdb4/";
  for (const char* name : {"ws-collection.log", "ws-snapshot.log", "resume-test.log"}) {
    std::istringstream in(readFile(dir + name));
    std::string line;
    bool wsSection = false;  // resume-test.log also holds operations-API answers
    while (std::getline(in, line)) {
      auto pos = line.find("TEXT {");
      if (pos != std::string::npos) {
        frames.push_back(line.substr(pos + 5));
        continue;
      }
      if (line.rfind("---", 0) == 0) wsSection = line.find(" WS ") != std::string::npos;
      // resume-test.log lists the frames of each WS step indented by four spaces.
      if (wsSection && line.rfind("    {", 0) == 0) frames.push_back(line.substr(4));
    }
  }
  std::istringstream wire(readFile(dir + "ws-raw-wire.txt"));
  std::string line;
  std::regex payload(R"re(opcode=0x1 .*payload="(.*)"$)re");
  while (std::getline(wire, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, payload)) continue;
    std::string unescaped;
    const std::string s = m[1];
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      unescaped.push_back(s[i]);
    }
    frames.push_back(unescaped);
  }
  return frames;
}

}  // namespace

TEST_CASE("put frame: every part is the raw JSON text") {
  Hdb4FrameParser parser;
  auto p = parse(parser,
                 R"({"id":1,"localTime":1795693388920.1797,"value":{"id":1,"name":"Harper","type":"dog","age":5,)"
                 R"("__updatedtime__":1795693388907.117,"__createdtime__":1795693388907.117},)"
                 R"("version":1795693388907.117,"type":"put"})");
  REQUIRE_MESSAGE(p.ok, p.error);
  CHECK(p.change.type == "put");
  CHECK(p.change.id == "1");
  CHECK(p.change.localTime == "1795693388920.1797");
  CHECK(p.change.version == "1795693388907.117");
  CHECK(p.change.value ==
        R"({"id":1,"name":"Harper","type":"dog","age":5,"__updatedtime__":1795693388907.117,"__createdtime__":1795693388907.117})");
  CHECK_FALSE(p.change.hasSize);
}

TEST_CASE("delete frame has no value; string ids keep their quotes") {
  Hdb4FrameParser parser;
  auto p = parse(parser, R"({"id":"a\"b","localTime":1795693391383.567,"version":1795693391382.1338,"type":"delete"})");
  REQUIRE_MESSAGE(p.ok, p.error);
  CHECK(p.change.type == "delete");
  CHECK(p.change.id == R"("a\"b")");
  CHECK(p.change.value.empty());
}

TEST_CASE("message frames and snapshot frames") {
  Hdb4FrameParser parser;
  auto m = parse(parser, R"({"id":20,"localTime":1795693394296.0166,"value":{"note":"transient"},"version":1795693393887.3618,"type":"message"})");
  REQUIRE_MESSAGE(m.ok, m.error);
  CHECK(m.change.type == "message");
  CHECK(m.change.value == R"({"note":"transient"})");
  auto s = parse(parser, R"({"id":1,"localTime":1.5,"value":{"id":1},"version":1.25,"type":"put","size":42})");
  REQUIRE_MESSAGE(s.ok, s.error);
  CHECK(s.change.hasSize);
}

TEST_CASE("field order and whitespace do not matter; unknown fields are ignored") {
  Hdb4FrameParser parser;
  auto p = parse(parser, " {\"type\" : \"put\", \"encoded\":{\"type\":\"Buffer\",\"data\":[1,2]}, \"value\" : { \"a\" : [1, {\"b\":null}] } ,"
                         " \"version\" : 2.5 , \"id\" : 7 , \"localTime\" : 3.25 , \"tableId\":2 } \n");
  REQUIRE_MESSAGE(p.ok, p.error);
  CHECK(p.change.value == R"({ "a" : [1, {"b":null}] })");
  CHECK(p.change.id == "7");
  CHECK(p.change.localTime == "3.25");
}

TEST_CASE("every captured frame of a real HarperDB 4.7 parses") {
  auto frames = capturedFrames();
  REQUIRE(frames.size() >= 20);
  Hdb4FrameParser parser;
  for (const auto& f : frames) {
    auto p = parse(parser, f);
    CHECK_MESSAGE(p.ok, f << " -> " << p.error);
    if (!p.ok) continue;
    CHECK((p.change.type == "put" || p.change.type == "delete" || p.change.type == "message"));
    CHECK_FALSE(p.change.id.empty());
    if (p.change.type == "put") {
      CHECK(p.change.value.front() == '{');
      CHECK(p.change.value.back() == '}');
    }
  }
}

TEST_CASE("malformed frames are refused with a reason") {
  struct Case {
    const char* text;
    const char* reason;
  };
  const Case cases[] = {
      {"", "not JSON"},
      {"not json", "not"},
      {"[1,2]", "not a JSON object"},
      {R"({"id":1,"localTime":1,"version":1,"type":"put","value":{"a":1})", "truncated"},
      {R"({"id":1,"localTime":1,"version":1})", "missing \"type\""},
      {R"({"id":1,"localTime":1,"version":1,"type":5})", "\"type\" is not a string"},
      {R"({"id":1,"localTime":1,"version":1,"type":"put one"})", "unexpected \"type\" value"},
      {R"({"id":1,"localTime":1,"version":1,"type":"explode"})", "unknown \"type\" value"},
      {R"({"localTime":1,"version":1,"type":"delete"})", "missing \"id\""},
      {R"({"id":1,"version":1,"type":"delete"})", "missing \"localTime\""},
      {R"({"id":1,"localTime":1,"type":"delete"})", "missing \"version\""},
      {R"({"id":{"a":1},"localTime":1,"version":1,"type":"delete"})", "neither a number nor a string"},
      {R"({"id":1,"localTime":"x","version":1,"type":"delete"})", "bad \"localTime\""},
      {R"({"id":1,"localTime":1,"version":1,"type":"put"})", "\"put\" without \"value\""},
      {R"({"id":1,"localTime":1,"version":1,"type":"put","value":[1]})", "\"value\" is not an object"},
      {R"({"id":1,"localTime":1,"version":1,"type":"put","value":{"a":tru}})", "bad \"value\""},
      {R"({"id":1,"localTime":1,"version":1,"type":"put","value":{"a":1.2.3}})", "bad \"value\""},
      {R"({"id":1,"localTime":1,"version":1,"type":"put","value":{"a":"\q"}})", "bad \"value\""},
      {"{\"id\":1,\"localTime\":1,\"version\":1,\"type\":\"put\",\"value\":{\"a\":\"\xff\"}}", "not JSON"},
      {R"({"id":1,"localTime":1,"version":1,"type":"delete"} {})", "trailing content"},
  };
  Hdb4FrameParser parser;
  for (const auto& c : cases) {
    auto p = parse(parser, c.text);
    CHECK_MESSAGE(!p.ok, c.text);
    CHECK_MESSAGE(p.error.find(c.reason) != std::string::npos, c.text << " -> " << p.error);
  }
}

TEST_CASE("deep nesting is refused, not recursed into without bound") {
  std::string deep = R"({"id":1,"localTime":1,"version":1,"type":"put","value":)";
  for (int i = 0; i < 200; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 200; ++i) deep += "}";
  deep += "}";
  Hdb4FrameParser parser;
  auto p = parse(parser, deep);
  CHECK_FALSE(p.ok);
}

TEST_CASE("a parser is reusable after an error") {
  Hdb4FrameParser parser;
  CHECK_FALSE(parse(parser, "{").ok);
  auto p = parse(parser, R"({"id":2,"localTime":1,"version":1,"type":"delete"})");
  CHECK_MESSAGE(p.ok, p.error);
}
