#include "hdb4_writer.h"

#include <simdjson.h>

#include "envelope.h"
#include "install_component.h"
#include "json_util.h"

namespace hdb {

namespace {

constexpr size_t kMaxQuotedError = 300;

// What a person reads when HarperDB said no: its own "error" (or "message")
// text when the body has one, else the start of the body.
std::string serverMessage(const std::string& body) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (!parser.iterate(padded).get(doc) && !doc.get_object().get(object)) {
    for (auto field : object) {
      std::string_view key, text;
      if (field.unescaped_key().get(key)) break;
      if ((key == "error" || key == "message") && !field.value().get_string().get(text))
        return std::string(text.substr(0, kMaxQuotedError));
    }
  }
  return body.substr(0, kMaxQuotedError);
}

// The answer object's array `key`, as raw JSON.
bool rawArray(simdjson::ondemand::object& object, std::string_view key, std::string& out) {
  simdjson::ondemand::value value;
  if (object.find_field_unordered(key).get(value)) return false;
  simdjson::ondemand::array array;
  if (value.get_array().get(array)) return false;
  std::string_view raw;
  if (array.raw_json().get(raw)) return false;
  out.assign(json::trimRight(raw));
  return true;
}

}  // namespace

std::string hdb4WriteBody(const WriteCommand& command) {
  std::string body;
  body.reserve(command.items.size() + command.database.size() + command.table.size() + 64);
  body.append("{\"operation\":\"").append(writeOpName(command.op)).append("\",\"database\":");
  appendJsonString(body, command.database);
  body.append(",\"table\":");
  appendJsonString(body, command.table);
  body.append(command.op == WriteOp::Delete ? ",\"ids\":" : ",\"records\":");
  body.append(command.items).append("}");
  return body;
}

WriteResult hdb4WriteResult(const HttpResult& response) {
  WriteResult result;
  if (response.status == 0) {
    result.error = "no answer from HarperDB 4's operations API (" + response.error + "); " +
                   (response.sent ? "the write may or may not have been applied" : "nothing was written");
    return result;
  }
  if (response.status != 200) {
    result.error = "HarperDB 4 answered " + std::to_string(response.status) + ": " + serverMessage(response.body);
    return result;
  }
  simdjson::padded_string padded(response.body);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(object)) {
    result.error = "HarperDB 4 answered 200 with a body that is not a JSON object; the write may have been applied";
    return result;
  }
  // inserted_hashes, update_hashes, upserted_hashes, deleted_hashes: whichever
  // the operation has; skipped_hashes: records HarperDB left alone (an insert
  // of an existing id, an update or delete of a missing one).
  std::string written, skipped;
  for (const char* key : {"inserted_hashes", "update_hashes", "upserted_hashes", "deleted_hashes"})
    if (rawArray(object, key, written)) break;
  rawArray(object, "skipped_hashes", skipped);
  result.ok = true;
  if (!written.empty()) result.fields.append("\"written\":").append(written);
  if (!skipped.empty()) result.fields.append(result.fields.empty() ? "" : ",").append("\"skipped\":").append(skipped);
  return result;
}

Hdb4Writer::Hdb4Writer(EventLoop& loop, const ServerConfig& server, const TableConfig& table)
    : loop_(loop), server_(server), table_(table), url_(operationsUrl(server)) {}

Hdb4Writer::~Hdb4Writer() {
  *alive_ = false;
  // Requests already sent finish on their own; their answers now go nowhere.
  for (auto& [id, done] : inFlight_)
    done({false, "table " + table_.key() + " was reconfigured or the bridge is stopping before HarperDB answered; "
                 "the write may or may not have been applied", {}});
  for (auto& waiting : waiting_)
    waiting.done({false, "table " + table_.key() + " was reconfigured or the bridge is stopping; nothing was written",
                  {}});
}

void Hdb4Writer::submit(WriteCommand command, WriteDone done) {
  waiting_.push_back({std::move(command), std::move(done)});
  pump();
}

void Hdb4Writer::pump() {
  while (!waiting_.empty() && inFlight_.size() < kMaxConcurrent) {
    Waiting next = std::move(waiting_.front());
    waiting_.pop_front();
    send(std::move(next));
  }
}

void Hdb4Writer::send(Waiting waiting) {
  uint64_t id = nextId_++;
  inFlight_.emplace(id, std::move(waiting.done));
  std::weak_ptr<bool> alive = alive_;
  // post() never answers from inside itself, so submit() never does either.
  HttpRequest::post(
      loop_, server_, url_, hdb4WriteBody(waiting.command),
      [this, alive, id](const HttpResult& response) {
        if (auto a = alive.lock(); a && *a) answered(id, response);
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(server_.writeTimeout));
}

void Hdb4Writer::answered(uint64_t id, const HttpResult& response) {
  auto it = inFlight_.find(id);
  if (it == inFlight_.end()) return;
  WriteDone done = std::move(it->second);
  inFlight_.erase(it);
  done(hdb4WriteResult(response));
  pump();
}

}  // namespace hdb
