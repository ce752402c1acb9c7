// One HTTP request from the loop (the operations API: install-component now,
// the write path later): resolve off the loop, connect through lws, send a JSON
// body with Basic auth, collect the answer, call back once.
#pragma once

#include <libwebsockets.h>

#include "lws_client.h"

#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "event_loop.h"

namespace hdb {

inline constexpr const char* kHttpProtocolName = "hdb-http";

struct HttpResponse {
  int status = 0;       // 0 when no response arrived
  std::string body;
  std::string error;    // set when status is 0
};

class HttpRequest : public LwsClient {
 public:
  using Done = std::function<void(const HttpResponse&)>;

  // POSTs `body` (JSON) to `url` through the client vhost of server `server`
  // (its TLS settings apply). `done` runs exactly once, on the loop thread.
  static void post(EventLoop& loop, const ServerConfig& server, const Url& url, std::string body, Done done);

  int onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept override;

 private:
  HttpRequest(EventLoop& loop, const ServerConfig& server, Url url, std::string body, Done done);
  void open(const std::string& address);
  int onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void finish(std::string error);  // deletes this

  EventLoop& loop_;
  const ServerConfig& server_;
  Url url_;
  std::string body_;
  std::string auth_;
  Done done_;
  HttpResponse response_;
  bool sent_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdb
