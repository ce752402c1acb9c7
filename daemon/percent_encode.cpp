#include "percent_encode.h"

namespace hdb {

namespace {

bool isAlnum(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

bool keep(unsigned char c, Escape mode, bool first) {
  if (isAlnum(c) || c == '-' || c == '_') return true;
  if (c == '.') return mode == Escape::UrlPath || !first;
  return c == '~' && mode == Escape::UrlPath;
}

}  // namespace

std::string percentEncode(std::string_view s, Escape mode) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (keep(c, mode, out.empty())) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace hdb
