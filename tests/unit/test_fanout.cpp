// Routing and formats: tables and ops filters, envelope / record / raw lines,
// each variant serialized at most once and shared; the replay ring's bounds.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fanout.h"
#include "replay_ring.h"
#include "sink_filter.h"

namespace {

class FakeSink : public hdb::Sink {
 public:
  explicit FakeSink(const hdb::SinkConfig& c) : Sink(c) {}
  void flush() override { ++flushes; }
  bool pending() const override { return false; }
  void retire() override { retired = true; }
  size_t queuedBytes() const override { return 0; }
  std::vector<hdb::Line> got;
  bool retired = false;
  int flushes = 0;

  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& l : got) out.push_back(*l);
    return out;
  }

 private:
  void deliver(const hdb::Line& line) override { got.push_back(line); }
};

hdb::SinkConfig sinkConfig(std::string name, hdb::SinkFormat format, std::vector<std::string> ops = {},
                           std::vector<std::string> tables = {}) {
  hdb::SinkConfig c;
  c.name = std::move(name);
  c.format = format;
  c.ops = std::move(ops);
  c.tables = std::move(tables);
  return c;
}

hdb::Line text(const std::string& s) { return std::make_shared<const std::string>(s); }

struct Setup {
  hdb::Fanout fanout;
  std::vector<FakeSink*> sinks;
  FakeSink* add(const hdb::SinkConfig& c) {
    auto s = std::make_unique<FakeSink>(c);
    FakeSink* raw = s.get();
    fanout.add(std::move(s));
    sinks.push_back(raw);
    return raw;
  }
};

// Three changes of one message: two puts and a delete.
struct Message {
  std::string raw = R"({"transaction":[{"id":1},{"id":2},{"id":3,"op":"delete"}]})";
  hdb::Change changes[3] = {
      {"put", text("ENV1\n"), R"({"id":1})"},
      {"put", text("ENV2\n"), R"({"id":2})"},
      {"delete", text("ENV3\n"), ""},
  };
};

}  // namespace

TEST_CASE("sink filter: tables, ops, and gap lines always pass") {
  hdb::SinkFilter all({}, {});
  CHECK(all.takesTable("dev.animals"));
  CHECK(all.takesOp("put"));
  hdb::SinkFilter some({"dev.a"}, {"delete", "put"});
  CHECK(some.takesTable("dev.a"));
  CHECK_FALSE(some.takesTable("dev.b"));
  CHECK_FALSE(some.takesTable("dev"));
  CHECK(some.takesOp("put"));
  CHECK(some.takesOp("delete"));
  CHECK_FALSE(some.takesOp("message"));
  CHECK(some.takesOp("gap"));
}

TEST_CASE("each format gets its own line, serialized once and shared") {
  Setup s;
  FakeSink* env = s.add(sinkConfig("env", hdb::SinkFormat::Envelope));
  FakeSink* rec1 = s.add(sinkConfig("rec1", hdb::SinkFormat::Record));
  FakeSink* rec2 = s.add(sinkConfig("rec2", hdb::SinkFormat::Record));
  FakeSink* raw1 = s.add(sinkConfig("raw1", hdb::SinkFormat::Raw));
  FakeSink* raw2 = s.add(sinkConfig("raw2", hdb::SinkFormat::Raw));
  auto route = s.fanout.routeFor("dev.animals");
  CHECK(route.wantsEnvelope());
  CHECK(route.wantsRaw());
  Message m;
  route.publish(m.changes, m.raw);

  CHECK(env->texts() == std::vector<std::string>{"ENV1\n", "ENV2\n", "ENV3\n"});
  CHECK(env->got[0] == m.changes[0].envelope);  // the source's line itself, not a copy
  // A delete has no record: record sinks skip it.
  CHECK(rec1->texts() == std::vector<std::string>{"{\"id\":1}\n", "{\"id\":2}\n"});
  CHECK(rec1->got[0] == rec2->got[0]);
  CHECK(rec1->got[1] == rec2->got[1]);
  // Raw: once per message, however many records it carried.
  CHECK(raw1->texts() == std::vector<std::string>{m.raw + "\n"});
  CHECK(raw1->got[0] == raw2->got[0]);
  CHECK(env->stats().lines == 3);
  CHECK(env->stats().bytes == 15);

  s.fanout.flush();
  for (FakeSink* sink : s.sinks) CHECK(sink->flushes == 1);
  s.fanout.flush();
  for (FakeSink* sink : s.sinks) CHECK(sink->flushes == 1);  // only sinks that got lines
}

TEST_CASE("ops filter applies per change; raw goes out if any change of the message passes") {
  Setup s;
  FakeSink* env = s.add(sinkConfig("env", hdb::SinkFormat::Envelope, {"delete"}));
  FakeSink* rawDel = s.add(sinkConfig("rawdel", hdb::SinkFormat::Raw, {"delete"}));
  FakeSink* rawMsg = s.add(sinkConfig("rawmsg", hdb::SinkFormat::Raw, {"message"}));
  auto route = s.fanout.routeFor("dev.animals");
  Message m;
  route.publish(m.changes, m.raw);
  CHECK(env->texts() == std::vector<std::string>{"ENV3\n"});
  CHECK(rawDel->got.size() == 1);
  CHECK(rawMsg->got.empty());
}

TEST_CASE("tables filter decides the route once") {
  Setup s;
  FakeSink* a = s.add(sinkConfig("a", hdb::SinkFormat::Envelope, {}, {"dev.a"}));
  FakeSink* any = s.add(sinkConfig("any", hdb::SinkFormat::Envelope));
  auto routeB = s.fanout.routeFor("dev.b");
  hdb::Change c{"put", text("B\n"), "{}"};
  routeB.publish(c, "{}");
  CHECK(a->got.empty());
  CHECK(any->texts() == std::vector<std::string>{"B\n"});
  CHECK_FALSE(routeB.wantsRaw());
}

TEST_CASE("notices reach every sink of the route in every format, past ops") {
  Setup s;
  FakeSink* rec = s.add(sinkConfig("rec", hdb::SinkFormat::Record, {"put"}));
  FakeSink* raw = s.add(sinkConfig("raw", hdb::SinkFormat::Raw, {"put"}));
  auto route = s.fanout.routeFor("dev.a");
  auto notice = text("{\"v\":1,\"op\":\"gap\"}\n");
  route.publishNotice(notice);
  CHECK(rec->got == std::vector<hdb::Line>{notice});
  CHECK(raw->got == std::vector<hdb::Line>{notice});
}

TEST_CASE("record and raw lines stay one line each") {
  CHECK(*hdb::oneLine("{\"a\":\n 1,\r\n\"b\":2}") == "{\"a\":  1,  \"b\":2}\n");
  Setup s;
  FakeSink* raw = s.add(sinkConfig("raw", hdb::SinkFormat::Raw));
  auto route = s.fanout.routeFor("dev.a");
  route.publish(hdb::Change{"put", nullptr, "{}"}, "{\n\"x\": 1\n}");
  CHECK(raw->texts() == std::vector<std::string>{"{ \"x\": 1 }\n"});
}

TEST_CASE("replay ring keeps the last N lines within its byte bound") {
  hdb::ReplayRing ring(3, 100);
  for (int i = 0; i < 5; ++i) ring.push(text(std::string(10, char('a' + i))));
  REQUIRE(ring.size() == 3);
  CHECK(*ring.lines().front() == std::string(10, 'c'));
  CHECK(*ring.lines().back() == std::string(10, 'e'));
  CHECK(ring.bytes() == 30);
  ring.push(text(std::string(90, 'f')));  // bytes bound: only e (10) fits beside it
  CHECK(ring.size() == 2);
  CHECK(ring.bytes() == 100);
  ring.push(text(std::string(101, 'g')));  // cannot be replayed: nothing before it either
  CHECK(ring.size() == 0);
  CHECK(ring.bytes() == 0);
  ring.push(text("h"));
  CHECK(ring.size() == 1);

  hdb::ReplayRing off(0, 100);
  off.push(text("x"));
  CHECK_FALSE(off.enabled());
  CHECK(off.size() == 0);
}

TEST_CASE("sinks added, removed and refiltered at run time: every route follows at once") {
  Setup s;
  FakeSink* a = s.add(sinkConfig("a", hdb::SinkFormat::Envelope));
  auto route = s.fanout.routeFor("dev.animals");  // a source keeps this handle across reloads
  hdb::Change c{"put", text("E\n"), R"({"id":1})"};
  route.publish(c, "{}");
  CHECK(a->texts() == std::vector<std::string>{"E\n"});

  FakeSink* b = s.add(sinkConfig("b", hdb::SinkFormat::Record));
  route.publish(c, "{}");
  CHECK(b->texts() == std::vector<std::string>{"{\"id\":1}\n"});

  // Refilter: b now wants only another table; a wants raw.
  b->refilter(sinkConfig("b", hdb::SinkFormat::Record, {}, {"dev.other"}));
  a->refilter(sinkConfig("a", hdb::SinkFormat::Raw));
  s.fanout.rerouted();
  CHECK(route.wantsRaw());
  CHECK_FALSE(route.wantsEnvelope());
  route.publish(c, "RAW");
  CHECK(a->texts() == std::vector<std::string>{"E\n", "E\n", "RAW\n"});
  CHECK(b->got.size() == 1);

  // Remove: the sink is retired and no route reaches it (nor the flush list).
  CHECK(s.fanout.find("a") == a);
  CHECK(s.fanout.remove("b"));  // b is destroyed here
  s.sinks.pop_back();
  CHECK_FALSE(s.fanout.remove("b"));
  CHECK(s.fanout.find("b") == nullptr);
  route.publish(c, "RAW2");
  s.fanout.flush();
  CHECK(a->got.size() == 4);
}

namespace {

// An ingest socket as the fan-out sees it: no feed lines, its own pending answers.
class AnsweringSink : public FakeSink {
 public:
  using FakeSink::FakeSink;
  bool takesFeed() const override { return false; }
  bool pending() const override { return owes; }
  bool owes = false;
};

}  // namespace

TEST_CASE("fanout: a sink outside the feed gets no line, is flushed every time, and its answers are apart") {
  hdb::Fanout fanout;
  auto ingest = std::make_unique<AnsweringSink>(sinkConfig("in", hdb::SinkFormat::Envelope));
  AnsweringSink* in = ingest.get();
  fanout.add(std::move(ingest));
  auto feed = std::make_unique<FakeSink>(sinkConfig("feed", hdb::SinkFormat::Envelope));
  FakeSink* out = feed.get();
  fanout.add(std::move(feed));

  auto route = fanout.routeFor("dev.animals");
  hdb::Change change{"put", text("E\n"), "{}"};
  route.publish(change, "");
  route.publishNotice(text("gap\n"));
  CHECK(in->got.empty());
  CHECK(out->got.size() == 2);
  fanout.flush();
  fanout.flush();  // nothing new for the feed sink: only the answering one is flushed again
  CHECK(in->flushes == 2);
  CHECK(out->flushes == 1);

  // Answers owed hold back a shutdown (answering) but not the checkpoints (pending).
  in->owes = true;
  CHECK_FALSE(fanout.pending());
  CHECK(fanout.answering());
  in->owes = false;
  CHECK_FALSE(fanout.answering());
}
