#include "hdb4_frame.h"

#include "json_util.h"

namespace hdb {
namespace {

namespace od = simdjson::ondemand;

using json::trimRight;

bool isOpName(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
  return true;
}

// Known op names as static strings, so the change does not point into the parser's
// string buffer (which the next parse overwrites).
std::string_view internOp(std::string_view s) {
  static constexpr std::string_view kKnown[] = {"put", "delete", "message", "invalidate", "relocate"};
  for (auto k : kKnown)
    if (k == s) return k;
  return {};
}

}  // namespace

void reservePadding(std::string& s) { json::reservePadding(s); }

bool Hdb4FrameParser::parse(const std::string& message, Hdb4Change& out, std::string& error) {
  out = Hdb4Change{};
  if (message.capacity() < message.size() + simdjson::SIMDJSON_PADDING) {
    error = "internal: message buffer without padding";
    return false;
  }
  auto fail = [&](const char* what, simdjson::error_code e) {
    error = what;
    if (e != simdjson::SUCCESS) {
      error += ": ";
      error += simdjson::error_message(e);
    }
    return false;
  };

  od::document doc;
  simdjson::padded_string_view input(message.data(), message.size(), message.capacity());
  if (auto e = parser_.iterate(input).get(doc)) return fail("not JSON", e);
  od::object obj;
  if (auto e = doc.get_object().get(obj)) return fail("not a JSON object", e);
  const char* docEnd = message.data() + message.size();

  std::string_view typeText;
  bool haveType = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return fail("bad key", e);
    od::value v;
    if (auto e = field.value().get(v)) return fail("bad value", e);

    if (key == "type") {
      if (auto e = v.get_string().get(typeText)) return fail("\"type\" is not a string", e);
      haveType = true;
    } else if (key == "id") {
      od::json_type t;
      if (auto e = v.type().get(t)) return fail("bad \"id\"", e);
      if (t != od::json_type::number && t != od::json_type::string)
        return fail("\"id\" is neither a number nor a string", simdjson::SUCCESS);
      if (auto e = json::scannedSpan(v, docEnd, out.id))
        return fail(e == simdjson::OUT_OF_BOUNDS ? "truncated frame" : "bad \"id\"", e);
    } else if (key == "localTime" || key == "version") {
      std::string_view tok = trimRight(v.raw_json_token());
      double d;
      if (auto e = v.get_double().get(d)) return fail(key == "version" ? "bad \"version\"" : "bad \"localTime\"", e);
      (key == "version" ? out.version : out.localTime) = tok;
    } else if (key == "value") {
      od::json_type t;
      if (auto e = v.type().get(t)) return fail("bad \"value\"", e);
      if (t == od::json_type::null) continue;  // treated as absent
      if (t != od::json_type::object) return fail("\"value\" is not an object", simdjson::SUCCESS);
      // One pass over the value's text checks all of it (the on-demand parser
      // only checks what is read through it); OUT_OF_BOUNDS: the frame ends in it.
      if (auto e = json::scannedSpan(v, docEnd, out.value))
        return fail(e == simdjson::OUT_OF_BOUNDS ? "truncated frame" : "bad \"value\"", e);
    } else if (key == "size") {
      out.hasSize = true;
    }
    // Other fields (history frames carry encoded, tableId, nodeId, ...) are ignored.
  }
  // At the end of the document there is no current location; anything else is
  // text after the closing brace.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS)
    return fail("trailing content after the frame", simdjson::SUCCESS);

  if (!haveType) return fail("missing \"type\"", simdjson::SUCCESS);
  if (!isOpName(typeText)) return fail("unexpected \"type\" value", simdjson::SUCCESS);
  out.type = internOp(typeText);
  if (out.type.empty()) return fail("unknown \"type\" value", simdjson::SUCCESS);
  if (out.id.empty()) return fail("missing \"id\"", simdjson::SUCCESS);
  if (out.localTime.empty()) return fail("missing \"localTime\"", simdjson::SUCCESS);
  if (out.version.empty()) return fail("missing \"version\"", simdjson::SUCCESS);
  if (out.type == "put" && out.value.empty()) return fail("\"put\" without \"value\"", simdjson::SUCCESS);
  return true;
}

}  // namespace hdb
