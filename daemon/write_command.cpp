#include "write_command.h"

#include "envelope.h"
#include "json_util.h"

namespace hdb {
namespace {

namespace od = simdjson::ondemand;

// A value from the client shown in a message: at most this many bytes of it.
constexpr size_t kShownBytes = 40;

std::string shown(std::string_view text) {
  std::string out = "\"";
  if (text.size() <= kShownBytes) return out.append(text).append("\"");
  size_t cut = kShownBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  out.append(text.substr(0, cut)).append("...");
  out.append("\"");
  return out;
}

bool opNamed(std::string_view name, WriteOp& op) {
  for (WriteOp o : {WriteOp::Insert, WriteOp::Update, WriteOp::Upsert, WriteOp::Delete})
    if (name == writeOpName(o)) {
      op = o;
      return true;
    }
  return false;
}

const char* typeName(od::json_type t) {
  switch (t) {
    case od::json_type::object: return "an object";
    case od::json_type::array: return "an array";
    case od::json_type::string: return "a string";
    case od::json_type::number: return "a number";
    case od::json_type::boolean: return "true or false";
    case od::json_type::null: return "null";
  }
  return "?";
}

// One pass over the command object. A JSON error stops it; a command that is
// valid JSON but wrong keeps its first problem and reads on, so that a "ref"
// later in the line is still echoed with the error.
class CommandReader {
 public:
  CommandReader(od::document& doc, ParsedCommand& out) : doc_(doc), out_(out) {}

  // Returns a JSON error; semantic problems go to problem().
  simdjson::error_code read(od::object object);
  // The first problem with the command, or empty when it is valid.
  std::string check();

 private:
  enum Seen : unsigned { kOp = 1, kDatabase = 2, kSchema = 4, kTable = 8, kRecords = 16, kIds = 32, kRef = 64 };

  void problem(std::string text) {
    if (problem_.empty()) problem_ = std::move(text);
  }
  simdjson::error_code field(std::string_view key, od::value v);
  simdjson::error_code name(const char* key, od::value v, std::string& out);
  simdjson::error_code items(const char* key, od::value v, bool records);
  simdjson::error_code ref(od::value v);
  // Reads past a value of the wrong kind (still checking it is valid JSON).
  simdjson::error_code skip(od::value v) { return json::validate(v); }

  od::document& doc_;
  ParsedCommand& out_;
  unsigned seen_ = 0;
  std::string op_;
  std::string problem_;
};

simdjson::error_code CommandReader::read(od::object object) {
  for (auto f : object) {
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return e;
    od::value v;
    if (auto e = f.value().get(v)) return e;
    if (auto e = field(key, v)) return e;
  }
  return simdjson::SUCCESS;
}

simdjson::error_code CommandReader::field(std::string_view key, od::value v) {
  struct Known {
    std::string_view name;
    Seen bit;
  };
  static constexpr Known kKnown[] = {{"op", kOp},           {"database", kDatabase}, {"schema", kSchema},
                                     {"table", kTable},     {"records", kRecords},   {"ids", kIds},
                                     {"ref", kRef}};
  const Known* known = nullptr;
  for (const Known& k : kKnown)
    if (k.name == key) known = &k;
  if (!known) {
    problem("unknown key " + shown(key) + "; a command has op, database (or schema), table, records (ids for "
            "delete) and optionally ref");
    return skip(v);
  }
  if (seen_ & known->bit) {
    problem(shown(key) + " is given twice");
    return skip(v);
  }
  seen_ |= known->bit;
  switch (known->bit) {
    case kOp: return name("op", v, op_);
    case kDatabase: return name("database", v, out_.command.database);
    case kSchema: return name("schema", v, out_.command.database);
    case kTable: return name("table", v, out_.command.table);
    case kRecords: return items("records", v, true);
    case kIds: return items("ids", v, false);
    case kRef: return ref(v);
  }
  return skip(v);
}

simdjson::error_code CommandReader::name(const char* key, od::value v, std::string& out) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t != od::json_type::string) {
    problem(std::string("\"") + key + "\" must be a string, not " + typeName(t));
    return skip(v);
  }
  std::string_view text;
  if (auto e = v.get_string().get(text)) return e;
  if (text.empty()) problem(std::string("\"") + key + "\" is empty");
  else if (text.size() > kMaxNameBytes)
    problem(std::string("\"") + key + "\" is longer than " + std::to_string(kMaxNameBytes) + " bytes");
  out.assign(text);
  return simdjson::SUCCESS;
}

simdjson::error_code CommandReader::items(const char* key, od::value v, bool records) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t != od::json_type::array) {
    problem(std::string("\"") + key + "\" must be an array, not " + typeName(t));
    return skip(v);
  }
  const char* begin = v.raw_json_token().data();
  od::array array;
  if (auto e = v.get_array().get(array)) return e;
  size_t count = 0;
  for (auto element : array) {
    od::value item;
    if (auto e = element.get(item)) return e;
    od::json_type it;
    if (auto e = item.type().get(it)) return e;
    bool fits = records ? it == od::json_type::object : it == od::json_type::string || it == od::json_type::number;
    if (!fits)
      problem(std::string(key) + "[" + std::to_string(count) + "] is " + typeName(it) + "; " +
              (records ? "each record must be an object" : "each id must be a string or a number"));
    if (auto e = json::validate(item, 1)) return e;
    ++count;
  }
  // The walk left the document on the token after the array (a ',' or '}').
  const char* end = nullptr;
  if (auto e = doc_.current_location().get(end)) return e;
  if (count == 0) problem(std::string("\"") + key + "\" is empty; give at least one");
  out_.command.items.assign(json::trimRight(std::string_view(begin, size_t(end - begin))));
  out_.command.count = count;
  return simdjson::SUCCESS;
}

simdjson::error_code CommandReader::ref(od::value v) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  std::string_view text = json::trimRight(v.raw_json_token());
  if (t != od::json_type::string && t != od::json_type::number) {
    problem(std::string("\"ref\" must be a string or a number, not ") + typeName(t));
    return skip(v);
  }
  if (auto e = json::validate(v)) return e;
  if (text.size() > kMaxRefBytes) {
    problem("\"ref\" is longer than " + std::to_string(kMaxRefBytes) + " bytes");
    return simdjson::SUCCESS;
  }
  out_.ref.assign(text);
  return simdjson::SUCCESS;
}

std::string CommandReader::check() {
  if (!problem_.empty()) return problem_;
  if (!(seen_ & kOp)) return "missing \"op\" (insert, update, upsert or delete)";
  WriteOp op;
  if (!opNamed(op_, op)) return "unknown op " + shown(op_) + "; expected insert, update, upsert or delete";
  out_.command.op = op;
  if ((seen_ & kDatabase) && (seen_ & kSchema)) return "\"schema\" is another name for \"database\"; give one";
  if (!(seen_ & (kDatabase | kSchema))) return "missing \"database\"";
  if (!(seen_ & kTable)) return "missing \"table\"";
  bool del = op == WriteOp::Delete;
  if (del && (seen_ & kRecords)) return "delete takes \"ids\", not \"records\"";
  if (!del && (seen_ & kIds)) return std::string(writeOpName(op)) + " takes \"records\", not \"ids\"";
  if (!(seen_ & (del ? kIds : kRecords))) return del ? "missing \"ids\"" : "missing \"records\"";
  return {};
}

}  // namespace

bool WriteCommandParser::parse(std::string_view line, ParsedCommand& out, std::string& error) {
  out = ParsedCommand{};
  error.clear();
  buffer_.assign(line);
  json::reservePadding(buffer_);
  auto jsonError = [&](simdjson::error_code e) {
    error = std::string("not valid JSON: ") + simdjson::error_message(e);
    return false;
  };
  od::document doc;
  if (auto e = parser_.iterate(json::paddedView(buffer_, buffer_.data() + buffer_.capacity())).get(doc))
    return jsonError(e);
  od::json_type t;
  if (auto e = doc.type().get(t)) return jsonError(e);
  if (t != od::json_type::object) {
    // Read through first, so that text that is not JSON at all ("hello" is a
    // literal to simdjson) says so rather than being called a wrong type.
    size_t length = 0;
    if (auto e = json::scanValue(line, length)) return jsonError(e);
    error = std::string("a command is a JSON object, not ") + typeName(t);
    return false;
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) return jsonError(e);
  CommandReader reader(doc, out);
  if (auto e = reader.read(object)) {
    out.ref.clear();  // read from a line that is not JSON: not worth echoing
    return jsonError(e);
  }
  const char* after = nullptr;
  if (doc.current_location().get(after) != simdjson::OUT_OF_BOUNDS) {  // not at the end of the line
    out.ref.clear();
    error = "text follows the command's closing brace (one command per line)";
    return false;
  }
  error = reader.check();
  return error.empty();
}

namespace {

void appendHead(std::string& out, uint64_t line, std::string_view ref) {
  out.append("{\"line\":").append(std::to_string(line));
  if (!ref.empty()) out.append(",\"ref\":").append(ref);
}

}  // namespace

std::string answerOk(uint64_t line, std::string_view ref, const WriteCommand& command, std::string_view fields) {
  std::string out;
  out.reserve(96 + command.database.size() + command.table.size() + ref.size() + fields.size());
  appendHead(out, line, ref);
  out.append(",\"ok\":true,\"op\":\"").append(writeOpName(command.op)).append("\",\"database\":");
  appendJsonString(out, command.database);
  out.append(",\"table\":");
  appendJsonString(out, command.table);
  out.append(",\"count\":").append(std::to_string(command.count));
  if (!fields.empty()) out.append(",").append(fields);
  out.append("}\n");
  return out;
}

std::string answerError(uint64_t line, std::string_view ref, std::string_view error) {
  std::string out;
  appendHead(out, line, ref);
  out.append(",\"ok\":false,\"error\":");
  appendJsonString(out, error);
  out.append("}\n");
  return out;
}

}  // namespace hdb
