#include "logging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <libwebsockets.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace hdb {
namespace {

// stderr connected to journald: every line starts with its syslog priority
// ("<4>"), which journald strips and records, and carries no timestamp or
// level word (journald adds both). A message of several lines gets the prefix
// on each, so none of them lands at the default priority.
class JournalStderrSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    char prefix[4] = {'<', static_cast<char>('0' + journalPriority(msg.level)), '>', '\0'};
    std::string text(prefix);
    std::string_view payload(msg.payload.data(), msg.payload.size());
    while (payload.ends_with('\n')) payload.remove_suffix(1);
    for (char c : payload) {
      text.push_back(c);
      if (c == '\n') text.append(prefix);
    }
    text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

int journalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return 2;  // LOG_CRIT
    case spdlog::level::err: return 3;       // LOG_ERR
    case spdlog::level::warn: return 4;      // LOG_WARNING
    case spdlog::level::info: return 6;      // LOG_INFO
    default: return 7;                       // LOG_DEBUG (debug, trace)
  }
}

bool stderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long long dev = 0, ino = 0;
  char extra = 0;
  if (std::sscanf(stream, "%llu:%llu%c", &dev, &ino, &extra) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

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
  std::shared_ptr<spdlog::logger> logger;
  if (stderrIsJournal()) {
    logger = std::make_shared<spdlog::logger>("hdb-bridge", std::make_shared<JournalStderrSink>());
  } else {
    logger = spdlog::stderr_color_st("hdb-bridge");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
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
