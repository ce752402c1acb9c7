#include "exposition.h"

#include <cassert>
#include <cmath>
#include <charconv>
#include <cstdio>

namespace hdb {

const char* Exposition::kContentType = "text/plain; version=0.0.4; charset=utf-8";

namespace {

bool nameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool nameChar(char c) { return nameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

bool validMetricName(std::string_view name) {
  if (name.empty() || !(nameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name)
    if (!nameChar(c) && c != ':') return false;
  return true;
}

bool validLabelName(std::string_view name) {
  if (name.empty() || !nameStart(name[0]) || name.starts_with("__")) return false;
  for (char c : name)
    if (!nameChar(c)) return false;
  return true;
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out.append("\\\\"); break;
      case '"': out.append("\\\""); break;
      case '\n': out.append("\\n"); break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string escapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Whole numbers below 2^53 print exactly, without an exponent; anything else
  // in the shortest form that reads back as the same double (a Unix time keeps
  // its milliseconds).
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return buf;
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

void Exposition::family(std::string_view name, Type type, std::string_view help) {
  assert(validMetricName(name));
  family_.assign(name);
  text_.append("# HELP ").append(name).append(" ").append(escapeHelp(help)).append("\n");
  text_.append("# TYPE ").append(name).append(type == Type::Counter ? " counter\n" : " gauge\n");
}

void Exposition::begin(std::initializer_list<Label> labels) {
  text_.append(family_);
  if (labels.size() == 0) return;
  text_.push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    assert(validLabelName(name));
    if (!first) text_.push_back(',');
    first = false;
    text_.append(name).append("=\"").append(escapeLabelValue(value)).append("\"");
  }
  text_.push_back('}');
}

void Exposition::sample(std::initializer_list<Label> labels, double value) {
  begin(labels);
  text_.append(" ").append(formatValue(value)).append("\n");
}

void Exposition::sample(std::initializer_list<Label> labels, uint64_t value) {
  begin(labels);
  text_.append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace hdb
