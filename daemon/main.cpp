// hdb-bridge: HarperDB change feeds to local programs. Command line entry.
#include <signal.h>
#include <sysexits.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "bridge.h"
#include "config.h"
#include "install_component.h"
#include "logging.h"
#include "tail.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/hdb-bridge/hdb-bridge.yaml";

void printUsage(FILE* to) {
  std::fprintf(to,
               "Usage: hdb-bridge [--config FILE] [--check-config]\n"
               "       hdb-bridge tail SOCKET [--ops OP,...] [--pretty]\n"
               "       hdb-bridge install-component [--config FILE] [--server NAME]\n"
               "       hdb-bridge --version | --help\n"
               "\n"
               "Subscribes to HarperDB tables and writes every change as one JSON line\n"
               "to the sinks (stdout, Unix sockets) declared in the config file.\n"
               "\n"
               "  -c, --config FILE   config file (default %s)\n"
               "      --check-config  validate the config, print every error, and exit\n"
               "                      (0 when valid, 78 when not)\n"
               "  -V, --version       print the version and exit\n"
               "\n"
               "install-component deploys hdb-bridge's HarperDB 4 component to a running\n"
               "server through its operations API (operations_url, default port 9925), so\n"
               "its tables can be subscribed to and resumed after a disconnect.\n"
               "  -h, --help          print this help and exit\n"
               "\n"
               "Signals: SIGTERM/SIGINT close the subscriptions, flush the sinks, exit 0.\n",
               kDefaultConfig);
}

struct Options {
  std::string config = kDefaultConfig;
  bool checkOnly = false;
  bool installComponent = false;
  std::string server;  // install-component --server
};

// Returns -1 to go on, or an exit code.
int parseArgs(int argc, char** argv, Options& opts) {
  int first = 1;
  if (argc > 1 && std::string_view(argv[1]) == "install-component") {
    opts.installComponent = true;
    first = 2;
  }
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      printUsage(stdout);
      return 0;
    }
    if (arg == "-V" || arg == "--version") {
      std::printf("hdb-bridge %s\n", HDB_BRIDGE_VERSION);
      return 0;
    }
    if (arg == "--check-config" && !opts.installComponent) {
      opts.checkOnly = true;
    } else if (arg == "--server" && opts.installComponent) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hdb-bridge: --server needs a server name\n");
        return EX_USAGE;
      }
      opts.server = argv[++i];
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hdb-bridge: %s needs a file name\n", argv[i]);
        return EX_USAGE;
      }
      opts.config = argv[++i];
    } else if (arg.starts_with("--config=")) {
      opts.config = std::string(arg.substr(9));
    } else {
      std::fprintf(stderr, "hdb-bridge: unknown argument '%s'\n", argv[i]);
      printUsage(stderr);
      return EX_USAGE;
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  // A client of a unix sink, not the daemon: none of the set-up below.
  if (argc > 1 && std::string_view(argv[1]) == "tail") return hdb::runTail(argc - 1, argv + 1);

  Options opts;
  if (int rc = parseArgs(argc, argv, opts); rc >= 0) return rc;

  // Signals are read from a signalfd in the loop: block them before anything
  // else (threads started later inherit the mask). Broken pipes are errors of
  // the write that hit them, never a reason to die.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  hdb::ConfigResult result = hdb::loadConfig(opts.config);
  if (!result.errors.empty()) {
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", hdb::formatError(opts.config, e).c_str());
    std::fprintf(stderr, "hdb-bridge: %zu error(s) in %s\n", result.errors.size(), opts.config.c_str());
    return EX_CONFIG;
  }
  if (opts.checkOnly) {
    std::printf("%s: OK\n", opts.config.c_str());
    return 0;
  }
  if (opts.installComponent) return hdb::installComponent(*result.config, opts.server);

  hdb::setupLogging(result.config->logLevel);
  try {
    hdb::Bridge bridge(*result.config);
    return bridge.run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
