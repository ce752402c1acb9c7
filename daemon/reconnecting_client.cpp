#include "reconnecting_client.h"

#include <spdlog/spdlog.h>

namespace hdb {

std::string seconds(std::chrono::milliseconds d) { return fmt::format("{:.1f} s", double(d.count()) / 1000.0); }

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > max) out += "...";
  return out;
}

ReconnectingClient::ReconnectingClient(EventLoop& loop, const std::string& name, std::string host, Open open,
                                       std::function<void()> onStateChange)
    : loop_(loop),
      name_(name),
      host_(std::move(host)),
      open_(std::move(open)),
      onStateChange_(std::move(onStateChange)),
      retryTimer_(loop) {}

ReconnectingClient::~ReconnectingClient() {
  loop_.resolver().cancel(resolveTicket_);
  retryTimer_.cancel();
}

void ReconnectingClient::setState(State s) {
  if (state_ == s) return;
  state_ = s;
  if (onStateChange_) onStateChange_();
}

void ReconnectingClient::connect() {
  setState(State::Connecting);
  // lws would resolve the name itself, blocking the loop; the resolver does it
  // off the loop and calls back here.
  resolveTicket_ = loop_.resolver().resolve(host_, [this](const std::string& address, const std::string& error) {
    resolveTicket_ = 0;
    if (state_ != State::Connecting) return;
    open_(address, error);
  });
}

std::string ReconnectingClient::succeeded() {
  backoff_.reset();
  return std::exchange(lastProblem_, std::string());
}

bool ReconnectingClient::finished() {
  if (state_ != State::Closing && state_ != State::Stopped && !loop_.closing()) return false;
  setState(State::Stopped);
  return true;
}

void ReconnectingClient::retryLater(const std::string& problem, bool refused) {
  auto delay = backoff_.next(refused ? kAuthFailureBackoff : kReconnectBackoff);
  // The first occurrence of a problem is logged at its level; repeats go to debug.
  bool repeat = problem == lastProblem_;
  auto level = repeat ? spdlog::level::debug : (refused ? spdlog::level::err : spdlog::level::warn);
  spdlog::log(level, "{}: {}; retrying in {}", name_, problem, seconds(delay));
  lastProblem_ = problem;
  setState(State::Waiting);
  retryTimer_.start(delay, [this] { connect(); });
}

bool ReconnectingClient::shutdown(lws* wsi) {
  loop_.resolver().cancel(resolveTicket_);
  resolveTicket_ = 0;
  retryTimer_.cancel();
  switch (state_) {
    case State::Open:
    case State::Subscribed:
      setState(State::Closing);
      return true;
    case State::Connecting:
      setState(State::Closing);
      if (wsi) lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
      else setState(State::Stopped);
      return false;
    case State::Closing:
    case State::Stopped:
      return false;
    case State::Idle:
    case State::Waiting:
      setState(State::Stopped);
      return false;
  }
  return false;
}

}  // namespace hdb
