#include "hdb3_write_match.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "json_util.h"

namespace hdb {

namespace {

namespace od = simdjson::ondemand;

constexpr size_t kKeyless = SIZE_MAX;

// The raw text of a key value, or empty when it is not a string or a number.
std::string_view keyToken(od::value v) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS || (t != od::json_type::string && t != od::json_type::number)) return {};
  return json::trimRight(v.raw_json_token());
}

void appendList(std::string& out, const char* name, const std::vector<std::string_view>& items) {
  out.append(",\"").append(name).append("\":[");
  for (size_t i = 0; i < items.size(); ++i) out.append(i ? "," : "").append(items[i]);
  out.append("]");
}

}  // namespace

std::string canonicalKey(std::string_view raw) {
  raw = json::trimRight(raw);
  if (raw.empty()) return {};
  if (raw.front() == '"') {
    if (raw.size() >= 2 && raw.back() == '"' && raw.find('\\') == std::string_view::npos)
      return std::string("s:").append(raw.substr(1, raw.size() - 2));
    // Escapes: let the parser decode them.
    thread_local od::parser parser;
    simdjson::padded_string padded(raw);
    od::document doc;
    std::string_view s;
    if (parser.iterate(padded).get(doc) || doc.get_string().get(s)) return {};
    return std::string("s:").append(s);
  }
  std::string text(raw);
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return {};
  return fmt::format("n:{}", d);
}

bool Hdb3WriteMatcher::add(uint64_t token, WriteOp op, std::string_view items, std::string_view primaryKey,
                           std::string& why) {
  Pending p{token, writeOpName(op), {}, 0};
  simdjson::padded_string padded(items);
  od::document doc;
  od::array arr;
  if (auto e = parser_.iterate(padded).get(doc)) return why = std::string("unreadable items: ") + simdjson::error_message(e), false;
  if (auto e = doc.get_array().get(arr)) return why = std::string("items are not an array: ") + simdjson::error_message(e), false;
  for (auto element : arr) {
    od::value v;
    if (auto e = element.get(v)) return why = std::string("bad item: ") + simdjson::error_message(e), false;
    std::string_view raw;
    if (op == WriteOp::Delete) {
      raw = keyToken(v);
      if (raw.empty()) return why = "an id is not a string or a number", false;
    } else {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return why = std::string("a record is not an object: ") + simdjson::error_message(e), false;
      od::value key;
      auto found = obj.find_field_unordered(primaryKey).get(key);
      if (found == simdjson::SUCCESS) raw = keyToken(key);
      else if (found != simdjson::NO_SUCH_FIELD) return why = std::string("bad record: ") + simdjson::error_message(found), false;
    }
    std::string canonical = raw.empty() ? std::string() : canonicalKey(raw);
    if (canonical.empty()) {
      ++p.keyless;
      continue;
    }
    p.keys.push_back(Key{std::move(canonical), std::string(raw)});
  }
  pending_.push_back(std::move(p));
  return true;
}

bool Hdb3WriteMatcher::fits(const Pending& p, const std::vector<std::string>& echoed,
                            std::vector<size_t>& taken) const {
  taken.clear();
  std::vector<bool> used(p.keys.size(), false);
  size_t keyless = p.keyless;
  for (const std::string& k : echoed) {
    size_t i = 0;
    while (i < p.keys.size() && (used[i] || p.keys[i].canonical != k)) ++i;
    if (i < p.keys.size()) {
      used[i] = true;
      taken.push_back(i);
    } else if (keyless > 0 && !k.empty()) {
      // HarperDB gave a record without a key one of its own (a UUID).
      --keyless;
      taken.push_back(kKeyless);
    } else {
      return false;
    }
  }
  return !echoed.empty();
}

std::optional<Hdb3WriteMatcher::Confirmation> Hdb3WriteMatcher::match(const Hdb3Transaction& txn) {
  std::vector<std::string> echoed;
  echoed.reserve(txn.changes.size());
  for (const Hdb3Change& c : txn.changes) echoed.push_back(canonicalKey(c.id));
  std::vector<size_t> taken;
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
    return p.operation == txn.operation && fits(p, echoed, taken);
  });
  if (it == pending_.end()) return std::nullopt;

  Confirmation c{it->token, {}};
  std::vector<std::string_view> written, skipped;
  for (const Hdb3Change& ch : txn.changes) written.push_back(ch.id);
  for (size_t i = 0; i < it->keys.size(); ++i)
    if (std::find(taken.begin(), taken.end(), i) == taken.end()) skipped.push_back(it->keys[i].raw);
  c.fields.append("\"confirmed_at\":").append(txn.timestamp);
  if (!txn.txn.empty()) c.fields.append(",\"txn\":").append(txn.txn);
  appendList(c.fields, "written", written);
  appendList(c.fields, "skipped", skipped);
  pending_.erase(it);
  return c;
}

void Hdb3WriteMatcher::remove(uint64_t token) {
  std::erase_if(pending_, [&](const Pending& p) { return p.token == token; });
}

}  // namespace hdb
