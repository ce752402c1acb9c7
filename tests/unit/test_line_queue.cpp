// LineQueue against real sockets and pipes: batching, partial writes,
// backpressure, the byte cap and a vanished reader.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "line_queue.h"

namespace {

hdb::Line makeLine(const std::string& s) { return std::make_shared<const std::string>(s); }

std::string readAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

}  // namespace

TEST_CASE("lines are written in order, in one batch") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
  hdb::LineQueue q(1 << 20);
  for (int i = 0; i < 100; ++i) REQUIRE(q.push(makeLine("line " + std::to_string(i) + "\n")));
  int err = 0;
  CHECK(q.writeTo(sv[0], true, err) == hdb::WriteStatus::Drained);
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
  std::string got = readAll(sv[1]);
  std::string want;
  for (int i = 0; i < 100; ++i) want += "line " + std::to_string(i) + "\n";
  CHECK(got == want);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("a full socket blocks; a partly written line resumes where it stopped") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
  int small = 4096;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  hdb::LineQueue q(64 << 20);
  std::string want;
  for (int i = 0; i < 2000; ++i) {
    std::string s(997, char('a' + i % 26));
    s += std::to_string(i % 10) + "\n\n";
    want += s;
    REQUIRE(q.push(makeLine(s)));
  }
  int err = 0;
  CHECK(q.writeTo(sv[0], true, err) == hdb::WriteStatus::Blocked);
  CHECK(q.bytes() > 0);
  std::string got;
  for (int rounds = 0; rounds < 100000 && !q.empty(); ++rounds) {
    got += readAll(sv[1]);
    auto st = q.writeTo(sv[0], true, err);
    REQUIRE(st != hdb::WriteStatus::Failed);
  }
  got += readAll(sv[1]);
  CHECK(q.empty());
  CHECK(got.size() == want.size());
  CHECK(got == want);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("the byte cap refuses a line that would pass it") {
  hdb::LineQueue q(10);
  CHECK(q.push(makeLine("12345")));
  CHECK(q.push(makeLine("67890")));
  CHECK_FALSE(q.push(makeLine("x")));
  CHECK(q.bytes() == 10);
  CHECK(q.lines() == 2);
  q.clear();
  CHECK(q.push(makeLine("x")));
}

TEST_CASE("a vanished reader is reported as Closed, not as a signal") {
  std::signal(SIGPIPE, SIG_IGN);
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
  ::close(sv[1]);
  hdb::LineQueue q(1024);
  REQUIRE(q.push(makeLine("hello\n")));
  int err = 0;
  CHECK(q.writeTo(sv[0], true, err) == hdb::WriteStatus::Closed);
  ::close(sv[0]);

  int p[2];
  REQUIRE(::pipe2(p, O_NONBLOCK) == 0);
  ::close(p[0]);
  REQUIRE(q.push(makeLine("again\n")));
  CHECK(q.writeTo(p[1], false, err) == hdb::WriteStatus::Closed);
  ::close(p[1]);
}
