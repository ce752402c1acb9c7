// A listening socket in the loop, shared by the unix and ingest sinks and the
// metrics server: it adopts the fd, accepts every pending connection
// (non-blocking, close-on-exec) and hands each one to its owner, and removes
// its Unix socket file when it stops or goes away.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "event_loop.h"
#include "logging.h"
#include "raw_fd.h"
#include "sink.h"
#include "unix_socket.h"

namespace hdb {

class Listener : public RawFdHandler {
 public:
  using Accepted = std::function<void(int fd)>;

  // Takes `fd`, a listening socket. `path`: its socket file (empty: none).
  // `label` starts log and error lines ("sink 'x'", "metrics"). Throws
  // std::runtime_error when lws cannot watch the fd (the file is removed).
  Listener(EventLoop& loop, int fd, std::string path, std::string label, Accepted accepted);
  ~Listener() override;

  // Stops listening: lws closes the fd on its next turn; the file goes now.
  void close();
  // Lets go of the fd at once (its owner is being retired); the file goes now.
  void release();

  int onReadable(lws* wsi) override;
  void onClosed(lws* wsi) override;

 private:
  void unlink();

  int fd_;
  lws* wsi_ = nullptr;
  std::string path_;
  std::string label_;
  Accepted accepted_;
  LogLimiter acceptLog_;
};

// The listening socket of a unix or ingest sink: config.path with its mode,
// owner and group. Throws std::runtime_error naming the sink.
std::unique_ptr<Listener> listenForSink(EventLoop& loop, const SinkConfig& config, Listener::Accepted accepted);

// A socket sink's allow_uids/allow_gids for an accepted `fd`: true when its
// peer may stay. Otherwise closes `fd`, counts it in consumersRejected and
// logs it (rate-limited by `log`); `who` names the peer ("consumer", "client").
bool admitPeer(int fd, const PeerCredentials& peer, const SinkConfig& config, SinkStats& stats, LogLimiter& log,
               const char* who);

}  // namespace hdb
