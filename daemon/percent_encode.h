// %XX-escaping of names (databases, tables, servers) for the two places they
// end up: a URL path (HarperDB 4 subscriptions) and a file name (checkpoints).
#pragma once

#include <string>
#include <string_view>

namespace hdb {

enum class Escape {
  UrlPath,   // keeps RFC 3986's unreserved characters [A-Za-z0-9-._~]
  FileName,  // keeps [A-Za-z0-9-._], but never a leading dot: "." and ".." cannot name a directory
};

std::string percentEncode(std::string_view s, Escape mode);

}  // namespace hdb
