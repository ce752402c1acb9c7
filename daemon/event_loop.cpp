#include "event_loop.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "hdb3_source.h"
#include "hdb4_source.h"
#include "http_client.h"

namespace hdb {

namespace {

const lws_protocols kLocalProtocols[] = {kRawProtocol, {nullptr, nullptr, 0, 0, 0, nullptr, 0}};

// Client connections name their protocol with local_protocol_name; nothing is
// sent as Sec-WebSocket-Protocol.
const lws_protocols kClientProtocols[] = {
    {kHdb4ProtocolName, LwsClient::callback, 0, 0, 0, nullptr, 0},
    {kHttpProtocolName, LwsClient::callback, 0, 0, 0, nullptr, 0},
    {kHdb3ProtocolName, LwsClient::callback, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

// Reads the signalfd in the loop, so a signal is just another event.
class EventLoop::SignalReader : public RawFdHandler {
 public:
  explicit SignalReader(SignalHandler handler) : handler_(std::move(handler)) {}
  int onReadable(lws*) override {
    signalfd_siginfo info;
    for (;;) {
      ssize_t n = ::read(fd, &info, sizeof info);
      if (n == static_cast<ssize_t>(sizeof info)) {
        handler_(static_cast<int>(info.ssi_signo));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return 0;
    }
  }
  void onClosed(lws*) override { fd = -1; }
  int fd = -1;

 private:
  SignalHandler handler_;
};

EventLoop::EventLoop(const Config& config, SignalHandler onSignal) {
  lws_context_creation_info info{};
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.port = CONTEXT_PORT_NO_LISTEN;
  // lws sizes its fd table from RLIMIT_NOFILE unless told; consumers count here.
  info.fd_limit_per_thread = 4096;
  context_ = lws_create_context(&info);
  if (!context_) throw std::runtime_error("cannot create the libwebsockets context");
  resolver_ = std::make_unique<Resolver>(context_);

  lws_context_creation_info local{};
  local.vhost_name = "local";
  local.port = CONTEXT_PORT_NO_LISTEN;
  local.protocols = kLocalProtocols;
  localVhost_ = lws_create_vhost(context_, &local);
  if (!localVhost_) throw std::runtime_error("cannot create the local vhost");

  // One client vhost per server: TLS trust settings are per vhost in lws.
  for (const auto& [name, server] : config.servers) ensureClientVhost(server);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  int sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  signals_ = std::make_unique<SignalReader>(std::move(onSignal));
  signals_->fd = sfd;
  if (!adoptRawFd(localVhost_, sfd, signals_.get())) throw std::runtime_error("cannot watch the signalfd");
}

EventLoop::~EventLoop() { destroyContext(); }

lws_vhost* EventLoop::clientVhost(const std::string& server) const {
  auto it = clientVhosts_.find(server);
  return it == clientVhosts_.end() ? nullptr : it->second->vhost;
}

void EventLoop::ensureClientVhost(const ServerConfig& server) {
  // Without TLS the vhost gets no OpenSSL client context: loading the CA
  // store costs about a MiB of heap that a ws:// server never uses.
  bool tls = server.url.tls || (server.operationsUrl && server.operationsUrl->tls);
  auto& slot = clientVhosts_[server.name];
  if (slot && slot->caFile == server.tls.caFile && (slot->tls || !tls)) return;
  auto vh = std::make_unique<ClientVhost>();
  vh->caFile = server.tls.caFile;
  vh->tls = tls;
  // lws wants distinct vhost names; a replacement gets a suffix.
  vh->name = server.name;
  if (slot) vh->name += "#" + std::to_string(++vhostGeneration_);
  lws_context_creation_info ci{};
  ci.vhost_name = vh->name.c_str();
  ci.port = CONTEXT_PORT_NO_LISTEN;
  ci.protocols = kClientProtocols;
  ci.options = tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
  if (tls && !vh->caFile.empty()) ci.client_ssl_ca_filepath = vh->caFile.c_str();
  vh->vhost = lws_create_vhost(context_, &ci);
  if (!vh->vhost) throw std::runtime_error("cannot create the client vhost for server '" + server.name + "'");
  if (slot) replacedVhosts_.push_back(std::move(slot));
  slot = std::move(vh);
}

void EventLoop::run(const std::function<void()>& afterService) {
  int n = 0;
  while (n >= 0 && !stop_) {
    n = lws_service(context_, 0);
    resolver_->deliver();
    afterService();
  }
}

void EventLoop::stop() {
  stop_ = true;
  wake();
}

void EventLoop::wake() {
  if (context_) lws_cancel_service(context_);
}

void EventLoop::destroyContext() {
  if (!context_) return;
  closing_ = true;
  resolver_->detach();
  lws_context_destroy(context_);
  context_ = nullptr;
  localVhost_ = nullptr;
  clientVhosts_.clear();
  replacedVhosts_.clear();
}

void Timer::start(std::chrono::microseconds delay, std::function<void()> fn) {
  if (loop_.closing() || !loop_.context()) return;
  fn_ = std::move(fn);
  pending_ = true;
  lws_sul_schedule(loop_.context(), 0, &node_.sul, &Timer::fire, static_cast<lws_usec_t>(delay.count()));
}

void Timer::cancel() {
  if (!pending_) return;
  pending_ = false;
  if (loop_.context()) lws_sul_cancel(&node_.sul);
}

void Timer::fire(lws_sorted_usec_list_t* sul) {
  auto* node = reinterpret_cast<Node*>(sul);
  Timer* self = node->owner;
  self->pending_ = false;
  auto fn = std::move(self->fn_);
  self->fn_ = nullptr;
  if (fn) fn();
}

}  // namespace hdb
