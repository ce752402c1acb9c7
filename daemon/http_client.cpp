#include "http_client.h"

#include <cstring>

namespace hdb {

namespace {
constexpr size_t kMaxResponseBytes = 16u << 20;
}

HttpRequest::HttpRequest(EventLoop& loop, const ServerConfig& server, Url url, std::string body, Done done)
    : loop_(loop),
      serverName_(server.name),
      verify_(server.tls.verify),
      url_(std::move(url)),
      body_(std::move(body)),
      done_(std::move(done)),
      timeout_(loop) {
  char buf[512];
  if (lws_http_basic_auth_gen(server.username.c_str(), server.password.c_str(), buf, sizeof buf) == 0) auth_ = buf;
  std::memset(buf, 0, sizeof buf);
}

void HttpRequest::post(EventLoop& loop, const ServerConfig& server, const Url& url, std::string body, Done done,
                       std::chrono::milliseconds timeout) {
  auto* request = new HttpRequest(loop, server, url, std::move(body), std::move(done));
  if (timeout.count() > 0) request->timeout_.start(timeout, [request, timeout] { request->timedOut(timeout); });
  request->ticket_ = loop.resolver().resolve(url.host, [request](const std::string& address, const std::string& error) {
    request->ticket_ = 0;
    if (!error.empty()) return request->finish(error);
    request->open(address);
  });
}

void HttpRequest::open(const std::string& address) {
  lws_client_connect_info ci{};
  ci.context = loop_.context();
  ci.vhost = loop_.clientVhost(serverName_);
  ci.address = address.c_str();
  ci.port = url_.port;
  ci.host = url_.host.c_str();
  ci.origin = ci.host;
  ci.path = url_.path.c_str();
  ci.method = "POST";
  ci.local_protocol_name = kHttpProtocolName;
  ci.opaque_user_data = opaque();
  if (url_.tls) {
    ci.ssl_connection = LCCSCF_USE_SSL;
    if (!verify_)
      ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                           LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
  }
  // A NULL return may come after lws already reported the failure through
  // CLIENT_CONNECTION_ERROR (and so deleted us): only report it if it did not.
  auto alive = alive_;
  lws* wsi = lws_client_connect_via_info(&ci);
  if (!*alive) return;
  if (!wsi) return finish("cannot start the connection");
  wsi_ = wsi;
}

void HttpRequest::timedOut(std::chrono::milliseconds after) {
  if (ticket_) loop_.resolver().cancel(ticket_);
  if (wsi_) {
    // Let lws close the connection on its own time, without telling us.
    lws_set_opaque_user_data(wsi_, nullptr);
    lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  }
  finish("no answer within " + std::to_string(after.count() / 1000) + " s");
}

int HttpRequest::onLwsEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) noexcept {
  return onEvent(wsi, reason, in, len);
}

int HttpRequest::onEvent(lws* wsi, lws_callback_reasons reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      auto** p = static_cast<unsigned char**>(in);
      unsigned char* end = *p + len;
      std::string length = std::to_string(body_.size());
      if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                       reinterpret_cast<const unsigned char*>(auth_.data()),
                                       static_cast<int>(auth_.size()), p, end) ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                       reinterpret_cast<const unsigned char*>("application/json"), 16, p, end) ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                       reinterpret_cast<const unsigned char*>(length.data()),
                                       static_cast<int>(length.size()), p, end))
        return -1;
      lws_client_http_body_pending(wsi, 1);
      lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
      if (response_.sent) return 0;
      response_.sent = true;
      // lws_write needs LWS_PRE bytes of headroom before the payload.
      std::string buf(LWS_PRE + body_.size(), '\0');
      std::memcpy(buf.data() + LWS_PRE, body_.data(), body_.size());
      if (lws_write(wsi, reinterpret_cast<unsigned char*>(buf.data() + LWS_PRE), body_.size(),
                    LWS_WRITE_HTTP_FINAL) < 0)
        return -1;
      lws_client_http_body_pending(wsi, 0);
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
      response_.status = static_cast<int>(lws_http_client_http_response(wsi));
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[4096 + LWS_PRE];
      char* p = buffer + LWS_PRE;
      int n = sizeof buffer - LWS_PRE;
      return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
      if (response_.body.size() + len > kMaxResponseBytes) return -1;
      response_.body.append(static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
      lws_set_opaque_user_data(wsi, nullptr);
      finish("");
      return -1;  // done with this connection
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      lws_set_opaque_user_data(wsi, nullptr);
      finish(in ? static_cast<const char*>(in) : "connection failed");
      return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
      lws_set_opaque_user_data(wsi, nullptr);
      finish("connection closed before the response was complete");
      return 0;
    default:
      return 0;
  }
}

void HttpRequest::finish(std::string error) {
  timeout_.cancel();
  if (!error.empty()) {
    response_.status = 0;
    response_.error = std::move(error);
  }
  *alive_ = false;
  Done done = std::move(done_);
  HttpResult response = std::move(response_);
  delete this;
  if (done) done(response);
}

}  // namespace hdb
