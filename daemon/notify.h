// sd_notify for systemd's Type=notify; every call is a no-op without NOTIFY_SOCKET.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace hdb::notify {

void ready();
void stopping();
// Before re-reading the config on SIGHUP; ready() follows when done.
void reloading();
void status(std::string_view text);
void watchdog();
// The service manager's watchdog interval (WATCHDOG_USEC, for this pid), if it set one.
std::optional<std::chrono::microseconds> watchdogInterval();

}  // namespace hdb::notify
