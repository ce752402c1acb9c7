#include "hdb3_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "sc_codec.h"

namespace hdb {

namespace {

WriteResult failure(std::string error) {
  WriteResult r;
  r.ok = false;
  r.error = std::move(error);
  return r;
}

}  // namespace

Hdb3Writer::Hdb3Writer(EventLoop& loop, std::string server, const TableConfig& table,
                       std::chrono::milliseconds timeout, Link link)
    : loop_(loop),
      server_(std::move(server)),
      table_(table),
      channel_(table.database + ":" + table.table),
      timeout_(timeout),
      link_(std::move(link)),
      answerTimer_(loop),
      deadlineTimer_(loop) {}

Hdb3Writer::~Hdb3Writer() {
  closing_ = true;
  deadlineTimer_.cancel();
  failAll(fmt::format("the bridge stopped or reloaded before HarperDB 3 confirmed the write on server '{}'; it may "
                      "or may not have been applied",
                      server_));
  // An answer may make its client submit the next command, which is queued (closing_):
  // answer until nothing is left, in a loop rather than recursively.
  while (!answers_.empty()) answerQueued();
  answerTimer_.cancel();
}

void Hdb3Writer::submit(WriteCommand command, WriteDone done) {
  if (closing_)
    return answerSoon(std::move(done), failure("the bridge is stopping or reloading; nothing was written"));
  if (!link_.ready())
    return answerSoon(std::move(done),
                      failure(fmt::format("server '{}' is not connected; nothing was written", server_)));
  if (pending_.size() >= kHdb3MaxPendingWrites)
    return answerSoon(std::move(done),
                      failure(fmt::format("too many writes in flight to {}.{} ({} waiting for HarperDB 3 to confirm "
                                          "them); nothing was written",
                                          table_.database, table_.table, pending_.size())));
  uint64_t token = nextToken_++;
  std::string why;
  if (!matcher_.add(token, command.op, command.items, table_.primaryKey, why))
    return answerSoon(std::move(done), failure("could not read the command's items (" + why + "); nothing was written"));
  pending_.push_back(Pending{token, std::move(done), std::chrono::steady_clock::now() + timeout_});
  link_.send(sc::publishTransaction(channel_, table_.database, table_.table, writeOpName(command.op),
                                    command.op == WriteOp::Delete ? "hash_values" : "records", command.items));
  if (!deadlineTimer_.pending()) armDeadline();
}

void Hdb3Writer::onTransaction(const Hdb3Transaction& txn) {
  if (pending_.empty()) return;
  auto confirmed = matcher_.match(txn);
  if (!confirmed) return;
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const Pending& p) { return p.token == confirmed->token; });
  if (it == pending_.end()) return;  // cannot happen: the matcher holds only pending tokens
  WriteDone done = std::move(it->done);
  pending_.erase(it);
  WriteResult r;
  r.ok = true;
  r.fields = std::move(confirmed->fields);
  // Runs from the receive callback, never from inside submit().
  done(std::move(r));
}

void Hdb3Writer::connectionLost(bool stopping) {
  if (pending_.empty()) return;
  spdlog::warn("server '{}': table {}.{}: connection {} with {} write(s) waiting for confirmation", server_,
               table_.database, table_.table, stopping ? "closed" : "lost", pending_.size());
  failAll(stopping ? fmt::format("the bridge stopped before HarperDB 3 confirmed the write on server '{}'; it may or "
                                 "may not have been applied",
                                 server_)
                   : fmt::format("the connection to server '{}' was lost before HarperDB 3 confirmed the write; it "
                                 "may or may not have been applied",
                                 server_));
}

void Hdb3Writer::failAll(const std::string& error) {
  deadlineTimer_.cancel();
  std::deque<Pending> pending = std::move(pending_);
  pending_.clear();
  for (Pending& p : pending) {
    matcher_.remove(p.token);
    p.done(failure(error));
  }
}

void Hdb3Writer::answerSoon(WriteDone done, WriteResult result) {
  answers_.emplace_back(std::move(done), std::move(result));
  if (!closing_ && !answerTimer_.pending()) answerTimer_.start(std::chrono::microseconds(0), [this] { answerQueued(); });
}

void Hdb3Writer::answerQueued() {
  // An answer may submit the client's next command, which may queue another answer.
  auto answers = std::move(answers_);
  answers_.clear();
  for (auto& [done, result] : answers) done(std::move(result));
}

void Hdb3Writer::armDeadline() {
  if (pending_.empty()) return;
  auto wait = pending_.front().deadline - std::chrono::steady_clock::now();
  deadlineTimer_.start(std::max(std::chrono::duration_cast<std::chrono::microseconds>(wait),
                                std::chrono::microseconds(0)),
                       [this] { expire(); });
}

void Hdb3Writer::expire() {
  auto now = std::chrono::steady_clock::now();
  std::vector<WriteDone> late;
  while (!pending_.empty() && pending_.front().deadline <= now) {
    matcher_.remove(pending_.front().token);
    late.push_back(std::move(pending_.front().done));
    pending_.pop_front();
  }
  armDeadline();
  double seconds = std::chrono::duration<double>(timeout_).count();
  if (!late.empty())
    spdlog::debug("server '{}': table {}.{}: {} write(s) not confirmed within {:g} s", server_, table_.database,
                  table_.table, late.size(), seconds);
  for (WriteDone& done : late)
    done(failure(fmt::format("not confirmed within {:g} s (write_timeout); HarperDB 3 may or may not have applied "
                             "it (it publishes nothing for a write that changes nothing: an insert of existing ids, "
                             "an update or delete of missing ones)",
                             seconds)));
}

}  // namespace hdb
