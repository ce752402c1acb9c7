// The `metrics:` section: where the /metrics, /healthz and /readyz endpoint
// listens. Only IP literals: a name would need a look-up, and the listening
// socket is opened before the loop runs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>

#include "config.h"
#include "config_reader.h"

namespace hdb::config_detail {
namespace {

constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
constexpr const char* kListenForms = "expected IP:PORT like 127.0.0.1:9464 or [::1]:9464, or an absolute Unix socket path";

// "127.0.0.1:9464" or "[::1]:9464"; an error reason or nullopt.
std::optional<std::string> parseListen(const std::string& text, MetricsConfig& out) {
  std::string host;
  std::string_view port;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::string(kListenForms);
    host = text.substr(1, close - 1);
    port = std::string_view(text).substr(close + 2);
    in6_addr a6{};
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1) return "invalid IPv6 address " + quote(host);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return std::string(kListenForms);
    host = text.substr(0, colon);
    port = std::string_view(text).substr(colon + 1);
    in_addr a4{};
    if (host.find(':') != std::string::npos) return "an IPv6 address must be in brackets, like [::1]:9464";
    if (::inet_pton(AF_INET, host.c_str(), &a4) != 1)
      return "expected an IP address, found " + quote(host) + " (names are not looked up)";
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    return "expected a port from 0 to 65535, found " + quote(std::string(port));
  out.host = std::move(host);
  out.port = static_cast<uint16_t>(value);
  return std::nullopt;
}

const Key<MetricsConfig> kMetricsKeys[] = {
    {"listen", true,
     [](Reader& r, const Value& v, MetricsConfig& m) {
       std::string text;
       if (!r.string(v, text)) return;
       if (text.starts_with('/')) {
         if (text.size() > kMaxSocketPath)
           return r.error(v, "is " + std::to_string(text.size()) + " bytes long; a Unix socket path has at most " +
                                 std::to_string(kMaxSocketPath));
         m.unixPath = text;
         return;
       }
       if (text.find('/') != std::string::npos)
         return r.error(v, "a Unix socket path must be absolute, found " + quote(text));
       if (auto why = parseListen(text, m)) r.error(v, *why);
     }},
    {"mode", false,
     [](Reader& r, const Value& v, MetricsConfig& m) {
       std::string text;
       if (!r.string(v, text)) return;
       auto mode = parseMode(text);
       if (!mode) return r.error(v, "expected an octal mode from '0000' to '0777' like '0660', found " + quote(text));
       m.mode = *mode;
     }},
};

}  // namespace

void readMetrics(Reader& r, const Value& v, MetricsConfig& out) {
  Present present = readKeys(r, v, kMetricsKeys, out);
  if (present.count("mode") && present.count("listen") && out.unixPath.empty() && !out.host.empty())
    r.error(present.at("mode"), "only a Unix socket path under listen takes a mode");
}

}  // namespace hdb::config_detail
