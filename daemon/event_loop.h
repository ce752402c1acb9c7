// The one thread's event loop: one lws context, a vhost for adopted fds, a
// client vhost per upstream server, signals through a signalfd, and timers.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <libwebsockets.h>

#include "config.h"
#include "raw_fd.h"
#include "resolver.h"


namespace hdb {

class EventLoop {
 public:
  using SignalHandler = std::function<void(int signo)>;

  // Throws std::runtime_error when the context or a vhost cannot be created.
  // SIGINT, SIGTERM and SIGHUP must already be blocked in every thread.
  EventLoop(const Config& config, SignalHandler onSignal);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  lws_context* context() const { return context_; }
  lws_vhost* localVhost() const { return localVhost_; }
  lws_vhost* clientVhost(const std::string& server) const;
  // Makes sure `server` has a client vhost with its trust settings (a server a
  // reload added, or whose tls.ca_file changed). A replaced vhost stays until
  // exit: connections still closing may use it.
  void ensureClientVhost(const ServerConfig& server);
  Resolver& resolver() { return *resolver_; }

  // Services lws until stop(); after every wake-up it hands finished name
  // look-ups to their callers and runs `afterService` (where sinks write what
  // the callbacks queued, in one batch per wake-up).
  void run(const std::function<void()>& afterService);
  void stop();
  // Wakes the loop so that run() re-checks its state.
  void wake();

  // Destroys the lws context: every wsi is closed and its callbacks run. After
  // this, timers no longer start. The destructor calls it too.
  void destroyContext();
  bool closing() const { return closing_; }

 private:
  class SignalReader;

  lws_context* context_ = nullptr;
  lws_vhost* localVhost_ = nullptr;
  struct ClientVhost {
    lws_vhost* vhost = nullptr;
    std::string caFile;
    bool tls = false;  // has an OpenSSL client context (some URL of the server is wss:// or https://)
    std::string name;  // lws keeps the pointer: stable storage
  };
  std::map<std::string, std::unique_ptr<ClientVhost>> clientVhosts_;
  std::vector<std::unique_ptr<ClientVhost>> replacedVhosts_;
  uint32_t vhostGeneration_ = 0;
  std::unique_ptr<SignalReader> signals_;
  std::unique_ptr<Resolver> resolver_;
  bool stop_ = false;
  bool closing_ = false;
};

// A one-shot timer on the loop. Safe to restart while pending; cancelled on
// destruction; start() is ignored once the loop is closing.
class Timer {
 public:
  explicit Timer(EventLoop& loop) : loop_(loop) { node_.owner = this; }
  ~Timer() { cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::chrono::microseconds delay, std::function<void()> fn);
  void cancel();
  bool pending() const { return pending_; }

 private:
  static void fire(lws_sorted_usec_list_t* sul);

  // lws hands the callback its list node; the node sits first in a
  // standard-layout struct so the callback can find its Timer.
  struct Node {
    lws_sorted_usec_list_t sul;
    Timer* owner;
  };
  EventLoop& loop_;
  Node node_{};
  std::function<void()> fn_;
  bool pending_ = false;
};

}  // namespace hdb
