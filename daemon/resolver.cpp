#include "resolver.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <sys/socket.h>

namespace hdb {

std::string numericAddress(const std::string& host) {
  in_addr v4;
  in6_addr v6;
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return host;
  return {};
}

namespace {


void lookUp(const std::string& host, std::string& address, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    error = std::string("cannot resolve '") + host + "': " + ::gai_strerror(rc);
    return;
  }
  char text[INET6_ADDRSTRLEN] = {};
  for (addrinfo* ai = result; ai; ai = ai->ai_next) {
    const void* where = ai->ai_family == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    if (::inet_ntop(ai->ai_family, where, text, sizeof text)) {
      address = text;
      break;
    }
  }
  ::freeaddrinfo(result);
  if (address.empty()) error = "no usable address for '" + host + "'";
}

}  // namespace

Resolver::~Resolver() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

uint64_t Resolver::resolve(const std::string& host, Callback callback) {
  uint64_t ticket = nextTicket_++;
  callbacks_[ticket] = std::move(callback);
  std::string numeric = numericAddress(host);
  std::lock_guard lock(mutex_);
  if (!numeric.empty()) {
    answers_.push_back({ticket, numeric, {}});
  } else {
    jobs_.push_back({ticket, host});
    if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
    wake_.notify_one();
  }
  if (context_) lws_cancel_service(context_);
  return ticket;
}

void Resolver::cancel(uint64_t ticket) { callbacks_.erase(ticket); }

void Resolver::detach() {
  std::lock_guard lock(mutex_);
  context_ = nullptr;
}

void Resolver::deliver() {
  std::deque<Answer> ready;
  {
    std::lock_guard lock(mutex_);
    ready.swap(answers_);
  }
  for (auto& answer : ready) {
    auto it = callbacks_.find(answer.ticket);
    if (it == callbacks_.end()) continue;  // cancelled
    Callback fn = std::move(it->second);
    callbacks_.erase(it);
    fn(answer.address, answer.error);
  }
}

void Resolver::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return quit_ || !jobs_.empty(); });
    if (quit_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    Answer answer{job.ticket, {}, {}};
    lookUp(job.host, answer.address, answer.error);
    lock.lock();
    answers_.push_back(std::move(answer));
    if (context_) lws_cancel_service(context_);
  }
}

}  // namespace hdb
