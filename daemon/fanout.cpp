#include "fanout.h"

#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

namespace hdb {

Line oneLine(std::string_view text) {
  auto line = std::make_shared<std::string>();
  line->reserve(text.size() + 1);
  line->append(text);
  std::replace_if(line->begin(), line->end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  line->push_back('\n');
  return line;
}

Fanout::~Fanout() {
  // The final numbers: every consumer is closed by now.
  if (!sinks_.empty()) logStats();
}

void Fanout::add(std::unique_ptr<Sink> sink) { sinks_.push_back(std::move(sink)); }

Fanout::Route Fanout::routeFor(const std::string& tableKey) {
  Route route;
  route.fanout_ = this;
  for (auto& sink : sinks_) {
    if (!sink->filter().takesTable(tableKey)) continue;
    route.sinks_.push_back(sink.get());
    route.wantsEnvelope_ |= sink->format() == SinkFormat::Envelope;
    route.wantsRecord_ |= sink->format() == SinkFormat::Record;
    route.wantsRaw_ |= sink->format() == SinkFormat::Raw;
  }
  return route;
}

void Fanout::Route::take(Sink* sink, const Line& line) {
  sink->take(line);
  auto& dirty = fanout_->dirty_;
  if (std::find(dirty.begin(), dirty.end(), sink) == dirty.end()) dirty.push_back(sink);
}

void Fanout::Route::publish(std::span<const Change> changes, std::string_view raw) {
  // Raw sinks get the message once, after deciding over all its changes.
  if (wantsRaw_) rawTaken_.assign(sinks_.size(), 0);
  for (const Change& change : changes) {
    Line record;  // built on first use, then shared
    for (size_t i = 0; i < sinks_.size(); ++i) {
      Sink* sink = sinks_[i];
      if (!sink->filter().takesOp(change.op)) continue;
      switch (sink->format()) {
        case SinkFormat::Envelope:
          if (change.envelope) take(sink, change.envelope);
          break;
        case SinkFormat::Record:
          // A change without a record (a delete) has nothing to write here.
          if (change.record.empty()) break;
          if (!record) record = oneLine(change.record);
          take(sink, record);
          break;
        case SinkFormat::Raw:
          rawTaken_[i] = 1;
          break;
      }
    }
  }
  if (!wantsRaw_ || raw.empty()) return;
  Line rawLine;
  for (size_t i = 0; i < sinks_.size(); ++i) {
    if (!rawTaken_[i]) continue;
    if (!rawLine) rawLine = oneLine(raw);
    take(sinks_[i], rawLine);
  }
}

void Fanout::Route::publishNotice(const Line& notice) {
  for (Sink* sink : sinks_) take(sink, notice);
}

void Fanout::flush() {
  for (Sink* sink : dirty_) sink->flush();
  dirty_.clear();
}

void Fanout::close() {
  for (auto& sink : sinks_) sink->close();
}

bool Fanout::pending() const {
  return std::any_of(sinks_.begin(), sinks_.end(), [](const auto& s) { return s->pending(); });
}

void Fanout::logStats() const {
  for (const auto& sink : sinks_) {
    const SinkStats& s = sink->stats();
    spdlog::info("sink '{}': {} lines ({} bytes) taken, {} bytes written; dropped: {} disconnect, {} drop_oldest, "
                 "{} drop_newest, {} reader_gone; {} gap lines; consumers: {} accepted, {} cut off, {} rejected",
                 sink->config().name, s.lines, s.bytes, s.queue.bytesWritten, s.droppedDisconnect,
                 s.queue.droppedOldest, s.queue.droppedNewest, s.droppedReaderGone, s.queue.gapLines,
                 s.consumersAccepted, s.consumersCut, s.consumersRejected);
  }
}

}  // namespace hdb
