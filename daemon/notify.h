// sd_notify for systemd's Type=notify; every call is a no-op without NOTIFY_SOCKET.
#pragma once

#include <string_view>

namespace hdb::notify {

void ready();
void stopping();
// Before re-reading the config on SIGHUP; ready() follows when done.
void reloading();
void status(std::string_view text);

}  // namespace hdb::notify
