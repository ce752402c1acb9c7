// Name resolution off the loop thread: lws 4.1 (as built by Debian) resolves
// synchronously inside lws_client_connect_via_info, so a slow resolver would
// freeze every table and consumer. A worker thread runs getaddrinfo and the
// loop picks the answers up after its next wake-up.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

struct lws_context;

namespace hdb {

class Resolver {
 public:
  // `address` is a numeric IP on success; otherwise `error` says why.
  using Callback = std::function<void(const std::string& address, const std::string& error)>;

  explicit Resolver(lws_context* context) : context_(context) {}
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Numeric hosts are answered at once (still through deliver(), never
  // re-entrantly). Returns a ticket for cancel().
  uint64_t resolve(const std::string& host, Callback callback);
  void cancel(uint64_t ticket);
  // Runs the callbacks of finished look-ups; call on the loop thread.
  void deliver();
  // The loop is going away: no more wake-ups are sent to it.
  void detach();

 private:
  struct Job {
    uint64_t ticket;
    std::string host;
  };
  struct Answer {
    uint64_t ticket;
    std::string address;
    std::string error;
  };
  void work();

  lws_context* context_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  std::deque<Answer> answers_;
  bool quit_ = false;
  std::thread worker_;
  // Loop-thread state only.
  std::map<uint64_t, Callback> callbacks_;
  uint64_t nextTicket_ = 1;
};

// A numeric IPv4/IPv6 address, or empty when `host` is a name.
std::string numericAddress(const std::string& host);

}  // namespace hdb
