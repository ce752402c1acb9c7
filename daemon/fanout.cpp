#include "fanout.h"

#include <algorithm>

namespace hdb {

bool Sink::wants(const std::string& tableKey) const {
  return config_.tables.empty() ||
         std::find(config_.tables.begin(), config_.tables.end(), tableKey) != config_.tables.end();
}

void Fanout::add(std::unique_ptr<Sink> sink) { sinks_.push_back(std::move(sink)); }

Fanout::Route Fanout::routeFor(const std::string& tableKey) {
  Route route;
  route.fanout_ = this;
  for (auto& sink : sinks_)
    if (sink->wants(tableKey)) route.sinks_.push_back(sink.get());
  return route;
}

void Fanout::Route::publish(const Line& line) {
  for (Sink* sink : sinks_) {
    sink->deliver(line);
    auto& dirty = fanout_->dirty_;
    if (std::find(dirty.begin(), dirty.end(), sink) == dirty.end()) dirty.push_back(sink);
  }
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

}  // namespace hdb
