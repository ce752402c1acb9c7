// The Prometheus text exposition format 0.0.4, written by hand: a family is a
// HELP and a TYPE line followed by its samples. Pure text, no lws, so the
// escaping rules have unit tests of their own.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace hdb {

class Exposition {
 public:
  using Label = std::pair<std::string_view, std::string_view>;
  enum class Type { Counter, Gauge };

  // Starts a family. `name` and label names must be valid metric names (the
  // caller's constants; checked by an assertion); help text is escaped.
  void family(std::string_view name, Type type, std::string_view help);
  // A sample of the current family. Counters get the family name with
  // `_total` already in it; label values are escaped.
  void sample(std::initializer_list<Label> labels, double value);
  void sample(std::initializer_list<Label> labels, uint64_t value);
  void sample(double value) { sample({}, value); }
  void sample(uint64_t value) { sample({}, value); }

  const std::string& text() const { return text_; }
  std::string take() { return std::move(text_); }

  static const char* kContentType;

 private:
  void begin(std::initializer_list<Label> labels);

  std::string text_;
  std::string family_;
};

// Label value escaping: backslash, double quote and line feed.
std::string escapeLabelValue(std::string_view value);
// HELP text escaping: backslash and line feed.
std::string escapeHelp(std::string_view text);
// A sample value: integers without exponent, NaN, +Inf and -Inf spelled as Prometheus does.
std::string formatValue(double value);
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);

}  // namespace hdb
