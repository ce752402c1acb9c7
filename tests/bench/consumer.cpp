// bench-consumer: reads lines from Unix sockets (or a FIFO) with epoll, checks that every connection
// gets every record in order, and measures throughput and, with --latency, the feeder-to-here time.
//
//   bench-consumer --expect N [--path SOCK]... [--fifo PATH] [--connections C] [--latency 1] [--idle S]
//
// Opens C connections to each --path (and/or the FIFO), prints "ready", then reads until every
// connection has N lines or nothing arrived for S seconds (default 10). Each line's first "id" must be
// the next record (kIdBase + 0, 1, 2, ...); the line's "sent_ns" is the feeder's CLOCK_MONOTONIC time.
// Prints "first" when the first byte arrives, then one JSON object: lines, bytes, seconds (first byte to last line), missing, out_of_order and,
// with --latency, p50/p99/p999/max in microseconds.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "frames.h"

namespace {

struct Conn {
  int fd = -1;
  std::string partial;   // an incomplete last line
  uint64_t lines = 0;
  uint64_t outOfOrder = 0;
  bool eof = false;
};

uint64_t digitsAt(std::string_view line, std::string_view key) {
  size_t at = line.find(key);
  if (at == std::string_view::npos) return 0;
  uint64_t v = 0;
  for (size_t i = at + key.size(); i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i)
    v = v * 10 + static_cast<uint64_t>(line[i] - '0');
  return v;
}

int connectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::fprintf(stderr, "bench-consumer: connect %s: %s\n", path.c_str(), std::strerror(errno));
    std::exit(1);
  }
  int big = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t expect = 0;
  int connections = 1, idleSecs = 10;
  bool latency = false;
  std::vector<std::string> paths;
  std::string fifo;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--expect") expect = std::stoull(v);
    else if (k == "--path") paths.push_back(v);
    else if (k == "--fifo") fifo = v;
    else if (k == "--connections") connections = std::stoi(v);
    else if (k == "--latency") latency = v == "1";
    else if (k == "--idle") idleSecs = std::stoi(v);
    else {
      std::fprintf(stderr, "bench-consumer: unknown option %s\n", k.c_str());
      return 64;
    }
  }

  std::vector<int> fds;
  for (const auto& p : paths)
    for (int c = 0; c < connections; ++c) fds.push_back(connectUnix(p));
  if (!fifo.empty()) {
    // Blocks until the bridge opens its end (it looks every 200 ms), then reads non-blocking.
    int fd = ::open(fifo.c_str(), O_RDONLY);
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    fds.push_back(fd);
  }
  std::vector<Conn> conns(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) conns[i].fd = fds[i];
  int ep = ::epoll_create1(0);
  for (size_t i = 0; i < conns.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  std::puts("ready");
  std::fflush(stdout);

  std::vector<uint64_t> lat;  // ns
  if (latency) lat.reserve(expect * conns.size());
  std::vector<char> buf(1 << 20);
  uint64_t bytes = 0, first = 0, last = 0;
  size_t complete = 0;
  std::vector<epoll_event> evs(256);
  while (complete < conns.size()) {
    int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), idleSecs * 1000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // idle too long: report what is missing
    for (int e = 0; e < n; ++e) {
      Conn& c = conns[evs[e].data.u64];
      for (;;) {
        ssize_t r = ::read(c.fd, buf.data(), buf.size());
        if (r == 0) {
          c.eof = true;
          ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          if (c.lines < expect) ++complete;  // gone early: counted as missing below
          break;
        }
        if (r < 0) break;  // EAGAIN (or an error: the idle timeout reports it)
        uint64_t now = bench::monotonicNs();
        if (first == 0) {
          first = now;
          std::puts("first");  // the driver samples the peer's CPU here (hdb_e2e.py: the replay's own cost)
          std::fflush(stdout);
        }
        bytes += static_cast<uint64_t>(r);
        std::string_view data(buf.data(), static_cast<size_t>(r));
        while (!data.empty()) {
          size_t nl = data.find('\n');
          if (nl == std::string_view::npos) {
            c.partial.append(data);
            break;
          }
          std::string_view line = data.substr(0, nl);
          if (!c.partial.empty()) {
            c.partial.append(line);
            line = c.partial;
          }
          if (digitsAt(line, "\"id\":") != bench::kIdBase + c.lines) ++c.outOfOrder;
          if (latency) lat.push_back(now - (digitsAt(line, "\"sent_ns\":") - bench::kSentBase));
          if (++c.lines == expect) {
            ++complete;
            last = now;
          }
          c.partial.clear();
          data.remove_prefix(nl + 1);
        }
      }
    }
  }

  uint64_t lines = 0, missing = 0, bad = 0;
  for (const Conn& c : conns) {
    lines += c.lines;
    missing += c.lines < expect ? expect - c.lines : 0;
    bad += c.outOfOrder;
  }
  double secs = last > first ? static_cast<double>(last - first) / 1e9 : 0;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf("{\"consumer_cpu_s\":%.3f,\"connections\":%zu,\"lines\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"missing\":%llu,\"out_of_order\":%llu",
              cpu, conns.size(), static_cast<unsigned long long>(lines), static_cast<unsigned long long>(bytes), secs,
              static_cast<unsigned long long>(missing), static_cast<unsigned long long>(bad));
  if (latency && !lat.empty()) {
    std::sort(lat.begin(), lat.end());
    auto pct = [&lat](double p) {
      size_t i = std::min(lat.size() - 1, static_cast<size_t>(p * static_cast<double>(lat.size())));
      return static_cast<double>(lat[i]) / 1000.0;
    };
    std::printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f", pct(0.5), pct(0.99), pct(0.999),
                static_cast<double>(lat.back()) / 1000.0);
  }
  std::puts("}");
  return missing == 0 && bad == 0 ? 0 : 1;
}
