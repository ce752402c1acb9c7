// Fan-out: routes each table's changes to the sinks that want them, in each
// sink's format. Every variant of a change (envelope, record line, raw message
// line) is serialized at most once and shared, as one immutable string, by
// every sink and consumer that gets it.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sink.h"

namespace hdb {

// One record change, as a source hands it over.
struct Change {
  std::string_view op;      // "put", "delete", ...: what `ops:` filters on
  Line envelope;            // the envelope line; may be null when !route.wantsEnvelope()
  std::string_view record;  // the record's JSON text; empty when the change has none (delete)
};

class Fanout {
 public:
  Fanout() = default;
  ~Fanout();
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  // A table's precomputed list of sinks (routing by table is decided once, not
  // per change, and again when a reload changes the sinks). A cheap handle to
  // data the Fanout owns: valid as long as the Fanout.
  class Route {
   public:
    Route() = default;
    // The changes one upstream message carried, in order. `raw` is that
    // message exactly as received: a `format: raw` sink gets it once, as one
    // line, when it takes any of the changes. `raw` is copied only if such a
    // sink exists and only for the duration of the call need it stay valid.
    void publish(std::span<const Change> changes, std::string_view raw);
    void publish(const Change& change, std::string_view raw) { publish(std::span(&change, 1), raw); }
    // A line that is not a record change (a source's gap notice): every sink
    // of the route gets it as it is, whatever its format and `ops:`.
    void publishNotice(const Line& notice);
    // Transitional, for sources not yet handing over Change: the line goes out
    // as a notice (record and raw sinks get the envelope). Use publish(Change).
    void publish(const Line& line) { publishNotice(line); }

    // Whether any sink on the route wants envelopes / raw messages, for a
    // source that would have to build them specially.
    bool wantsEnvelope() const { return data_ && data_->wantsEnvelope; }
    bool wantsRaw() const { return data_ && data_->wantsRaw; }

   private:
    friend class Fanout;
    struct Data {
      std::string tableKey;
      std::vector<Sink*> sinks;
      bool wantsEnvelope = false;
      bool wantsRecord = false;
      bool wantsRaw = false;
      std::vector<char> rawTaken;  // per sink, during publish(): it takes this message
    };
    Route(Fanout* fanout, Data* data) : fanout_(fanout), data_(data) {}
    void take(Sink* sink, const Line& line);

    Fanout* fanout_ = nullptr;
    Data* data_ = nullptr;
  };

  // Sinks come and go (start, reload); every route follows at once.
  void add(std::unique_ptr<Sink> sink);
  // Takes a sink out of every route and lets go of its consumers and files
  // (Sink::retire); returns false when no sink has that name.
  bool remove(const std::string& name);
  // A sink's tables/ops/format changed in place (Sink::refilter): reroute.
  void rerouted() { rebuildRoutes(); }
  Sink* find(const std::string& name) const;
  Route routeFor(const std::string& tableKey);

  // Writes what every sink that received lines since the last call can take.
  void flush();
  // Stops every sink from taking consumers (shutdown).
  void close();
  // Feed lines are still queued in some sink.
  bool pending() const;
  // An ingest socket still owes a client an answer (in flight or unwritten).
  bool answering() const;
  const std::vector<std::unique_ptr<Sink>>& sinks() const { return sinks_; }
  // One log line per sink with its counters.
  void logStats() const;

 private:
  void rebuildRoutes();
  void fill(Route::Data& route) const;

  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<Sink*> dirty_;
  // One per table key ever asked for; stable addresses: Routes point here.
  std::map<std::string, std::unique_ptr<Route::Data>> routes_;
};

// `text` as one line: '\n' appended; CR and LF inside it (in valid JSON they
// can only be whitespace between tokens) become spaces.
Line oneLine(std::string_view text);

}  // namespace hdb
