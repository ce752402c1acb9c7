#include "notify.h"

#include <systemd/sd-daemon.h>

#include <time.h>

#include <cstdint>
#include <string>

namespace hdb::notify {

void ready() { sd_notify(0, "READY=1"); }
void stopping() { sd_notify(0, "STOPPING=1"); }
void reloading() {
  // MONOTONIC_USEC lets systemd (Type=notify-reload, 253+) match this to the signal.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
  sd_notify(0, ("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}
void status(std::string_view text) {
  std::string msg = "STATUS=";
  msg.append(text);
  sd_notify(0, msg.c_str());
}
void watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace hdb::notify
