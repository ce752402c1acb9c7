#include "raw_fd.h"

#include <libwebsockets.h>

namespace hdb {
namespace {

int rawCallback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* /*in*/, size_t /*len*/) noexcept {
  auto* handler = wsi ? static_cast<RawFdHandler*>(lws_get_opaque_user_data(wsi)) : nullptr;
  if (!handler) return 0;
  switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
      return handler->onReadable(wsi);
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
      return handler->onWritable(wsi);
    case LWS_CALLBACK_RAW_CLOSE_FILE:
      // Detach first: the handler may delete itself in onClosed.
      lws_set_opaque_user_data(wsi, nullptr);
      handler->onClosed(wsi);
      return 0;
    default:
      return 0;
  }
}

}  // namespace

const lws_protocols kRawProtocol = {kRawProtocolName, rawCallback, 0, 0, 0, nullptr, 0};

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

}  // namespace hdb
