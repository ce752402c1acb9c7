#include "logging.h"

#include <libwebsockets.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace hdb {
namespace {

// lws reports mostly what our own callbacks report better (close codes, TLS
// failures); its lines go to debug so they are there when asked for.
void lwsEmit(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  spdlog::debug("lws[{}]: {}", level, text);
}

}  // namespace

spdlog::level::level_enum toSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: return spdlog::level::trace;
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

void setupLogging(LogLevel level) {
  auto logger = spdlog::stderr_color_st("hdb-bridge");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(toSpdlog(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  lws_set_log_level(level <= LogLevel::Debug ? (LLL_ERR | LLL_WARN) : 0, lwsEmit);
}

bool LogLimiter::allow(uint64_t& suppressed) {
  auto now = std::chrono::steady_clock::now();
  if (any_ && now - last_ < interval_) {
    ++held_;
    return false;
  }
  any_ = true;
  last_ = now;
  suppressed = held_;
  held_ = 0;
  return true;
}

}  // namespace hdb
