#include "raw_fd.h"

namespace hdb {

int rawFdCallback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* /*in*/, size_t /*len*/) noexcept {
  auto* handler = wsi ? static_cast<RawFdHandler*>(lws_get_opaque_user_data(wsi)) : nullptr;
  if (!handler) return 0;
  switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
      return handler->onReadable(wsi);
    case LWS_CALLBACK_RAW_WRITEABLE_FILE: {
      handler->inWritable_ = true;
      int rc = handler->onWritable(wsi);
      handler->inWritable_ = false;
      return rc;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
      // Detach first: the handler may delete itself in onClosed.
      lws_set_opaque_user_data(wsi, nullptr);
      handler->cancelWritable();
      handler->onClosed(wsi);
      return 0;
    default:
      return 0;
  }
}

RawFdHandler::~RawFdHandler() { cancelWritable(); }

void RawFdHandler::requestWritable(lws* wsi) {
  if (!wsi) return;
  if (!inWritable_) {
    lws_callback_on_writable(wsi);
    return;
  }
  if (rearmPending_) return;
  rearmPending_ = true;
  rearmWsi_ = wsi;
  lws_sul_schedule(lws_get_context(wsi), 0, &rearm_.sul, &RawFdHandler::rearm, 0);
}

void RawFdHandler::cancelWritable() {
  if (!rearmPending_) return;
  rearmPending_ = false;
  rearmWsi_ = nullptr;
  lws_sul_cancel(&rearm_.sul);
}

void RawFdHandler::rearm(lws_sorted_usec_list_t* sul) {
  RawFdHandler* self = reinterpret_cast<Rearm*>(sul)->owner;
  self->rearmPending_ = false;
  lws* wsi = self->rearmWsi_;
  self->rearmWsi_ = nullptr;
  if (wsi) lws_callback_on_writable(wsi);
}

const lws_protocols kRawProtocol = {kRawProtocolName, rawFdCallback, 0, 0, 0, nullptr, 0};

lws* adoptRawFd(lws_vhost* vhost, int fd, RawFdHandler* handler) {
  lws_adopt_desc_t desc{};
  desc.vh = vhost;
  desc.type = LWS_ADOPT_RAW_FILE_DESC;
  desc.fd.filefd = fd;
  desc.vh_prot_name = kRawProtocolName;
  desc.opaque = handler;
  return lws_adopt_descriptor_vhost_via_info(&desc);
}

void closeRawFdAsync(lws* wsi) { lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC); }

void releaseRawFd(lws* wsi, RawFdHandler& handler) {
  handler.cancelWritable();
  if (!wsi) return;
  lws_set_opaque_user_data(wsi, nullptr);
  closeRawFdAsync(wsi);
}

}  // namespace hdb
