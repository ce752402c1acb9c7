// The Reader behind config_load.cpp: typed reads of yaml-cpp nodes that report
// into the error list instead of throwing, plus the file helpers it needs.
#include "config_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hdb::config_detail {
namespace {

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return "a string";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    default: return "nothing";
  }
}

std::string childPath(const std::string& map, const std::string& key) {
  return map.empty() ? key : map + "." + key;
}

// Levenshtein distance.
size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string itemPath(const std::string& list, size_t index) {
  return list + "[" + std::to_string(index) + "]";
}

std::string quote(const std::string& text) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
  return out + (text.size() > kMax ? "...'" : "'");
}

std::optional<std::string> closestName(const std::string& name, const std::vector<std::string>& names) {
  std::optional<std::string> best;
  size_t bestDistance = 3;  // a farther key is no hint
  for (const std::string& candidate : names) {
    size_t distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

std::optional<std::string> readFile(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string reason = std::strerror(errno);
      ::close(fd);
      return reason;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::nullopt;
}

std::optional<std::string> checkReadable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  struct stat st {};
  bool isDirectory = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  ::close(fd);
  if (isDirectory) return std::strerror(EISDIR);  // opens, but reading it fails later
  return std::nullopt;
}

void Reader::error(const YAML::Mark& mark, const std::string& path, std::string reason) {
  errors_.push_back({mark.line + 1, mark.column + 1, path.empty() ? "(root)" : path, std::move(reason)});
}

bool Reader::expect(const Value& v, YAML::NodeType::value type, const char* what) {
  if (v.node.Type() == type) return true;
  error(v, std::string("expected ") + what + ", found " + describe(v.node));
  return false;
}

bool Reader::string(const Value& v, std::string& out) {
  if (!expect(v, YAML::NodeType::Scalar, "a string")) return false;
  if (v.node.Scalar().empty()) {
    error(v, "must not be empty");
    return false;
  }
  out = v.node.Scalar();
  return true;
}

// YAML 1.2 booleans only: yes/no/on/off are too easy to write by accident.
bool Reader::boolean(const Value& v, bool& out) {
  static const std::map<std::string, bool> kWords{{"true", true},   {"True", true},   {"TRUE", true},
                                                  {"false", false}, {"False", false}, {"FALSE", false}};
  auto word = v.node.IsScalar() ? kWords.find(v.node.Scalar()) : kWords.end();
  if (word != kWords.end()) {
    out = word->second;
    return true;
  }
  error(v, "expected true or false, found " + (v.node.IsScalar() ? quote(v.node.Scalar()) : describe(v.node)));
  return false;
}

void Reader::entries(const Value& map, const EntryFn& fn) {
  std::map<std::string, YAML::Mark> first;
  for (const auto& entry : map.node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      error(key.Mark(), map.path, "a key must be a string, found " + describe(key));
      continue;
    }
    std::string path = childPath(map.path, key.Scalar());
    auto [earlier, fresh] = first.emplace(key.Scalar(), key.Mark());
    if (!fresh) {
      error(key.Mark(), path, "duplicate key (first at line " + std::to_string(earlier->second.line + 1) +
                                  ", column " + std::to_string(earlier->second.column + 1) + ")");
      continue;
    }
    const YAML::Node& value = entry.second;
    fn(key.Scalar(), key.Mark(), Value{value, path, value.IsNull() ? key.Mark() : value.Mark()});
  }
}

void Reader::items(const Value& list, const std::function<void(const Value&)>& fn) {
  for (size_t i = 0; i < list.node.size(); ++i) {
    const YAML::Node item = list.node[i];
    fn(Value{item, itemPath(list.path, i), item.IsNull() ? list.mark : item.Mark()});
  }
}

std::string Reader::resolve(const std::string& path) const {
  std::filesystem::path p(path);
  return p.is_absolute() ? path : (baseDir_ / p).lexically_normal().string();
}

}  // namespace hdb::config_detail
