// HarperDB 3 resume: after every (re)connection, each table with a checkpoint
// asks the `catchup` RPC for what it missed, while its live messages wait
// (Hdb3Source::onPublish holds them). The answer is delivered, then the held
// messages, then live, each transaction once. The rules, exactly, are in
// docs/harperdb3.md ("Resume"); the rest of the source is in hdb3_source.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "hdb3_source.h"

namespace hdb {

namespace {

using namespace std::chrono_literals;

// A catchup answer comes in one message; a long outage on a busy table makes it big.
constexpr auto kCatchupTimeout = 60s;
// The catchup window is measured on the server's clock and the checkpoint on
// ours: the window reaches this much further back.
constexpr std::chrono::milliseconds kClockSlack = 5s;
// Live copies of catch-up transactions may trail the answer; this far back
// from its newest transaction they are remembered and dropped.
constexpr double kSeamMillis = 10000;

double nowMillis() {
  using namespace std::chrono;
  return double(duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()) / 1000.0;
}

// Cursors compare as the numbers they are; equal text is an equal double.
double cursorValue(std::string_view text) { return std::strtod(std::string(text).c_str(), nullptr); }

}  // namespace

void Hdb3Source::onAllSubscribed() {
  stepTimer_.cancel();
  std::string names;
  for (const Channel& ch : channels_) names += (names.empty() ? "" : ", ") + ch.name;
  std::string lastProblem = client_.succeeded();
  if (!lastProblem.empty())
    spdlog::info("{}: subscribed again to {} (last problem: {})", name_, names, lastProblem);
  else
    spdlog::info("{}: subscribed to {} as user '{}'", name_, names, server_.username);
  bool catchingUp = false;
  for (Channel& ch : channels_) catchingUp |= startCatchup(ch);
  if (!catchingUp) return onCaughtUp();
  phase_ = Phase::CatchingUp;
  stepTimer_.start(kCatchupTimeout, [this] {
    abandon(fmt::format("no answer to the catchup request within {}", seconds(kCatchupTimeout)), false);
  });
}

bool Hdb3Source::startCatchup(Channel& ch) {
  ch.caughtUp.clear();
  ch.resuming = false;
  ch.verifyReach = false;
  const std::string& cursor = ch.checkpoint->cursor;
  double now = nowMillis();
  double window;
  if (!cursor.empty()) {
    ch.resumeValue = cursorValue(cursor);
    // A cursor with a fraction is a transaction's own timestamp, which the answer must
    // hold; a whole number is the time a subscription started (below), not a transaction.
    ch.verifyReach = cursor.find('.') != std::string::npos;
    window = now - ch.resumeValue + double(kClockSlack.count());
  } else if (ch.config->start == StartMode::History) {
    // First run: the last `history`. Its start becomes the checkpoint (a whole number,
    // like the live one below), so a drop before the answer asks for the same again.
    ch.resumeValue = std::floor(now - double(ch.config->history.count()));
    ch.checkpoint->set(fmt::format("{:.0f}", ch.resumeValue));
    window = now - ch.resumeValue;
  } else {
    // Live from now on: a drop before the first change resumes from here (on the
    // server's clock, which may lag ours by up to kClockSlack).
    ch.checkpoint->set(fmt::format("{:.0f}", std::floor(now - double(kClockSlack.count()))));
    return false;
  }
  ch.resuming = true;
  ch.catchupCid = nextCid_++;
  send(sc::catchup(ch.catchupCid, ch.name, std::max<int64_t>(int64_t(std::ceil(window)), kClockSlack.count())));
  return true;
}

void Hdb3Source::onCatchup(Channel& ch, const sc::Packet& p) {
  ch.catchupCid = 0;
  caught_.clear();
  size_t skipped = 0;
  std::string why;
  if (!p.error.empty()) {
    publishGap(ch, "catchup_failed",
               fmt::format("the server refused the catchup request ({}); changes since the checkpoint may be "
                           "missing", printable(p.error)));
  } else if (mapper_.mapCatchup(p.data, parser_.bufferEnd(), ch.config->primaryKey, ch.envelope, caught_, skipped,
                                why) != Hdb3TxnMapper::Outcome::Mapped) {
    ++stats_.malformed;
    caught_.clear();
    publishGap(ch, "catchup_failed",
               fmt::format("the catchup answer is unreadable ({}); changes since the checkpoint may be missing",
                           why));
  } else {
    if (skipped) {
      ++stats_.malformed;
      logMalformed(fmt::format("channel '{}': catch-up: {} transaction(s) dropped: {}", ch.name, skipped, why));
    }
    deliverCatchup(ch);
  }
  // What arrived live meanwhile, in order, without what the catch-up delivered.
  std::vector<Held> held = std::move(ch.held);
  ch.held.clear();
  ch.heldBytes = 0;
  for (Held& h : held) {
    std::string_view data(h.message.data() + h.dataOffset, h.dataSize);
    deliver(ch, data, h.message.data() + h.message.capacity(), h.message);
  }
  if (std::none_of(channels_.begin(), channels_.end(), [](const Channel& c) { return c.catchupCid != 0; }))
    onCaughtUp();
}

void Hdb3Source::deliverCatchup(Channel& ch) {
  std::vector<double> values;
  values.reserve(caught_.size());
  for (const Hdb3CaughtUp& c : caught_) values.push_back(cursorValue(c.timestamp));
  // The server answers in commit order; make sure, since the cursor relies on it.
  std::vector<size_t> order(caught_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  if (ch.verifyReach && std::none_of(values.begin(), values.end(), [&](double v) { return v <= ch.resumeValue; }))
    publishGap(ch, "history_expired",
               fmt::format("the server's catch-up does not reach back to the checkpoint {} (its transaction log "
                           "was purged, or its clock is more than {} ahead of ours); changes between the checkpoint "
                           "and {} may be lost",
                           ch.checkpoint->cursor, seconds(kClockSlack),
                           caught_.empty() ? std::string("now") : std::string(caught_[order.front()].timestamp)));
  double newest = values.empty() ? 0 : values[order.back()];
  size_t delivered = 0;
  for (size_t i : order) {
    const Hdb3CaughtUp& c = caught_[i];
    if (values[i] <= ch.resumeValue) {  // the checkpoint's own transaction, or older
      ++stats_.duplicates;
      continue;
    }
    if (values[i] >= newest - kSeamMillis) ch.caughtUp.push_back(values[i]);
    changes_.clear();
    for (size_t k = 0; k < c.lines.size(); ++k)
      changes_.push_back(Change{c.operation, c.lines[k], c.changes[k].record});
    if (!changes_.empty()) ch.route.publish(changes_, c.raw);
    stats_.records += c.lines.size();
    ++delivered;
    advance(ch, c.timestamp, c.lines.size());
  }
  std::sort(ch.caughtUp.begin(), ch.caughtUp.end());
  spdlog::info("{}: channel '{}' caught up: {} transaction(s) delivered, {} already delivered", name_, ch.name,
               delivered, caught_.size() - delivered);
  caught_.clear();
}

void Hdb3Source::onCaughtUp() {
  stepTimer_.cancel();
  client_.setState(State::Subscribed);
}

void Hdb3Source::publishGap(Channel& ch, std::string_view reason, const std::string& message) {
  ++stats_.gaps;
  spdlog::warn("{}: channel '{}': gap: {}", name_, ch.name, message);
  ch.route.publishNotice(ch.envelope.gap(reason, ch.checkpoint->cursor, message));
}

bool Hdb3Source::alreadyDelivered(const Channel& ch, std::string_view timestamp) const {
  if (!ch.resuming) return false;
  double ts = cursorValue(timestamp);
  return ts <= ch.resumeValue || std::binary_search(ch.caughtUp.begin(), ch.caughtUp.end(), ts);
}

void Hdb3Source::advance(Channel& ch, std::string_view ts, size_t lines) {
  ch.records += lines;
  ch.lastChange = std::chrono::system_clock::now();
  // The cursor only moves forward: a resume asks for everything after it.
  if (ch.checkpoint->cursor.empty() || cursorValue(ts) > cursorValue(ch.checkpoint->cursor)) ch.checkpoint->set(ts);
}

}  // namespace hdb
