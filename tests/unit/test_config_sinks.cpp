// The sink keys of issue 4 (daemon/config_sinks.cpp): every value they take,
// defaults, and each error with its exact FILE:LINE:COL: key.path: reason line.
#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "config.h"

namespace {

const char* const kHead = R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals}, {server: local, database: dev, table: other}]
sinks:
)";

std::string errorsOf(const std::string& sinks) {
  hdb::ConfigResult result = hdb::parseConfig(kHead + sinks, "t.yaml");
  std::string out;
  for (const hdb::ConfigError& e : result.errors) out += hdb::formatError("t.yaml", e) + "\n";
  return out;
}

std::vector<hdb::SinkConfig> sinksOf(const std::string& sinks) {
  hdb::ConfigResult result = hdb::parseConfig(kHead + sinks, "t.yaml");
  std::string errors;
  for (const hdb::ConfigError& e : result.errors) errors += hdb::formatError("t.yaml", e) + "\n";
  INFO(errors);
  REQUIRE(result.config.has_value());
  return result.config->sinks;
}

}  // namespace

TEST_CASE("sinks: defaults") {
  auto sinks = sinksOf(R"(  - {name: out, type: stdout}
  - {name: s, type: unix, path: /run/s.sock}
  - {name: f, type: fifo, path: /run/f.fifo}
)");
  REQUIRE(sinks.size() == 3);
  for (const auto& s : sinks) {
    CHECK(s.format == hdb::SinkFormat::Envelope);
    CHECK(s.ops.empty());
    CHECK(s.queueBytes == 4u << 20);
    CHECK_FALSE(s.onOverflow.has_value());
    CHECK(s.mode == 0660);
    CHECK_FALSE(s.owner.has_value());
    CHECK_FALSE(s.group.has_value());
    CHECK(s.replay == 0);
    CHECK(s.allowUids.empty());
    CHECK(s.allowGids.empty());
  }
  CHECK(sinks[0].overflow() == hdb::OverflowPolicy::DropNewest);  // stdout's reader cannot come back
  CHECK(sinks[1].overflow() == hdb::OverflowPolicy::Disconnect);
  CHECK(sinks[2].type == hdb::SinkType::Fifo);
  CHECK(sinks[2].overflow() == hdb::OverflowPolicy::Disconnect);
}

TEST_CASE("sinks: every key of issue 4") {
  auto sinks = sinksOf(R"(  - name: s
    type: unix
    path: /run/s.sock
    tables: [dev.animals]
    ops: [put, delete]
    format: record
    queue_bytes: 1MiB
    on_overflow: drop_oldest
    mode: "0600"
    owner: root
    group: 0
    replay: 100
    allow_uids: [root, 1000]
    allow_gids: [root, 65534]
  - {name: f, type: fifo, path: /run/f.fifo, format: raw, on_overflow: drop_newest, owner: 1234, group: 5678}
  - {name: out, type: stdout, ops: [snapshot, insert, update, upsert, message], on_overflow: disconnect,
     queue_bytes: 64KiB, format: envelope}
)");
  REQUIRE(sinks.size() == 3);
  const auto& s = sinks[0];
  CHECK(s.ops == std::vector<std::string>{"put", "delete"});
  CHECK(s.format == hdb::SinkFormat::Record);
  CHECK(s.queueBytes == 1u << 20);
  CHECK(s.overflow() == hdb::OverflowPolicy::DropOldest);
  CHECK(s.mode == 0600);
  CHECK(s.owner == 0u);
  CHECK(s.group == 0u);
  CHECK(s.replay == 100);
  CHECK(s.allowUids == std::vector<uint32_t>{0, 1000});
  CHECK(s.allowGids == std::vector<uint32_t>{0, 65534});
  CHECK(sinks[1].format == hdb::SinkFormat::Raw);
  CHECK(sinks[1].overflow() == hdb::OverflowPolicy::DropNewest);
  CHECK(sinks[1].owner == 1234u);
  CHECK(sinks[1].group == 5678u);
  CHECK(sinks[2].overflow() == hdb::OverflowPolicy::Disconnect);
  CHECK(sinks[2].queueBytes == 64u << 10);
  CHECK(sinks[2].ops.size() == 5);
}

TEST_CASE("sinks: errors, with exact messages") {
  struct Case {
    const char* name;
    const char* sinks;
    const char* expected;
  };
  const Case cases[] = {
      {"fifo needs a path", "  - {name: f, type: fifo}\n",
       "t.yaml:4:5: sinks[0]: missing required key 'path' (a fifo sink needs one)\n"},
      {"fifo path must be absolute, but is not limited like a socket's",
       "  - {name: f, type: fifo, path: f.fifo}\n"
       "  - {name: g, type: fifo, path: /run/ggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg.fifo}\n",
       "t.yaml:4:33: sinks[0].path: must be an absolute path, found 'f.fifo'\n"},
      {"a fifo and a socket on one path",
       "  - {name: f, type: fifo, path: /run/x}\n  - {name: s, type: unix, path: /run/./x}\n",
       "t.yaml:5:33: sinks[1].path: path is already used by sinks[0]\n"},
      {"unknown format", "  - {name: out, type: stdout, format: json}\n",
       "t.yaml:4:39: sinks[0].format: unknown format 'json'; expected envelope, record or raw\n"},
      {"unknown overflow policy", "  - {name: out, type: stdout, on_overflow: drop}\n",
       "t.yaml:4:44: sinks[0].on_overflow: unknown overflow policy 'drop'; expected disconnect, drop_oldest or "
       "drop_newest\n"},
      {"ops: unknown, misspelt, gap, twice, empty, not a list",
       "  - {name: a, type: stdout, ops: [put, pot, flush, gap, put]}\n"
       "  - {name: b, type: stdout, ops: []}\n"
       "  - {name: c, type: stdout, ops: put}\n",
       "t.yaml:4:40: sinks[0].ops[1]: unknown op 'pot'; did you mean 'put'? (ops: put, delete, message, snapshot, "
       "insert, update, upsert)\n"
       "t.yaml:4:45: sinks[0].ops[2]: unknown op 'flush' (ops: put, delete, message, snapshot, insert, update, "
       "upsert)\n"
       "t.yaml:4:52: sinks[0].ops[3]: gap lines always reach every sink; leave 'gap' out\n"
       "t.yaml:4:57: sinks[0].ops[4]: op 'put' is listed twice\n"
       "t.yaml:5:34: sinks[1].ops: list at least one op, or leave the key out for all ops\n"
       "t.yaml:6:34: sinks[2].ops: expected a list of ops, found a string\n"},
      {"replay", "  - {name: a, type: unix, path: /run/a, replay: -1}\n"
                 "  - {name: b, type: unix, path: /run/b, replay: 1000001}\n"
                 "  - {name: c, type: unix, path: /run/c, replay: ten}\n",
       "t.yaml:4:49: sinks[0].replay: expected a number of lines from 0 to 1000000, found '-1'\n"
       "t.yaml:5:49: sinks[1].replay: expected a number of lines from 0 to 1000000, found '1000001'\n"
       "t.yaml:6:49: sinks[2].replay: expected a number of lines from 0 to 1000000, found 'ten'\n"},
      {"owner and group that do not exist",
       "  - {name: a, type: unix, path: /run/a, owner: no-such-user-x, group: no-such-group-x}\n",
       "t.yaml:4:48: sinks[0].owner: no such user 'no-such-user-x'; expected a user name or a numeric uid\n"
       "t.yaml:4:71: sinks[0].group: no such group 'no-such-group-x'; expected a group name or a numeric gid\n"},
      {"allow lists", "  - {name: a, type: unix, path: /run/a, allow_uids: [], allow_gids: nobody-x}\n"
                      "  - {name: b, type: unix, path: /run/b, allow_uids: [root, ghost-user-x]}\n",
       "t.yaml:4:53: sinks[0].allow_uids: list at least one, or leave the key out to allow everyone\n"
       "t.yaml:4:69: sinks[0].allow_gids: expected a list of group names or gids, found a string\n"
       "t.yaml:5:60: sinks[1].allow_uids[1]: no such user 'ghost-user-x'; expected a user name or a numeric uid\n"},
      {"keys a sink type does not take",
       "  - {name: out, type: stdout, owner: root, replay: 5, allow_uids: [0]}\n"
       "  - {name: f, type: fifo, path: /run/f, replay: 5, allow_gids: [0], mode: '0600', group: root}\n",
       "t.yaml:4:38: sinks[0].owner: only unix, fifo and ingest sinks take this key\n"
       "t.yaml:4:52: sinks[0].replay: only unix sinks take this key\n"
       "t.yaml:4:67: sinks[0].allow_uids: only unix and ingest sinks take this key\n"
       "t.yaml:5:49: sinks[1].replay: only unix sinks take this key\n"
       "t.yaml:5:64: sinks[1].allow_gids: only unix and ingest sinks take this key\n"},
      {"misspelt key", "  - {name: out, type: stdout, on_overflw: drop_oldest}\n",
       "t.yaml:4:31: sinks[0].on_overflw: unknown key; did you mean 'on_overflow'?\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(errorsOf(c.sinks) == std::string(c.expected));
  }
}

// ---- ingest sockets (issue 8) ----

namespace {

const char* const kWritableHead = R"(servers: {local: {protocol: harperdb4, url: ws://h:1, username: u, password: p}}
tables: [{server: local, database: dev, table: animals, writable: true}, {server: local, database: dev, table: other}]
sinks:
)";

std::string ingestErrors(const std::string& sinks, const char* head = kWritableHead) {
  hdb::ConfigResult result = hdb::parseConfig(head + sinks, "t.yaml");
  std::string out;
  for (const hdb::ConfigError& e : result.errors) out += hdb::formatError("t.yaml", e) + "\n";
  return out;
}

}  // namespace

TEST_CASE("ingest sink: defaults and every key") {
  hdb::ConfigResult result = hdb::parseConfig(std::string(kWritableHead) + R"(  - {name: in, type: ingest, path: /run/in.sock}
  - name: in2
    type: ingest
    path: /run/in2.sock
    tables: [dev.animals]
    ops: [insert, upsert, delete]
    mode: "0600"
    owner: root
    group: 0
    allow_uids: [root]
    allow_gids: [0]
    max_in_flight: 16
    max_line_bytes: 64KiB
    queue_bytes: 256KiB
)",
                                              "t.yaml");
  std::string errors;
  for (const hdb::ConfigError& e : result.errors) errors += hdb::formatError("t.yaml", e) + "\n";
  INFO(errors);
  REQUIRE(result.config.has_value());
  const auto& d = result.config->sinks[0];
  CHECK(d.type == hdb::SinkType::Ingest);
  CHECK(d.tables.empty());
  CHECK(d.ops.empty());
  CHECK(d.maxInFlight == 1);
  CHECK(d.maxLineBytes == 1u << 20);
  CHECK(d.queueBytes == 4u << 20);
  CHECK(d.mode == 0660);
  const auto& s = result.config->sinks[1];
  CHECK(s.tables == std::vector<std::string>{"dev.animals"});
  CHECK(s.ops == std::vector<std::string>{"insert", "upsert", "delete"});
  CHECK(s.mode == 0600);
  CHECK(s.owner == 0u);
  CHECK(s.group == 0u);
  CHECK(s.allowUids == std::vector<uint32_t>{0});
  CHECK(s.allowGids == std::vector<uint32_t>{0});
  CHECK(s.maxInFlight == 16);
  CHECK(s.maxLineBytes == 64u << 10);
  CHECK(s.queueBytes == 256u << 10);
}

TEST_CASE("ingest sink: errors, with exact messages") {
  struct Case {
    const char* name;
    const char* sinks;
    const char* expected;
  };
  const Case cases[] = {
      {"needs a path", "  - {name: in, type: ingest}\n",
       "t.yaml:4:5: sinks[0]: missing required key 'path' (an ingest sink needs one)\n"},
      {"keys that mean nothing on an ingest socket",
       "  - {name: in, type: ingest, path: /run/in, format: record, replay: 5, on_overflow: drop_oldest}\n",
       "t.yaml:4:53: sinks[0].format: an ingest socket answers commands and gets no feed lines: it has no format\n"
       "t.yaml:4:69: sinks[0].replay: only unix sinks take this key\n"
       "t.yaml:4:85: sinks[0].on_overflow: an ingest socket never drops an answer: it stops reading a client whose "
       "answers pass queue_bytes\n"},
      {"ingest keys on other sinks",
       "  - {name: s, type: unix, path: /run/s, max_in_flight: 2, max_line_bytes: 2KiB}\n",
       "t.yaml:4:56: sinks[0].max_in_flight: only ingest sinks take this key\n"
       "t.yaml:4:75: sinks[0].max_line_bytes: only ingest sinks take this key\n"},
      {"write ops only; feed ops are not write ops",
       "  - {name: in, type: ingest, path: /run/in, ops: [insert, put, delet, insert, snapshot]}\n",
       "t.yaml:4:59: sinks[0].ops[1]: unknown op 'put' (an ingest socket's ops: insert, update, upsert, delete)\n"
       "t.yaml:4:64: sinks[0].ops[2]: unknown op 'delet'; did you mean 'delete'? (an ingest socket's ops: insert, "
       "update, upsert, delete)\n"
       "t.yaml:4:71: sinks[0].ops[3]: op 'insert' is listed twice\n"
       "t.yaml:4:79: sinks[0].ops[4]: unknown op 'snapshot' (an ingest socket's ops: insert, update, upsert, "
       "delete)\n"},
      {"tables must be configured and writable",
       "  - {name: in, type: ingest, path: /run/in, tables: [dev.animals, dev.other, dev.none]}\n",
       "t.yaml:4:67: sinks[0].tables[1]: table 'dev.other' is not writable; an ingest socket writes only to tables "
       "with writable: true\n"
       "t.yaml:4:78: sinks[0].tables[2]: table 'dev.none' is not configured under tables\n"},
      {"max_in_flight and max_line_bytes ranges",
       "  - {name: a, type: ingest, path: /run/a, max_in_flight: 0, max_line_bytes: 10}\n"
       "  - {name: b, type: ingest, path: /run/b, max_in_flight: 10001, max_line_bytes: 2GiB}\n",
       "t.yaml:4:58: sinks[0].max_in_flight: expected a number of commands from 1 to 10000, found '0'\n"
       "t.yaml:4:77: sinks[0].max_line_bytes: expected a size from 1KiB to 1GiB like '64KiB' or '1MiB', found '10'\n"
       "t.yaml:5:58: sinks[1].max_in_flight: expected a number of commands from 1 to 10000, found '10001'\n"
       "t.yaml:5:81: sinks[1].max_line_bytes: expected a size from 1KiB to 1GiB like '64KiB' or '1MiB', found "
       "'2GiB'\n"},
      {"one path for an ingest socket and a unix sink",
       "  - {name: in, type: ingest, path: /run/x}\n  - {name: s, type: unix, path: /run/x}\n",
       "t.yaml:5:33: sinks[1].path: path is already used by sinks[0]\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(ingestErrors(c.sinks) == std::string(c.expected));
  }
  // Without any writable table an ingest socket could write nothing.
  CHECK(ingestErrors("  - {name: in, type: ingest, path: /run/in}\n", kHead) ==
        "t.yaml:4:5: sinks[0]: no table has writable: true, so this ingest socket could write nothing; set "
        "writable: true on the tables it may write to\n");
}
