#include "json_util.h"

#include <cmath>
#include <cstdlib>

#include <array>
#include <cstdint>
#include <cstring>

namespace hdb::json {

namespace {

// String bytes that need no look: not '"', '\\' or a control character.
constexpr auto kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 256; ++c) plain[size_t(c)] = c != '"' && c != '\\';
  return plain;
}();

bool isSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One pass over JSON text, no recursion: the grammar, strings with their escapes,
// numbers and literals. Every step checks the end of the text first.
class Scanner {
 public:
  Scanner(const char* p, const char* end) : p_(p), end_(end) {}

  simdjson::error_code value(size_t& length) {
    const char* begin = p_;
    // What is open, innermost last: '{' or '['.
    char open[kMaxDepth];
    int depth = 0;
    enum class Want { Value, Key, After } want = Want::Value;
    for (;;) {
      switch (want) {
        case Want::Value: {
          skipSpace();
          if (p_ == end_) return simdjson::OUT_OF_BOUNDS;
          char c = *p_;
          if (c == '{' || c == '[') {
            if (depth == kMaxDepth) return simdjson::DEPTH_ERROR;
            open[depth++] = c;
            ++p_;
            skipSpace();
            if (p_ == end_) return simdjson::OUT_OF_BOUNDS;
            if (*p_ == (c == '{' ? '}' : ']')) {
              ++p_;
              --depth;
              want = Want::After;
            } else {
              want = c == '{' ? Want::Key : Want::Value;
            }
            continue;
          }
          simdjson::error_code e;
          if (c == '"') e = string();
          else if (c == '-' || (c >= '0' && c <= '9')) e = number();
          else if (c == 't') e = literal("true", simdjson::T_ATOM_ERROR);
          else if (c == 'f') e = literal("false", simdjson::F_ATOM_ERROR);
          else if (c == 'n') e = literal("null", simdjson::N_ATOM_ERROR);
          else e = simdjson::TAPE_ERROR;
          if (e) return e;
          want = Want::After;
          continue;
        }
        case Want::Key: {
          if (p_ == end_) return simdjson::OUT_OF_BOUNDS;
          if (*p_ != '"') return simdjson::TAPE_ERROR;
          if (auto e = string()) return e;
          skipSpace();
          if (p_ == end_) return simdjson::OUT_OF_BOUNDS;
          if (*p_ != ':') return simdjson::TAPE_ERROR;
          ++p_;
          want = Want::Value;
          continue;
        }
        case Want::After: {
          if (depth == 0) {
            // A scalar runs up to a delimiter: "1x" or "truex" is not a value.
            if (p_ != end_ && !isSpace(*p_) && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ':')
              return simdjson::TAPE_ERROR;
            length = size_t(p_ - begin);
            return simdjson::SUCCESS;
          }
          skipSpace();
          if (p_ == end_) return simdjson::OUT_OF_BOUNDS;
          char inner = open[depth - 1];
          if (*p_ == ',') {
            ++p_;
            skipSpace();
            want = inner == '{' ? Want::Key : Want::Value;
          } else if (*p_ == (inner == '{' ? '}' : ']')) {
            ++p_;
            --depth;
          } else {
            return simdjson::TAPE_ERROR;
          }
          continue;
        }
      }
    }
  }

 private:
  void skipSpace() {
    while (p_ != end_ && isSpace(*p_)) ++p_;
  }

  // At '"'. Control characters must be escaped; \u escapes must name a code
  // point (a high surrogate only as the first half of a pair).
  simdjson::error_code string() {
    ++p_;
    for (;;) {
      skipPlain();
      if (p_ == end_) return simdjson::OUT_OF_BOUNDS;
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return simdjson::SUCCESS;
      }
      if (c < 0x20) return simdjson::UNESCAPED_CHARS;
      if (c != '\\') {
        ++p_;
        continue;
      }
      if (end_ - p_ < 2) return simdjson::OUT_OF_BOUNDS;
      switch (p_[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          p_ += 2;
          continue;
        case 'u': break;
        default: return simdjson::STRING_ERROR;
      }
      int cp = hex4(p_ + 2);
      if (cp < 0) return simdjson::STRING_ERROR;
      p_ += 6;
      if (cp >= 0xDC00 && cp <= 0xDFFF) return simdjson::STRING_ERROR;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') return simdjson::STRING_ERROR;
        int low = hex4(p_ + 2);
        if (low < 0xDC00 || low > 0xDFFF) return simdjson::STRING_ERROR;
        p_ += 6;
      }
    }
  }

  // Skips string bytes that need no look, eight at a time while none in the
  // eight needs one (most of a record's bytes are such), then one at a time.
  void skipPlain() {
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
    auto hasZeroByte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    while (end_ - p_ >= 8) {
      uint64_t v;
      std::memcpy(&v, p_, 8);
      uint64_t special = hasZeroByte(v ^ (kOnes * '"')) | hasZeroByte(v ^ (kOnes * '\\')) |
                         ((v - kOnes * 0x20) & ~v & kHigh);  // a byte below 0x20
      if (special) break;
      p_ += 8;
    }
    while (p_ != end_ && kPlain[static_cast<unsigned char>(*p_)]) ++p_;
  }

  // The four hex digits at `q`, or -1.
  int hex4(const char* q) const {
    if (end_ - q < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hexDigit(q[i]);
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }

  // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
  simdjson::error_code number() {
    const char* start = p_;
    bool exponent = false;
    if (*p_ == '-') ++p_;
    if (p_ == end_) return simdjson::NUMBER_ERROR;
    if (*p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return simdjson::NUMBER_ERROR;
    }
    const size_t integerDigits = size_t(p_ - start);
    bool fraction = false;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      fraction = true;
      if (!digits()) return simdjson::NUMBER_ERROR;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      exponent = true;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return simdjson::NUMBER_ERROR;
    }
    // Like simdjson, refuse a real number beyond a double's range (1e309):
    // consumers would read it as infinity, or not at all. Only an exponent or
    // over 308 integer digits can get there, so common numbers skip strtod.
    // (A long integer without either is valid JSON that is copied as it is.)
    if ((exponent || (fraction && integerDigits > 308)) &&
        std::isinf(std::strtod(std::string(start, p_).c_str(), nullptr)))
      return simdjson::NUMBER_ERROR;
    return simdjson::SUCCESS;
  }

  // At least one digit.
  bool digits() {
    const char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  simdjson::error_code literal(std::string_view word, simdjson::error_code bad) {
    if (size_t(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return bad;
    p_ += word.size();
    return simdjson::SUCCESS;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

simdjson::error_code scanValue(std::string_view text, size_t& length) {
  return Scanner(text.data(), text.data() + text.size()).value(length);
}

simdjson::error_code scannedSpan(od::value v, const char* docEnd, std::string_view& out) {
  const char* begin = v.raw_json_token().data();
  size_t length = 0;
  if (auto e = scanValue(std::string_view(begin, size_t(docEnd - begin)), length)) return e;
  // Inside an object or array something must follow: nothing does in a truncated document.
  const char* after = begin + length;
  while (after != docEnd && isSpace(*after)) ++after;
  if (after == docEnd) return simdjson::OUT_OF_BOUNDS;
  out = std::string_view(begin, length);
  return simdjson::SUCCESS;
}


simdjson::error_code validate(od::value v, int depth) {
  if (depth > kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  switch (t) {
    case od::json_type::object: {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return e;
      for (auto field : obj) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        od::value child;
        if (auto e = field.value().get(child)) return e;
        if (auto e = validate(child, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array arr;
      if (auto e = v.get_array().get(arr)) return e;
      for (auto element : arr) {
        od::value child;
        if (auto e = element.get(child)) return e;
        if (auto e = validate(child, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case od::json_type::number: {
      od::number n;
      return v.get_number().get(n);
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool isNull = false;
      if (auto e = v.is_null().get(isNull)) return e;
      return isNull ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

simdjson::error_code validatedSpan(od::document& doc, od::value v, std::string_view& out) {
  const char* begin = v.raw_json_token().data();
  if (auto e = validate(v)) return e;
  // After the walk the document stands on the token that follows the value.
  const char* end = nullptr;
  if (auto e = doc.current_location().get(end)) return e;
  out = trimRight(std::string_view(begin, size_t(end - begin)));
  return simdjson::SUCCESS;
}

std::string_view trimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

void reservePadding(std::string& s) {
  if (s.capacity() < s.size() + simdjson::SIMDJSON_PADDING) s.reserve(s.size() + simdjson::SIMDJSON_PADDING);
}

}  // namespace hdb::json
