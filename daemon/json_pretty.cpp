#include "json_pretty.h"

#include <simdjson.h>

namespace hdb {

namespace {

constexpr const char* kKey = "\033[34m";
constexpr const char* kString = "\033[32m";
constexpr const char* kNumber = "\033[33m";
constexpr const char* kLiteral = "\033[35m";
constexpr const char* kReset = "\033[0m";

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool valid(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  return parser.parse(padded).error() == simdjson::SUCCESS;
}

class Printer {
 public:
  Printer(std::string_view in, bool color) : in_(in), color_(color) {}

  std::string run() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (isSpace(c)) {
        ++pos_;
      } else if (c == '{' || c == '[') {
        open(c);
      } else if (c == '}' || c == ']') {
        --depth_;
        newline();
        out_.push_back(c);
        ++pos_;
      } else if (c == ',') {
        out_.push_back(',');
        newline();
        ++pos_;
      } else if (c == ':') {
        out_ += ": ";
        ++pos_;
      } else if (c == '"') {
        string();
      } else {
        scalar();
      }
    }
    return out_;
  }

 private:
  void open(char c) {
    char close = c == '{' ? '}' : ']';
    size_t next = skipSpace(pos_ + 1);
    if (next < in_.size() && in_[next] == close) {
      out_.push_back(c);
      out_.push_back(close);
      pos_ = next + 1;
      return;
    }
    out_.push_back(c);
    ++depth_;
    newline();
    ++pos_;
  }

  void string() {
    size_t end = pos_ + 1;
    while (end < in_.size() && in_[end] != '"') end += in_[end] == '\\' ? 2 : 1;
    std::string_view text = in_.substr(pos_, end + 1 - pos_);
    size_t after = skipSpace(end + 1);
    bool key = after < in_.size() && in_[after] == ':';
    paint(key ? kKey : kString, text);
    pos_ = end + 1;
  }

  void scalar() {
    size_t end = pos_;
    while (end < in_.size() && !isSpace(in_[end]) && in_[end] != ',' && in_[end] != '}' && in_[end] != ']') ++end;
    std::string_view text = in_.substr(pos_, end - pos_);
    bool literal = text == "true" || text == "false" || text == "null";
    paint(literal ? kLiteral : kNumber, text);
    pos_ = end;
  }

  void paint(const char* colour, std::string_view text) {
    if (color_) out_ += colour;
    out_ += text;
    if (color_) out_ += kReset;
  }

  void newline() {
    out_.push_back('\n');
    out_.append(static_cast<size_t>(depth_) * 2, ' ');
  }

  size_t skipSpace(size_t i) const {
    while (i < in_.size() && isSpace(in_[i])) ++i;
    return i;
  }

  std::string_view in_;
  bool color_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string out_;
};

}  // namespace

std::optional<std::string> prettyJson(std::string_view json, bool color) {
  if (!valid(json)) return std::nullopt;
  return Printer(json, color).run();
}

std::optional<std::string> jsonOp(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return std::nullopt;
  std::string_view op;
  if (doc["op"].get(op) != simdjson::SUCCESS) return std::nullopt;
  return std::string(op);
}

}  // namespace hdb
