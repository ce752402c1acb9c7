// Plain file descriptors in the lws loop: the signalfd, Unix listeners and their
// consumers, stdout. Each is adopted as an lws "raw file" whose opaque pointer is
// a RawFdHandler; the trampoline in raw_fd.cpp forwards lws's events to it.
#pragma once

struct lws;
struct lws_vhost;
struct lws_protocols;

namespace hdb {

class RawFdHandler {
 public:
  virtual ~RawFdHandler() = default;
  // Return -1 to have lws close the fd.
  virtual int onReadable(lws* /*wsi*/) { return 0; }
  virtual int onWritable(lws* /*wsi*/) { return 0; }
  // The fd is closed and `wsi` is gone once this returns; no further calls follow.
  virtual void onClosed(lws* /*wsi*/) {}
};

// Hands `fd` to lws; it owns and closes the fd from now on, even on failure
// (then nullptr is returned).
lws* adoptRawFd(lws_vhost* vhost, int fd, RawFdHandler* handler);

// Asks lws to close an adopted fd from outside its callbacks; onClosed follows.
void closeRawFdAsync(lws* wsi);

// The lws protocol entry every vhost that adopts fds needs.
extern const lws_protocols kRawProtocol;
inline constexpr const char* kRawProtocolName = "hdb-raw";

}  // namespace hdb
