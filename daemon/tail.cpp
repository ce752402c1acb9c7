#include "tail.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "json_pretty.h"

namespace hdb {

namespace {

void usage(FILE* to) {
  std::fprintf(to,
               "Usage: hdb-bridge tail SOCKET [--ops OP,...] [--pretty]\n"
               "\n"
               "Connects to a unix sink's socket and prints its lines until the stream ends.\n"
               "\n"
               "  --ops OP,...  only lines whose \"op\" is listed (gap lines always show;\n"
               "                lines without an op, as from format: record or raw, too)\n"
               "  --pretty      indent and colour each line (the default when stdout is a\n"
               "                terminal; NO_COLOR=1 turns colours off)\n");
}

struct TailOptions {
  std::string socket;
  std::vector<std::string> ops;
  bool pretty = false;
};

int parse(int argc, char** argv, TailOptions& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    }
    if (arg == "--pretty") {
      o.pretty = true;
    } else if (arg == "--ops" || arg.starts_with("--ops=")) {
      std::string list;
      if (arg == "--ops") {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "hdb-bridge tail: --ops needs a list like put,delete\n");
          return EX_USAGE;
        }
        list = argv[++i];
      } else {
        list = std::string(arg.substr(6));
      }
      for (size_t start = 0; start <= list.size();) {
        size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) o.ops.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
      if (o.ops.empty()) {
        std::fprintf(stderr, "hdb-bridge tail: --ops needs a list like put,delete\n");
        return EX_USAGE;
      }
    } else if (!arg.starts_with("-") && o.socket.empty()) {
      o.socket = std::string(arg);
    } else {
      std::fprintf(stderr, "hdb-bridge tail: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return EX_USAGE;
    }
  }
  if (o.socket.empty()) {
    std::fprintf(stderr, "hdb-bridge tail: which socket? (the path of a unix sink)\n");
    usage(stderr);
    return EX_USAGE;
  }
  return -1;
}

// Returns the connected fd, or -1 after printing why not (and setting `code`).
int connectTo(const std::string& path, int& code) {
  auto fail = [&](int exitCode, const std::string& why) {
    std::fprintf(stderr, "hdb-bridge tail: %s: %s\n", path.c_str(), why.c_str());
    code = exitCode;
    return -1;
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail(EX_USAGE, "path too long for a Unix socket");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    return fail(EX_NOINPUT, "not a socket (is this the path of a unix sink?)");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(EX_OSERR, std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
  int err = errno;
  ::close(fd);
  switch (err) {
    case ENOENT: return fail(EX_NOINPUT, "no such socket (is hdb-bridge running with a unix sink at this path?)");
    case ECONNREFUSED:
      return fail(EX_UNAVAILABLE, "connection refused: nothing is listening (hdb-bridge is not running, or this "
                                  "socket file is stale)");
    case EACCES:
    case EPERM: return fail(EX_NOPERM, "permission denied (the sink's mode, owner and group decide who connects)");
    default: return fail(EX_UNAVAILABLE, std::strerror(err));
  }
}

class Printer {
 public:
  Printer(const TailOptions& o, bool pretty, bool color) : ops_(o.ops), pretty_(pretty), color_(color) {}

  // False once stdout is gone.
  bool line(std::string_view text) {
    if (!ops_.empty()) {
      auto op = jsonOp(text);
      if (op && *op != "gap" && std::find(ops_.begin(), ops_.end(), *op) == ops_.end()) return true;
    }
    std::string out;
    if (pretty_) {
      if (auto p = prettyJson(text, color_)) out = std::move(*p);
    }
    if (out.empty()) out.assign(text);
    out.push_back('\n');
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) return false;
    // Interactive use wants each line now; a pipe gets them in batches.
    return !pretty_ || std::fflush(stdout) == 0;
  }

 private:
  std::vector<std::string> ops_;
  bool pretty_;
  bool color_;
};

}  // namespace

int runTail(int argc, char** argv) {
  TailOptions opts;
  if (int rc = parse(argc, argv, opts); rc >= 0) return rc;
  // A closed stdout (`| head`) ends us quietly, as it would end cat.
  ::signal(SIGPIPE, SIG_IGN);
  bool terminal = ::isatty(STDOUT_FILENO) == 1;
  bool pretty = opts.pretty || terminal;
  const char* noColor = std::getenv("NO_COLOR");
  bool color = pretty && !(noColor && *noColor);

  int code = 0;
  int fd = connectTo(opts.socket, code);
  if (fd < 0) return code;

  Printer printer(opts, pretty, color);
  std::string pending;
  bool any = false;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::fprintf(stderr, "hdb-bridge tail: %s: %s\n", opts.socket.c_str(), std::strerror(errno));
      ::close(fd);
      return EX_IOERR;
    }
    if (n == 0) break;
    any = true;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!printer.line(std::string_view(pending).substr(start, nl - start))) {
        ::close(fd);
        return 0;
      }
    }
    pending.erase(0, start);
  }
  ::close(fd);
  if (!pending.empty()) printer.line(pending);
  std::fflush(stdout);
  if (!any)
    std::fprintf(stderr,
                 "hdb-bridge tail: %s: the bridge closed the connection before sending anything (stopping, or this "
                 "user is not in the sink's allow_uids/allow_gids)\n",
                 opts.socket.c_str());
  return 0;
}

}  // namespace hdb
