// Parsers of single config values: a server's URL, a byte size, a file mode,
// a duration, and ${NAME} in a file name.
// URL reasons never repeat the whole URL: a user who pasted credentials into
// it must not see them echoed in a log or an error line.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config.h"
#include "config_reader.h"

namespace hdb {
namespace {

bool isHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool isSchemeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// Splits HOST[:PORT] or [IPV6][:PORT]; `port` is empty when none is given.
std::optional<std::string> splitAuthority(std::string_view authority, std::string& host,
                                          std::optional<std::string_view>& port) {
  std::string_view rest;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return "missing ']' after the IPv6 address";
    host = authority.substr(1, close - 1);
    in6_addr addr{};
    if (::inet_pton(AF_INET6, host.c_str(), &addr) != 1) return "invalid IPv6 address";
    rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return "expected ':PORT' after the IPv6 address";
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos)
      return "an IPv6 address must be in brackets, like ws://[::1]:9926";
    host = authority.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
    if (!std::all_of(host.begin(), host.end(), isHostChar)) return "invalid character in the host";
  }
  if (host.empty()) return "missing host";
  if (!rest.empty()) port = rest.substr(1);
  return std::nullopt;
}

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

std::optional<std::string> parseUrl(const std::string& text, Url& out) {
  std::string_view view = text;
  size_t sep = view.find("://");
  if (sep == std::string_view::npos) return "expected ws://HOST[:PORT][/PATH] or wss://...";
  std::string scheme(view.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  Url url;
  if (scheme == "wss") {
    url.tls = true;
  } else if (scheme != "ws") {
    bool printable = !scheme.empty() && std::all_of(scheme.begin(), scheme.end(), isSchemeChar);
    return printable ? "scheme must be ws or wss, not '" + scheme + "'" : "scheme must be ws or wss";
  }

  std::string_view rest = view.substr(sep + 3);
  if (std::any_of(rest.begin(), rest.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }))
    return "must not contain spaces";
  size_t authorityEnd = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authorityEnd);
  std::string_view path = rest.substr(authorityEnd);
  if (authority.find('@') != std::string_view::npos)
    return "credentials in the URL are not supported; use username and password";
  if (path.find_first_of("?#") != std::string_view::npos) return "a query or fragment is not supported";

  std::optional<std::string_view> portText;
  if (auto reason = splitAuthority(authority, url.host, portText)) return reason;
  if (portText) {
    auto port = parsePort(*portText);
    if (!port) return "port must be a number from 1 to 65535";
    url.port = *port;
  } else {
    url.port = url.tls ? 443 : 80;
  }
  url.path = path.empty() ? "/" : std::string(path);
  out = std::move(url);
  return std::nullopt;
}

namespace config_detail {

std::optional<size_t> parseSize(const std::string& text) {
  static const Choice<unsigned> kUnits[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
  size_t digits = 0;
  size_t value = 0;
  for (; digits < text.size() && text[digits] >= '0' && text[digits] <= '9'; ++digits) {
    if (value > (SIZE_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<size_t>(text[digits] - '0');
  }
  if (digits == 0) return std::nullopt;
  std::string unit = text.substr(std::min(text.find_first_not_of(' ', digits), text.size()));
  for (const auto& u : kUnits)
    if (unit == u.name) return value <= (SIZE_MAX >> u.value) ? std::optional(value << u.value) : std::nullopt;
  return std::nullopt;
}

std::optional<unsigned> parseMode(const std::string& text) {
  if (text.size() < 3 || text.size() > 4 || (text.size() == 4 && text[0] != '0')) return std::nullopt;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  return mode;
}

std::optional<std::chrono::milliseconds> parseDuration(const std::string& text) {
  static const Choice<int64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  size_t digits = 0;
  int64_t value = 0;
  for (; digits < text.size() && text[digits] >= '0' && text[digits] <= '9'; ++digits) {
    if (value > 1'000'000'000) return std::nullopt;
    value = value * 10 + (text[digits] - '0');
  }
  if (digits == 0) return std::nullopt;
  std::string unit = text.substr(std::min(text.find_first_not_of(' ', digits), text.size()));
  for (const auto& u : kUnits)
    if (unit == u.name) return std::chrono::milliseconds(value * u.value);
  return std::nullopt;
}

// ${NAME} and ${NAME:-default}. Only braced names, so a '$' anywhere else is
// kept as it is; systemd's $CREDENTIALS_DIRECTORY is what this is for.
std::optional<std::string> expandEnv(const std::string& text, std::string& out) {
  std::string result;
  size_t at = 0;
  while (at < text.size()) {
    size_t open = text.find("${", at);
    if (open == std::string::npos) break;
    result.append(text, at, open - at);
    size_t close = text.find('}', open + 2);
    if (close == std::string::npos) return "'${' without a closing '}'";
    std::string inner = text.substr(open + 2, close - open - 2);
    size_t dash = inner.find(":-");
    std::string name = inner.substr(0, dash);
    bool validName = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                     });
    if (!validName) return "expected ${NAME} or ${NAME:-default} with NAME made of letters, digits and '_'";
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      result.append(value);
    } else if (dash != std::string::npos) {
      result.append(inner, dash + 2);
    } else {
      return "${" + name + "} is not set" +
             (name == "CREDENTIALS_DIRECTORY" ? " (systemd sets it for a unit with LoadCredential=)" : "");
    }
    at = close + 1;
  }
  result.append(text, std::min(at, text.size()));
  out = std::move(result);
  return std::nullopt;
}

}  // namespace config_detail
}  // namespace hdb
