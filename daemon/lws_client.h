// The owner of lws client connections (a source, an HTTP request). Each
// connection's opaque user data points to its LwsClient, and every client
// protocol's callback is LwsClient::callback, which hands the event to that
// owner. The protocol must never decide whose connection it is: lws may
// report a connection through another protocol than the one it was opened
// with (a wss:// connection whose upgrade times out is destroyed through the
// vhost's first protocol), and a cast by protocol would then be to the wrong
// type.
#pragma once

#include <libwebsockets.h>

#include <chrono>
#include <string_view>

namespace hdb {

// lws ends a client connection that is not open within its context's
// timeout_secs (we keep lws's default, 5 s): a TCP connect, TLS handshake or
// WebSocket upgrade that stalled. It says so only sometimes ("Timed out
// waiting SSL"); otherwise the connection just goes away, and the clock tells.
inline constexpr std::chrono::seconds kLwsConnectTimeout{5};

inline bool connectTimedOut(std::string_view why, std::chrono::steady_clock::duration sinceOpen) {
  using namespace std::chrono_literals;
  return why.find("imed out") != std::string_view::npos || why.find("timeout") != std::string_view::npos ||
         sinceOpen >= kLwsConnectTimeout - 500ms;
}

class LwsClient {
 public:
  virtual ~LwsClient() = default;

  // One event of a connection this object opened; never throws.
  virtual int onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept = 0;

  // The callback of every client protocol.
  static int callback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, size_t len) noexcept {
    auto* owner = wsi ? static_cast<LwsClient*>(lws_get_opaque_user_data(wsi)) : nullptr;
    return owner ? owner->onLwsEvent(wsi, reason, in, len) : 0;
  }

 protected:
  // What a connection this object opens carries as its opaque user data.
  void* opaque() { return static_cast<LwsClient*>(this); }
};

}  // namespace hdb
