// One HTTP request from the loop (the operations API: install-component now,
// the write path later): resolve off the loop, connect through lws, send a JSON
// body with Basic auth, collect the answer, call back once.
#pragma once

#include <libwebsockets.h>

#include "lws_client.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "event_loop.h"

namespace hdb {

inline constexpr const char* kHttpProtocolName = "hdb-http";

struct HttpResult {
  int status = 0;       // 0 when no response arrived
  std::string body;
  std::string error;    // set when status is 0
  bool sent = false;    // the body was handed to the connection (so the server may have acted on it)
};

class HttpRequest : public LwsClient {
 public:
  using Done = std::function<void(const HttpResult&)>;

  // POSTs `body` (JSON) to `url` through the client vhost of server `server`
  // (its TLS settings apply; nothing of `server` is kept past the call).
  // `done` runs exactly once, on the loop thread, never from inside post().
  // With a `timeout`, a request not answered in time is abandoned (its
  // connection closed) and reported as an error.
  static void post(EventLoop& loop, const ServerConfig& server, const Url& url, std::string body, Done done,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds::zero());

  int onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept override;

 private:
  HttpRequest(EventLoop& loop, const ServerConfig& server, Url url, std::string body, Done done);
  void open(const std::string& address);
  void timedOut(std::chrono::milliseconds after);
  int onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void finish(std::string error);  // deletes this

  EventLoop& loop_;
  std::string serverName_;  // its client vhost
  bool verify_;             // its tls.verify
  Url url_;
  std::string body_;
  std::string auth_;
  Done done_;
  HttpResult response_;
  uint64_t ticket_ = 0;  // while resolving
  lws* wsi_ = nullptr;   // once connecting
  Timer timeout_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdb
