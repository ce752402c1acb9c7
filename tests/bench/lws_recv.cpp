// bench-lws-recv: the ceiling of any bridge built on libwebsockets 4.1. A client that connects to the
// feeder, receives messages and throws them away; prints "connected", then on the Nth message one JSON
// object {"messages":N,"bytes":B,"seconds":S} (first byte to the Nth message) and exits.
//
//   bench-lws-recv --port P --expect N [--path /dev/t0/] [--tls 1]   (wss://, the feeder's self-signed certificate)
#include <libwebsockets.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "frames.h"

namespace {

struct State {
  unsigned long long expect = 0, messages = 0, bytes = 0;
  uint64_t first = 0, last = 0;
  bool done = false, failed = false;
};
State st;

int callback(lws* wsi, lws_callback_reasons reason, void*, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      std::puts("connected");
      std::fflush(stdout);
      break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      if (st.first == 0) st.first = bench::monotonicNs();
      st.bytes += len;
      if (lws_is_final_fragment(wsi) && ++st.messages == st.expect) {
        st.last = bench::monotonicNs();
        st.done = true;
        lws_cancel_service(lws_get_context(wsi));
      }
      break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      std::fprintf(stderr, "bench-lws-recv: %s\n", in ? static_cast<const char*>(in) : "connection error");
      st.failed = true;
      break;
    case LWS_CALLBACK_CLIENT_CLOSED:
      st.failed = !st.done;
      break;
    default:
      break;
  }
  return 0;
}

const lws_protocols protocols[] = {{"bench", callback, 0, 0, 0, nullptr, 0}, {nullptr, nullptr, 0, 0, 0, nullptr, 0}};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string path = "/dev/t0/";
  bool tls = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--port") port = std::atoi(argv[i + 1]);
    else if (k == "--expect") st.expect = std::strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--path") path = argv[i + 1];
    else if (k == "--tls") tls = std::string(argv[i + 1]) == "1";
  }
  lws_set_log_level(LLL_ERR, nullptr);
  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  lws_context* ctx = lws_create_context(&info);
  if (!ctx) return 1;
  lws_client_connect_info ci{};
  ci.context = ctx;
  ci.address = "127.0.0.1";
  ci.port = port;
  ci.path = path.c_str();
  ci.host = "127.0.0.1";
  ci.origin = "127.0.0.1";
  ci.local_protocol_name = "bench";
  if (tls) ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
  if (!lws_client_connect_via_info(&ci)) return 1;
  int n = 0;
  while (n >= 0 && !st.done && !st.failed) n = lws_service(ctx, 0);
  lws_context_destroy(ctx);
  double secs = static_cast<double>(st.last - st.first) / 1e9;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf("{\"messages\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"cpu_s\":%.3f}\n", st.messages, st.bytes,
              st.done ? secs : 0.0, cpu);
  return st.done ? 0 : 1;
}
