// The connection lifecycle both sources share: the state machine, the name
// look-up off the loop, the retry timer with its backoff, and the "first
// occurrence at its level, repeats at debug" logging of problems. What is said
// on the connection (and how it is closed politely) stays in each source.
//
//   Idle -> Connecting -> Open -> Subscribed
//   a drop in any of these -> Waiting (the retry timer) -> Connecting ...
//   shutdown(): Open/Subscribed -> Closing -> Stopped; anything else -> Stopped
#pragma once

#include <libwebsockets.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "backoff.h"
#include "event_loop.h"

namespace hdb {

class ReconnectingClient {
 public:
  enum class State { Idle, Connecting, Open, Subscribed, Waiting, Closing, Stopped };

  // `name` prefixes log lines. `open(address, error)` starts a connection to
  // the resolved address, or reports `error` when the look-up failed;
  // `onStateChange` runs after every state change.
  using Open = std::function<void(const std::string& address, const std::string& error)>;
  ReconnectingClient(EventLoop& loop, const std::string& name, std::string host, Open open,
                     std::function<void()> onStateChange);
  ~ReconnectingClient();
  ReconnectingClient(const ReconnectingClient&) = delete;
  ReconnectingClient& operator=(const ReconnectingClient&) = delete;

  State state() const { return state_; }
  void setState(State s);

  // Resolves the host off the loop, then calls open().
  void connect();
  // The connection is up and serving: the next problem starts the backoff
  // afresh. Returns the last problem logged (empty if none) and forgets it.
  // The caller then sets State::Subscribed.
  std::string succeeded();
  // The connection is gone. Returns true when that was the end (shutting
  // down: the state is now Stopped); otherwise the caller reports the problem
  // with retryLater().
  bool finished();
  // Logs `problem` (once at warn, or err when `refused`; repeats at debug) and
  // connects again after a backoff delay (a long one when `refused`).
  void retryLater(const std::string& problem, bool refused);
  // Stops reconnecting. Returns true when a connection is open: the caller
  // closes it politely (the state is Closing). A connection still being set
  // up (`wsi`, may be null) is killed.
  bool shutdown(lws* wsi);

 private:
  EventLoop& loop_;
  const std::string& name_;
  std::string host_;
  Open open_;
  std::function<void()> onStateChange_;
  State state_ = State::Idle;
  uint64_t resolveTicket_ = 0;  // a name look-up in flight (Resolver)
  std::string lastProblem_;     // suppresses repeating the same log line
  Backoff backoff_;
  Timer retryTimer_;
};

// A duration for a log line: "2.5 s".
std::string seconds(std::chrono::milliseconds d);
// Text from the network, made safe for one log line (at most `max` bytes of it).
std::string printable(std::string_view s, size_t max = 200);

}  // namespace hdb
