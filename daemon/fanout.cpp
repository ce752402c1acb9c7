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

void Fanout::add(std::unique_ptr<Sink> sink) {
  sinks_.push_back(std::move(sink));
  rebuildRoutes();
}

bool Fanout::remove(const std::string& name) {
  auto it = std::find_if(sinks_.begin(), sinks_.end(), [&](const auto& s) { return s->config().name == name; });
  if (it == sinks_.end()) return false;
  std::unique_ptr<Sink> sink = std::move(*it);
  sinks_.erase(it);
  std::erase(dirty_, sink.get());
  rebuildRoutes();
  sink->retire();
  return true;
}

Sink* Fanout::find(const std::string& name) const {
  for (const auto& sink : sinks_)
    if (sink->config().name == name) return sink.get();
  return nullptr;
}

Fanout::Route Fanout::routeFor(const std::string& tableKey) {
  auto& data = routes_[tableKey];
  if (!data) {
    data = std::make_unique<Route::Data>();
    data->tableKey = tableKey;
    fill(*data);
  }
  return Route(this, data.get());
}

void Fanout::rebuildRoutes() {
  for (auto& [key, data] : routes_) fill(*data);
}

void Fanout::fill(Route::Data& route) const {
  route.sinks.clear();
  route.wantsEnvelope = route.wantsRecord = route.wantsRaw = false;
  for (const auto& sink : sinks_) {
    if (!sink->takesFeed() || !sink->filter().takesTable(route.tableKey)) continue;
    route.sinks.push_back(sink.get());
    route.wantsEnvelope |= sink->format() == SinkFormat::Envelope;
    route.wantsRecord |= sink->format() == SinkFormat::Record;
    route.wantsRaw |= sink->format() == SinkFormat::Raw;
  }
}

void Fanout::Route::take(Sink* sink, const Line& line) {
  sink->take(line);
  auto& dirty = fanout_->dirty_;
  if (std::find(dirty.begin(), dirty.end(), sink) == dirty.end()) dirty.push_back(sink);
}

void Fanout::Route::publish(std::span<const Change> changes, std::string_view raw) {
  if (!data_) return;
  const std::vector<Sink*>& sinks = data_->sinks;
  std::vector<char>& rawTaken = data_->rawTaken;
  // Raw sinks get the message once, after deciding over all its changes.
  if (data_->wantsRaw) rawTaken.assign(sinks.size(), 0);
  for (const Change& change : changes) {
    Line record;  // built on first use, then shared
    for (size_t i = 0; i < sinks.size(); ++i) {
      Sink* sink = sinks[i];
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
          rawTaken[i] = 1;
          break;
      }
    }
  }
  if (!data_->wantsRaw || raw.empty()) return;
  Line rawLine;
  for (size_t i = 0; i < sinks.size(); ++i) {
    if (!rawTaken[i]) continue;
    if (!rawLine) rawLine = oneLine(raw);
    take(sinks[i], rawLine);
  }
}

void Fanout::Route::publishNotice(const Line& notice) {
  if (!data_) return;
  for (Sink* sink : data_->sinks) take(sink, notice);
}

void Fanout::flush() {
  for (Sink* sink : dirty_) sink->flush();
  dirty_.clear();
  // Sinks outside the feed (ingest sockets) have answers of their own.
  for (const auto& sink : sinks_)
    if (!sink->takesFeed()) sink->flush();
}

void Fanout::close() {
  for (auto& sink : sinks_) sink->close();
}

bool Fanout::pending() const {
  return std::any_of(sinks_.begin(), sinks_.end(), [](const auto& s) { return s->takesFeed() && s->pending(); });
}

bool Fanout::answering() const {
  return std::any_of(sinks_.begin(), sinks_.end(), [](const auto& s) { return !s->takesFeed() && s->pending(); });
}

void Fanout::logStats() const {
  for (const auto& sink : sinks_) {
    const SinkStats& s = sink->stats();
    if (!sink->takesFeed()) {
      const IngestStats& i = s.ingest;
      spdlog::info("sink '{}': {} commands: {} ok, {} failed, {} malformed, {} refused, {} dropped (client gone), "
                   "{} in flight; {} bytes of answers written; clients: {} accepted, {} rejected",
                   sink->config().name, i.commands, i.ok, i.failed, i.malformed, i.refused, i.dropped, i.inFlight,
                   s.queue.bytesWritten, s.consumersAccepted, s.consumersRejected);
      continue;
    }
    spdlog::info("sink '{}': {} lines ({} bytes) taken, {} bytes written; dropped: {} disconnect, {} drop_oldest, "
                 "{} drop_newest, {} reader_gone; {} gap lines; consumers: {} accepted, {} cut off, {} rejected",
                 sink->config().name, s.lines, s.bytes, s.queue.bytesWritten, s.droppedDisconnect,
                 s.queue.droppedOldest, s.queue.droppedNewest, s.droppedReaderGone, s.queue.gapLines,
                 s.consumersAccepted, s.consumersCut, s.consumersRejected);
  }
}

}  // namespace hdb
