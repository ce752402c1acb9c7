#include "watchdog.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <string_view>

#include <spdlog/spdlog.h>

#include "notify.h"

namespace hdb {

void Watchdog::start() {
  interval_ = notify::watchdogInterval();
  if (!interval_) return;
  spdlog::info("systemd watchdog: {} ms; pinging every {} ms", interval_->count() / 1000, interval_->count() / 2000);
  ping();
}

void Watchdog::ping() {
  notify::watchdog();
  timer_.start(*interval_ / 2, [this] { ping(); });
}

void TestHang::start() {
  const char* after = std::getenv("HDB_BRIDGE_TEST_HANG_AFTER");
  if (!after) return;
  const char* faults = std::getenv("HDB_BRIDGE_TEST_FAULTS");
  if (!faults || std::string_view(faults) != "1") {
    spdlog::warn("HDB_BRIDGE_TEST_HANG_AFTER is set but HDB_BRIDGE_TEST_FAULTS=1 is not: ignored");
    return;
  }
  std::string_view text(after);
  unsigned seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || seconds > 86400) {
    spdlog::warn("HDB_BRIDGE_TEST_HANG_AFTER={}: expected whole seconds from 0 to 86400; ignored", text);
    return;
  }
  spdlog::warn("TEST FAULT ARMED: the event loop will hang {} s from now (HDB_BRIDGE_TEST_HANG_AFTER)", seconds);
  timer_.start(std::chrono::seconds(seconds), [] {
    spdlog::warn("TEST FAULT: hanging the event loop now; only SIGKILL or the watchdog ends this process");
    for (;;) ::sleep(3600);
  });
}

}  // namespace hdb
