// A deliberately small HTTP/1.1 server for the metrics endpoint, on the event
// loop: our own listening socket (TCP or Unix, adopted like the sinks'), one
// request per connection (`Connection: close`), GET and HEAD only. Requests
// are bounded (8 KiB of head), slow or idle clients are closed after a
// timeout, at most 64 clients at a time; nothing here blocks the loop.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config.h"
#include "event_loop.h"
#include "listener.h"
#include "logging.h"
#include "metrics.h"
#include "raw_fd.h"

namespace hdb {

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

// What the request line says. Returns an empty string and sets method and
// path (the target without its query) when `head` (everything before the
// blank line) is a valid HTTP/1.x request head, else the reason it is not.
std::string parseRequestHead(std::string_view head, std::string& method, std::string& path);
// The whole response, headers and body; HEAD gets the headers only.
std::string renderResponse(const HttpResponse& response, bool headOnly);
const char* statusText(int status);

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(std::string_view path)>;

  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr std::chrono::seconds kClientTimeout{5};
  static constexpr size_t kMaxClients = 64;

  // Binds and listens; throws std::runtime_error naming the address.
  HttpServer(EventLoop& loop, const MetricsConfig& config, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Stops accepting (shutdown); clients being answered finish.
  void close();
  const HttpCounters& counters() const { return counters_; }
  // "127.0.0.1:9464", "[::1]:41234" (the port actually bound) or the socket path.
  const std::string& address() const { return address_; }

 private:
  class Client;
  friend class Client;

  void admit(int fd);
  void remove(Client* client);
  void count(int status);

  EventLoop& loop_;
  MetricsConfig config_;
  Handler handler_;
  std::string address_;
  std::unique_ptr<Listener> listener_;
  std::map<Client*, std::unique_ptr<Client>> clients_;
  HttpCounters counters_;
};

}  // namespace hdb
