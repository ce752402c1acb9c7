// Plain file descriptors in the lws loop: the signalfd, Unix listeners and their
// consumers, stdout, FIFOs. Each is adopted as an lws "raw file" whose opaque
// pointer is a RawFdHandler; the trampoline in raw_fd.cpp forwards lws's events
// to it.
#pragma once

#include <libwebsockets.h>

namespace hdb {

class RawFdHandler {
 public:
  RawFdHandler() = default;
  virtual ~RawFdHandler();
  RawFdHandler(const RawFdHandler&) = delete;
  RawFdHandler& operator=(const RawFdHandler&) = delete;

  // Return -1 to have lws close the fd.
  virtual int onReadable(lws* /*wsi*/) { return 0; }
  virtual int onWritable(lws* /*wsi*/) { return 0; }
  // The fd is closed and `wsi` is gone once this returns; no further calls follow.
  virtual void onClosed(lws* /*wsi*/) {}

  // Asks for onWritable once the fd can take more. Use this, never
  // lws_callback_on_writable() directly: lws 4.1's raw-file role clears POLLOUT
  // *after* the writeable callback returns, so a request made inside
  // onWritable would be lost and the fd never polled for POLLOUT again. From
  // inside onWritable the request is made on the next loop turn instead.
  void requestWritable(lws* wsi);
  // Forgets a pending request (call before letting go of `wsi`).
  void cancelWritable();

 private:
  friend int rawFdCallback(lws*, lws_callback_reasons, void*, void*, size_t) noexcept;
  static void rearm(lws_sorted_usec_list_t* sul);

  // lws hands the timer callback its list node; the node sits first in a
  // standard-layout struct so the callback can find its handler.
  struct Rearm {
    lws_sorted_usec_list_t sul;
    RawFdHandler* owner;
  };
  Rearm rearm_{{}, this};
  lws* rearmWsi_ = nullptr;
  bool rearmPending_ = false;
  bool inWritable_ = false;
};

// Hands `fd` to lws; it owns and closes the fd from now on, even on failure
// (then nullptr is returned).
lws* adoptRawFd(lws_vhost* vhost, int fd, RawFdHandler* handler);

// Asks lws to close an adopted fd from outside its callbacks; onClosed follows.
void closeRawFdAsync(lws* wsi);

// Lets go of an adopted fd: lws closes it soon, and no callback of it reaches
// `handler` again (not even onClosed), so the handler may be destroyed at once.
void releaseRawFd(lws* wsi, RawFdHandler& handler);

// The lws protocol entry every vhost that adopts fds needs.
extern const lws_protocols kRawProtocol;
inline constexpr const char* kRawProtocolName = "hdb-raw";

}  // namespace hdb
