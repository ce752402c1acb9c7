// Fan-out: routes each table's envelope lines to the sinks that want them.
// A line is one shared, immutable string whatever the number of consumers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sink.h"

namespace hdb {

class Fanout {
 public:
  // A table's precomputed list of sinks (routing is decided once, not per line).
  class Route {
   public:
    void publish(const Line& line);

   private:
    friend class Fanout;
    Fanout* fanout_ = nullptr;
    std::vector<Sink*> sinks_;
  };

  void add(std::unique_ptr<Sink> sink);
  Route routeFor(const std::string& tableKey);

  // Writes what every sink that received lines since the last call can take.
  void flush();
  // Stops every sink from taking consumers (shutdown).
  void close();
  bool pending() const;
  const std::vector<std::unique_ptr<Sink>>& sinks() const { return sinks_; }

 private:
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<Sink*> dirty_;
};

}  // namespace hdb
