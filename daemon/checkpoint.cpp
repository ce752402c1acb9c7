#include "checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "logging.h"
#include "percent_encode.h"

namespace hdb {

namespace {

std::string errnoText() { return std::strerror(errno); }

// "../x" cannot leave the directory: percentEncode escapes '/' and a leading dot.
std::string escapeName(const std::string& s) { return percentEncode(s, Escape::FileName); }

bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

StateDir::StateDir(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  if (ec) throw std::runtime_error("state_dir " + path_ + ": cannot create: " + ec.message());
  std::string lockFile = path_ + "/lock";
  lockFd_ = ::open(lockFile.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockFd_ < 0) throw std::runtime_error("state_dir " + path_ + ": cannot open " + lockFile + ": " + errnoText());
  if (::flock(lockFd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[32] = {};
    if (::pread(lockFd_, buf, sizeof buf - 1, 0) > 0) {
      std::string pid(buf);
      if (auto nl = pid.find('\n'); nl != std::string::npos) pid.resize(nl);
      if (!pid.empty()) holder = " (pid " + pid + ")";
    }
    ::close(lockFd_);
    lockFd_ = -1;
    if (err == EWOULDBLOCK)
      throw std::runtime_error("state_dir " + path_ + " is in use by another hdb-bridge" + holder +
                               "; each instance needs its own state_dir");
    throw std::runtime_error("state_dir " + path_ + ": cannot lock: " + std::strerror(err));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lockFd_, 0) == 0) (void)::pwrite(lockFd_, pid.data(), pid.size(), 0);
}

StateDir::~StateDir() {
  if (lockFd_ >= 0) ::close(lockFd_);  // releases the lock
}

std::string StateDir::fileFor(const std::string& server, const std::string& database,
                              const std::string& table) const {
  return path_ + "/" + escapeName(server) + "." + escapeName(database) + "." + escapeName(table) + ".cursor";
}

bool validCursor(const std::string& text) {
  if (text.empty() || text.size() > 40) return false;
  size_t i = 0;
  bool digits = false, dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot && digits) {
      dot = true;
    } else {
      return false;
    }
  }
  return digits && text.back() != '.';
}

std::optional<std::string> readCheckpoint(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw std::runtime_error("checkpoint " + file + ": cannot read: " + errnoText());
  }
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf);
  int err = errno;
  ::close(fd);
  if (n < 0) throw std::runtime_error("checkpoint " + file + ": cannot read: " + std::strerror(err));
  std::string cursor(buf, static_cast<size_t>(n));
  if (auto nl = cursor.find('\n'); nl != std::string::npos) cursor.resize(nl);
  if (!validCursor(cursor))
    throw std::runtime_error("checkpoint " + file +
                             ": not a cursor; remove the file to start from the table's `start:` setting");
  return cursor;
}

std::string writeCheckpoint(const std::string& file, const std::string& cursor) {
  std::string tmp = file + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tmp + ": " + errnoText();
  bool ok = writeAll(fd, cursor + "\n") && ::fsync(fd) == 0;
  std::string err = ok ? "" : tmp + ": " + errnoText();
  ::close(fd);
  if (!ok) return err;
  if (::rename(tmp.c_str(), file.c_str()) != 0) return file + ": rename: " + errnoText();
  // The rename itself is durable only once the directory is synced.
  std::string dir = std::filesystem::path(file).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

}  // namespace hdb

namespace hdb {

CheckpointBook::Entry& CheckpointBook::add(const StateDir& dir, const std::string& server,
                                           const std::string& database, const std::string& table,
                                           const std::string& label) {
  std::string file = dir.fileFor(server, database, table);
  // A reload that restarts a table's subscription resumes from what this
  // process delivered, not from the (older) file.
  for (Entry& known : entries_)
    if (known.file == file) return known;
  Entry& e = entries_.emplace_back();
  e.file = std::move(file);
  e.label = label;
  if (auto cursor = readCheckpoint(e.file)) e.cursor = e.written = *cursor;
  return e;
}

void CheckpointBook::drained() {
  for (Entry& e : entries_) e.drained();
}

void CheckpointBook::flush() {
  for (Entry& e : entries_) {
    if (!e.dirty) continue;
    std::string err = writeCheckpoint(e.file, e.written);
    if (err.empty()) {
      e.dirty = false;
      continue;
    }
    static LogLimiter limiter;
    uint64_t held = 0;
    if (limiter.allow(held))
      spdlog::error("{}: cannot write checkpoint: {} ({} similar not logged)", e.label, err, held);
  }
}

}  // namespace hdb
