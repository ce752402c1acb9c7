// The `sinks:` section of the config (docs/sinks.md): each sink's keys, which
// sink types take which keys, and the checks across sinks (names, paths, and
// tables that must be configured).
#include <grp.h>
#include <pwd.h>
#include <sys/un.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "config_reader.h"

namespace hdb::config_detail {

namespace {

namespace fs = std::filesystem;

const Choice<SinkType> kSinkTypes[] = {
    {"stdout", SinkType::Stdout}, {"unix", SinkType::Unix}, {"fifo", SinkType::Fifo}, {"ingest", SinkType::Ingest}};
const Choice<SinkFormat> kFormats[] = {
    {"envelope", SinkFormat::Envelope}, {"record", SinkFormat::Record}, {"raw", SinkFormat::Raw}};
const Choice<OverflowPolicy> kOverflowPolicies[] = {{"disconnect", OverflowPolicy::Disconnect},
                                                    {"drop_oldest", OverflowPolicy::DropOldest},
                                                    {"drop_newest", OverflowPolicy::DropNewest}};

// Every op a source writes: HarperDB 4 (put, delete, message, snapshot) and
// HarperDB 3 (insert, update, upsert, delete). A misspelt op would silently
// filter everything out, so unknown ones are errors.
const std::vector<std::string> kOps = {"put", "delete", "message", "snapshot", "insert", "update", "upsert"};
// What an ingest socket's `ops:` lists: the write ops it lets clients send.
const std::vector<std::string> kWriteOps = {"insert", "update", "upsert", "delete"};

constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
constexpr size_t kMaxReplay = 1'000'000;
constexpr size_t kMaxInFlight = 10'000;
constexpr size_t kMinLineBytes = 1024;
constexpr size_t kMaxLineBytes = size_t{1} << 30;

// Which sink types take a key; keys not listed here all take.
struct KeyTypes {
  const char* key;
  bool onUnix, onFifo, onStdout, onIngest;
  const char* message;
};
const KeyTypes kKeyTypes[] = {
    {"path", true, true, false, true, "only unix, fifo and ingest sinks take this key"},
    {"mode", true, true, false, true, "only unix, fifo and ingest sinks take this key"},
    {"owner", true, true, false, true, "only unix, fifo and ingest sinks take this key"},
    {"group", true, true, false, true, "only unix, fifo and ingest sinks take this key"},
    {"replay", true, false, false, false, "only unix sinks take this key"},
    {"allow_uids", true, false, false, true, "only unix and ingest sinks take this key"},
    {"allow_gids", true, false, false, true, "only unix and ingest sinks take this key"},
    {"format", true, true, true, false, "an ingest socket answers commands and gets no feed lines: it has no format"},
    {"on_overflow", true, true, true, false,
     "an ingest socket never drops an answer: it stops reading a client whose answers pass queue_bytes"},
    {"max_in_flight", false, false, false, true, "only ingest sinks take this key"},
    {"max_line_bytes", false, false, false, true, "only ingest sinks take this key"},
};

bool allDigits(const std::string& s) {
  return !s.empty() && s.size() <= 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A user as a name or a numeric uid; an unknown name is an error, a number is
// taken as it is (it need not exist in /etc/passwd).
std::optional<uint32_t> userId(Reader& r, const Value& v) {
  std::string text;
  if (!r.string(v, text)) return std::nullopt;
  if (allDigits(text)) {
    unsigned long id = std::stoul(text);
    if (id < UINT32_MAX) return static_cast<uint32_t>(id);
  } else {
    passwd pw{}, *found = nullptr;
    char buf[4096];
    if (::getpwnam_r(text.c_str(), &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_uid;
  }
  r.error(v, "no such user " + quote(text) + "; expected a user name or a numeric uid");
  return std::nullopt;
}

std::optional<uint32_t> groupId(Reader& r, const Value& v) {
  std::string text;
  if (!r.string(v, text)) return std::nullopt;
  if (allDigits(text)) {
    unsigned long id = std::stoul(text);
    if (id < UINT32_MAX) return static_cast<uint32_t>(id);
  } else {
    group gr{}, *found = nullptr;
    char buf[4096];
    if (::getgrnam_r(text.c_str(), &gr, buf, sizeof buf, &found) == 0 && found) return found->gr_gid;
  }
  r.error(v, "no such group " + quote(text) + "; expected a group name or a numeric gid");
  return std::nullopt;
}

void readIds(Reader& r, const Value& v, const char* what, std::optional<uint32_t> (*one)(Reader&, const Value&),
             std::vector<uint32_t>& out) {
  if (!r.expect(v, YAML::NodeType::Sequence, what)) return;
  if (v.node.size() == 0) return r.error(v, "list at least one, or leave the key out to allow everyone");
  r.items(v, [&](const Value& item) {
    if (auto id = one(r, item)) out.push_back(*id);
  });
}

const Key<SinkDraft> kSinkKeys[] = {
    {"name", true, [](Reader& r, const Value& v, SinkDraft& s) { r.string(v, s.cfg.name); }},
    {"type", true,
     [](Reader& r, const Value& v, SinkDraft& s) { s.typed = r.choice(v, "sink type", kSinkTypes, s.cfg.type); }},
    {"tables", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       if (!r.expect(v, YAML::NodeType::Sequence, "a list of database.table names")) return;
       if (v.node.size() == 0) return r.error(v, "list at least one table, or leave the key out for all tables");
       r.items(v, [&](const Value& item) {
         std::string name;
         if (!r.string(item, name)) return;
         size_t dot = name.find('.');
         if (dot == 0 || dot == std::string::npos || dot + 1 == name.size() || name.find('.', dot + 1) != std::string::npos)
           return r.error(item, "expected database.table, found " + quote(name));
         s.cfg.tables.push_back(name);
         s.tableRefs.push_back(item);
       });
     }},
    {"ops", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       // Which ops are valid depends on the type: checked in readSink.
       if (!r.expect(v, YAML::NodeType::Sequence, "a list of ops")) return;
       if (v.node.size() == 0) return r.error(v, "list at least one op, or leave the key out for all ops");
       r.items(v, [&](const Value& item) {
         std::string op;
         if (r.string(item, op)) s.opRefs.push_back(item);
       });
     }},
    {"format", false,
     [](Reader& r, const Value& v, SinkDraft& s) { r.choice(v, "format", kFormats, s.cfg.format); }},
    {"path", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       if (!r.string(v, s.cfg.path)) return;
       if (!s.cfg.path.starts_with('/')) return r.error(v, "must be an absolute path, found " + quote(s.cfg.path));
     }},
    {"queue_bytes", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       auto bytes = parseSize(text);
       if (!bytes) return r.error(v, "expected a number of bytes or a size like '64KiB' or '4MiB', found " + quote(text));
       if (*bytes == 0) return r.error(v, "must be greater than 0");
       s.cfg.queueBytes = *bytes;
     }},
    {"on_overflow", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       OverflowPolicy policy{};
       if (r.choice(v, "overflow policy", kOverflowPolicies, policy)) s.cfg.onOverflow = policy;
     }},
    {"mode", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       auto mode = parseMode(text);
       if (!mode) return r.error(v, "expected an octal mode from '0000' to '0777' like '0660', found " + quote(text));
       s.cfg.mode = *mode;
     }},
    {"owner", false, [](Reader& r, const Value& v, SinkDraft& s) { s.cfg.owner = userId(r, v); }},
    {"group", false, [](Reader& r, const Value& v, SinkDraft& s) { s.cfg.group = groupId(r, v); }},
    {"replay", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       if (!allDigits(text) || std::stoull(text) > kMaxReplay)
         return r.error(v, "expected a number of lines from 0 to " + std::to_string(kMaxReplay) + ", found " +
                               quote(text));
       s.cfg.replay = std::stoull(text);
     }},
    {"max_in_flight", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       if (!allDigits(text) || std::stoull(text) < 1 || std::stoull(text) > kMaxInFlight)
         return r.error(v, "expected a number of commands from 1 to " + std::to_string(kMaxInFlight) + ", found " +
                               quote(text));
       s.cfg.maxInFlight = std::stoull(text);
     }},
    {"max_line_bytes", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       std::string text;
       if (!r.string(v, text)) return;
       auto bytes = parseSize(text);
       if (!bytes || *bytes < kMinLineBytes || *bytes > kMaxLineBytes)
         return r.error(v, "expected a size from 1KiB to 1GiB like '64KiB' or '1MiB', found " + quote(text));
       s.cfg.maxLineBytes = *bytes;
     }},
    {"allow_uids", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       readIds(r, v, "a list of user names or uids", userId, s.cfg.allowUids);
     }},
    {"allow_gids", false,
     [](Reader& r, const Value& v, SinkDraft& s) {
       readIds(r, v, "a list of group names or gids", groupId, s.cfg.allowGids);
     }},
};

// `ops:` once the type is known: feed ops for the sinks that get the feed,
// write ops for an ingest socket. A misspelt op would silently filter
// everything out, so unknown ones are errors.
void readOps(Reader& r, SinkDraft& s) {
  bool ingest = s.typed && s.cfg.type == SinkType::Ingest;
  const std::vector<std::string>& valid = ingest ? kWriteOps : kOps;
  for (const Value& item : s.opRefs) {
    const std::string& op = item.node.Scalar();
    if (op == "gap" && !ingest) {
      r.error(item, "gap lines always reach every sink; leave 'gap' out");
      continue;
    }
    if (std::find(valid.begin(), valid.end(), op) == valid.end()) {
      auto guess = closestName(op, valid);
      r.error(item, "unknown op " + quote(op) + (guess ? "; did you mean '" + *guess + "'?" : "") +
                        (ingest ? " (an ingest socket's ops: insert, update, upsert, delete)"
                                : " (ops: put, delete, message, snapshot, insert, update, upsert)"));
      continue;
    }
    if (std::find(s.cfg.ops.begin(), s.cfg.ops.end(), op) != s.cfg.ops.end()) {
      r.error(item, "op " + quote(op) + " is listed twice");
      continue;
    }
    s.cfg.ops.push_back(op);
  }
}

}  // namespace

void readSink(Reader& r, const Value& item, SinkDraft& s) {
  s.item = item;
  s.present = readKeys(r, item, kSinkKeys, s);
  readOps(r, s);
  if (!s.typed) return;
  const Present& present = s.present;
  for (const KeyTypes& k : kKeyTypes) {
    bool takes = s.cfg.type == SinkType::Unix     ? k.onUnix
                 : s.cfg.type == SinkType::Fifo   ? k.onFifo
                 : s.cfg.type == SinkType::Ingest ? k.onIngest
                                                  : k.onStdout;
    if (!takes && present.count(k.key)) r.error(present.at(k.key), k.message);
  }
  if (s.cfg.type != SinkType::Stdout) {
    const char* type = s.cfg.type == SinkType::Unix ? "unix" : s.cfg.type == SinkType::Fifo ? "fifo" : "ingest";
    if (!present.count("path"))
      r.error(item, std::string("missing required key 'path' (") + (s.cfg.type == SinkType::Ingest ? "an " : "a ") +
                        type + " sink needs one)");
  }
  if ((s.cfg.type == SinkType::Unix || s.cfg.type == SinkType::Ingest) && s.cfg.path.size() > kMaxSocketPath)
    r.error(present.at("path"), "is " + std::to_string(s.cfg.path.size()) +
                                    " bytes long; a Unix socket path has at most " + std::to_string(kMaxSocketPath));
}

void checkSinks(Reader& r, const std::vector<SinkDraft>& sinks, const std::set<std::string>& tables,
                const std::set<std::string>& writable, bool tablesKnown) {
  std::map<std::string, std::string> names, paths;  // name or path -> the first sink that has it
  for (size_t i = 0; i < sinks.size(); ++i) {
    const SinkDraft& s = sinks[i];
    if (!s.cfg.name.empty() && !names.emplace(s.cfg.name, itemPath("sinks", i)).second)
      r.error(s.present.at("name"), "sink name " + quote(s.cfg.name) + " is already used by " + names[s.cfg.name]);
    std::string path = fs::path(s.cfg.path).lexically_normal().string();
    bool hasPath = s.typed && s.cfg.type != SinkType::Stdout;
    if (hasPath && !path.empty() && !paths.emplace(path, itemPath("sinks", i)).second)
      r.error(s.present.at("path"), "path is already used by " + paths[path]);
    bool ingest = s.typed && s.cfg.type == SinkType::Ingest;
    for (const Value& ref : s.tableRefs) {
      if (!tablesKnown) continue;
      if (!tables.count(ref.node.Scalar()))
        r.error(ref, "table " + quote(ref.node.Scalar()) + " is not configured under tables");
      else if (ingest && !writable.count(ref.node.Scalar()))
        r.error(ref, "table " + quote(ref.node.Scalar()) +
                         " is not writable; an ingest socket writes only to tables with writable: true");
    }
    if (ingest && tablesKnown && writable.empty())
      r.error(s.item, "no table has writable: true, so this ingest socket could write nothing; set writable: true "
                      "on the tables it may write to");
  }
}

}  // namespace hdb::config_detail
