// bench-feeder: a HarperDB 4 feed as fast as the client reads, or at a fixed rate.
//
//   bench-feeder --records N [--mix small|big|txn3] [--rate R] [--unix PATH] [--tls CERT_AND_KEY.pem]
//                [--protocol hdb4|hdb3]
//
// Listens on 127.0.0.1 (an ephemeral port, printed as "port P") and answers every WebSocket upgrade like
// HarperDB 4 does for /<db>/<table>/ ("conn <request path>"). With --unix PATH it is the direct path
// instead: a Unix socket listener writing the same records as plain JSON lines. Each connection then
// waits for "go" on stdin, sends N records (pre-encoded frames re-stamped in place, big blocking writes;
// or paced at R records/s, each stamped when written) and prints "done <records> <seconds> <bytes per
// record> <CPU seconds of the sending thread>". It keeps the
// connection open until killed; what the client sends is never read (no pings with the bench config).
// With --tls the WebSocket listener speaks wss:// (OpenSSL, the certificate and key from one PEM file).
// With --protocol hdb3 (and --tls: HarperDB 3 clustering is always wss://) it is HarperDB 3's SocketCluster
// instead: it answers the handshake and login, waits for one #subscribe ("conn /hdb3/<channel>"), then
// sends each record as a #publish of an HDB_TRANSACTION on that channel (the small mix's record).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "frames.h"

namespace {

struct Options {
  uint64_t records = 100000;
  bench::Mix mix = bench::Mix::Small;
  double rate = 0;  // records/s per connection; 0: as fast as the client reads
  std::string unixPath;
  std::string tlsPem;
  bool hdb3 = false;
};

SSL_CTX* tlsCtx = nullptr;

// One accepted connection: a plain socket, or TLS over it.
struct Stream {
  int fd;
  SSL* ssl = nullptr;
  ssize_t recv(char* p, size_t n) {
    if (ssl) return SSL_read(ssl, p, static_cast<int>(n));
    return ::recv(fd, p, n, 0);
  }
  ssize_t send(const char* p, size_t n) {
    if (ssl) {
      size_t done = 0;
      int r = SSL_write_ex(ssl, p, n, &done);
      return r == 1 ? static_cast<ssize_t>(done) : -1;
    }
    return ::send(fd, p, n, MSG_NOSIGNAL);
  }
};

std::atomic<bool> go{false};
std::mutex outMutex;

void say(const std::string& line) {
  std::lock_guard<std::mutex> lock(outMutex);
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench-feeder: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

bool sendAll(Stream& s, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = s.send(p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads the HTTP upgrade and answers 101; returns the request path ("" on failure).
std::string upgrade(Stream& fd) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = fd.recv(buf, sizeof buf);
    if (n <= 0 || req.size() > 65536) return "";
    req.append(buf, static_cast<size_t>(n));
  }
  std::string lower = req;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t k = lower.find("sec-websocket-key:");
  if (k == std::string::npos) return "";
  k += 18;
  size_t e = req.find("\r\n", k);
  std::string key = req.substr(k, e - k);
  key.erase(0, key.find_first_not_of(' '));
  key.erase(key.find_last_not_of(' ') + 1);
  key.append("258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  unsigned char accept[64];
  EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
  std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: ";
  resp.append(reinterpret_cast<char*>(accept)).append("\r\n\r\n");
  if (!sendAll(fd, resp.data(), resp.size())) return "";
  size_t sp = req.find(' ');
  return req.substr(sp + 1, req.find(' ', sp + 1) - sp - 1);
}

// --- HarperDB 3 (SocketCluster) ---------------------------------------------------------------------

bool sendText(Stream& s, const std::string& text) {
  std::string frame(1, static_cast<char>(0x81));
  size_t n = text.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(n));
  } else {
    frame.push_back(126);  // client packets here are small; answers too
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xff));
  }
  frame.append(text);
  return sendAll(s, frame.data(), frame.size());
}

// One whole client frame (masked, unfragmented) from `buf` into `payload`, reading more as needed;
// false when the client went away.
bool readFrame(Stream& s, std::string& buf, std::string& payload) {
  for (;;) {
    const auto* b = reinterpret_cast<const unsigned char*>(buf.data());
    size_t header = 2;
    uint64_t len = buf.size() >= 2 ? (b[1] & 0x7f) : 0;
    if (len == 126) header = 4;
    if (len == 127) header = 10;
    bool masked = buf.size() >= 2 && (b[1] & 0x80);
    if (buf.size() >= header + (masked ? 4 : 0)) {
      if (header == 4) len = (uint64_t{b[2]} << 8) | b[3];
      if (header == 10) {
        len = 0;
        for (size_t i = 2; i < 10; ++i) len = (len << 8) | b[i];
      }
      size_t start = header + (masked ? 4 : 0);
      if (buf.size() >= 2 && buf.size() - start >= len) {
        payload.assign(buf, start, len);
        for (size_t i = 0; masked && i < len; ++i) payload[i] = static_cast<char>(payload[i] ^ buf[header + i % 4]);
        buf.erase(0, start + len);
        return true;
      }
    }
    char chunk[4096];
    ssize_t n = s.recv(chunk, sizeof chunk);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
  }
}

// The text after `key` up to the next delimiter (`"`, `,` or `}`), e.g. a cid or a channel name.
std::string field(const std::string& packet, const std::string& key) {
  size_t at = packet.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return packet.substr(at, packet.find_first_of("\",}", at) - at);
}

// HarperDB 3's log-in as the bridge sees it (shared/frames/hdb3/canonical-session.txt): the handshake,
// the server's login request, the token, then one #subscribe acked. Returns the channel ("": gone).
std::string socketClusterSession(Stream& s, std::string& buf) {
  std::string packet;
  while (readFrame(s, buf, packet)) {
    std::string cid = field(packet, "\"cid\":");
    if (packet.find("\"event\":\"#handshake\"") != std::string::npos) {
      if (!sendText(s, R"({"event":"login","data":"send login credentials","cid":1})") ||
          !sendText(s, R"({"rid":)" + cid + R"(,"data":{"id":"bench","pingTimeout":3600000,"isAuthenticated":false}})"))
        return "";
    } else if (packet.starts_with(R"({"rid":1,)")) {
      if (!sendText(s, R"({"event":"#setAuthToken","data":{"token":"bench"}})")) return "";
    } else if (packet.find("\"event\":\"#subscribe\"") != std::string::npos) {
      if (!sendText(s, R"({"rid":)" + cid + "}")) return "";
      return field(packet, "\"channel\":\"");
    }
  }
  return "";
}

uint64_t wallMillis() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void sleepUntil(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// Sends opt.records records on fd; returns false if the client went away.
bool feed(Stream& fd, const Options& opt, bool lines, const bench::Shape& shape) {
  size_t chunk = opt.mix == bench::Mix::Big ? 32 : 256;
  bench::Batch batch(opt.mix, chunk, lines, shape);
  uint64_t t0 = bench::monotonicNs();
  uint64_t n = 0;
  while (n < opt.records) {
    size_t count = static_cast<size_t>(std::min<uint64_t>(chunk, opt.records - n));
    if (opt.rate > 0) {
      // Send every record that is due (at least one), each stamped when written.
      uint64_t due = t0 + static_cast<uint64_t>(static_cast<double>(n) * 1e9 / opt.rate);
      sleepUntil(due);
      uint64_t now = bench::monotonicNs();
      uint64_t upTo = static_cast<uint64_t>(static_cast<double>(now - t0) * opt.rate / 1e9) + 1;
      count = static_cast<size_t>(std::min<uint64_t>({count, upTo - n, opt.records - n}));
      if (count == 0) count = 1;
    }
    uint64_t now = bench::monotonicNs();
    for (size_t i = 0; i < count; ++i) batch.stamp(i, n + i, now);
    size_t bytes = batch.slot(count - 1).end;
    if (!sendAll(fd, batch.data(), bytes)) return false;
    n += count;
  }
  double secs = static_cast<double>(bench::monotonicNs() - t0) / 1e9;
  // This thread's CPU: well below `secs` means the client, not the feeder, set the pace.
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  say("done " + std::to_string(n) + " " + std::to_string(secs) + " " +
      std::to_string(batch.payloadBytes() / batch.frames()) + " " + std::to_string(cpu));
  return true;
}

void serve(int sock, Options opt, bool lines) {
  Stream fd{sock};
  if (tlsCtx) {
    fd.ssl = SSL_new(tlsCtx);
    SSL_set_fd(fd.ssl, sock);
    if (SSL_accept(fd.ssl) != 1) {
      std::fprintf(stderr, "bench-feeder: TLS handshake failed\n");
      SSL_free(fd.ssl);
      ::close(sock);
      return;
    }
  }
  std::string path = lines ? "direct" : upgrade(fd);
  bench::Shape shape;
  if (!path.empty() && opt.hdb3) {
    std::string buf;
    std::string channel = socketClusterSession(fd, buf);
    size_t colon = channel.find(':');
    path = colon == std::string::npos ? "" : "/hdb3/" + channel;
    shape = {true, channel.substr(0, colon), channel.substr(colon + 1), wallMillis()};
  }
  if (path.empty()) {
    if (fd.ssl) SSL_free(fd.ssl);
    ::close(sock);
    return;
  }
  say("conn " + path);
  while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  feed(fd, opt, lines, shape);
  // Held open: the client's end of stream is the driver stopping us.
  char sink[4096];
  while (fd.recv(sink, sizeof sink) > 0) {
  }
  if (fd.ssl) SSL_free(fd.ssl);
  ::close(sock);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--records") o.records = std::stoull(v);
    else if (k == "--rate") o.rate = std::stod(v);
    else if (k == "--unix") o.unixPath = v;
    else if (k == "--tls") o.tlsPem = v;
    else if (k == "--protocol" && (v == "hdb3" || v == "hdb4")) o.hdb3 = v == "hdb3";
    else if (k == "--mix") o.mix = v == "big" ? bench::Mix::Big : v == "txn3" ? bench::Mix::Txn3 : bench::Mix::Small;
    else {
      std::fprintf(stderr, "bench-feeder: unknown option %s\n", k.c_str());
      std::exit(64);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  bool lines = !opt.unixPath.empty();
  if (opt.hdb3 && (opt.tlsPem.empty() || lines || opt.mix != bench::Mix::Small)) {
    std::fprintf(stderr, "bench-feeder: --protocol hdb3 needs --tls, the small mix and no --unix\n");
    return 64;
  }
  if (!opt.tlsPem.empty()) {
    tlsCtx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(tlsCtx, opt.tlsPem.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tlsCtx, opt.tlsPem.c_str(), SSL_FILETYPE_PEM) != 1) {
      std::fprintf(stderr, "bench-feeder: cannot load %s\n", opt.tlsPem.c_str());
      return 1;
    }
  }
  int lfd;
  std::string ready;  // said once listen() succeeded: the driver connects as soon as it reads it
  if (lines) {
    lfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", opt.unixPath.c_str());
    ::unlink(a.sun_path);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
    ready = "listening " + opt.unixPath;
  } else {
    lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    ready = "port " + std::to_string(ntohs(a.sin_port));
  }
  if (::listen(lfd, 128) != 0) die("listen");
  say(ready);
  std::thread([] {
    std::string line;
    while (std::getline(std::cin, line))
      if (line == "go") go.store(true);
    std::exit(0);  // stdin closed: the driver is done with us
  }).detach();
  for (;;) {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR) continue;
      die("accept");
    }
    if (!lines) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    std::thread(serve, fd, opt, lines).detach();
  }
}
