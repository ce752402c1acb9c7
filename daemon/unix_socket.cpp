#include "unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace hdb {

namespace {

std::string errnoText(int err) { return std::strerror(err); }

sockaddr_un unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw std::runtime_error(path + ": path is longer than " + std::to_string(sizeof addr.sun_path - 1) +
                             " bytes, the limit of a Unix socket address");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A socket file left behind by a process that died is replaced; one that
// something still listens on is not ours to take.
void clearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error(path + ": " + errnoText(errno));
  }
  if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + ": exists and is not a socket; not replacing it");
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) throw std::runtime_error("socket: " + errnoText(errno));
  int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(probe);
  if (rc == 0) throw std::runtime_error(path + ": another process is listening on this socket");
  if (err != ECONNREFUSED && err != ENOENT)
    throw std::runtime_error(path + ": cannot tell whether the socket is in use: " + errnoText(err));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error(path + ": cannot remove the stale socket: " + errnoText(errno));
  spdlog::info("{}: replaced a stale socket file", path);
}

}  // namespace

int listenUnix(const std::string& path, unsigned mode, std::optional<uint32_t> owner, std::optional<uint32_t> group) {
  sockaddr_un addr = unixAddress(path);
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) throw std::runtime_error(parent.string() + ": cannot create directory: " + ec.message());
  }
  clearStaleSocket(path, addr);

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + errnoText(errno));
  // Bind with mode 0 and open it up only once owner and group are right: no
  // window in which the socket is more open than configured.
  mode_t old = ::umask(0777);
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0) {
    ::close(fd);
    throw std::runtime_error(path + ": bind: " + errnoText(err));
  }
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw std::runtime_error(path + ": " + what + ": " + errnoText(e));
  };
  if ((owner || group) && ::chown(path.c_str(), owner ? static_cast<uid_t>(*owner) : static_cast<uid_t>(-1),
                                  group ? static_cast<gid_t>(*group) : static_cast<gid_t>(-1)) != 0)
    fail("cannot set owner/group");
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) fail("cannot set mode");
  if (::listen(fd, 128) != 0) fail("listen");
  return fd;
}

std::string PeerCredentials::describe() const {
  if (!known) return "unknown peer";
  return "pid " + std::to_string(pid) + ", uid " + std::to_string(uid) + ", gid " + std::to_string(gid);
}

PeerCredentials peerCredentials(int fd) {
  PeerCredentials peer;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return peer;
  peer.known = true;
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  // A first try for the usual few groups; ERANGE tells the size needed.
  peer.groups.resize(32);
  for (int attempt = 0; attempt < 2; ++attempt) {
    len = static_cast<socklen_t>(peer.groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, peer.groups.data(), &len) == 0) {
      peer.groups.resize(len / sizeof(gid_t));
      return peer;
    }
    if (errno != ERANGE) break;
    peer.groups.resize(len / sizeof(gid_t) + 1);
  }
  peer.groups.clear();
  return peer;
}

bool peerAllowed(const PeerCredentials& peer, const std::vector<uint32_t>& uids, const std::vector<uint32_t>& gids) {
  if (uids.empty() && gids.empty()) return true;
  if (!peer.known) return false;
  auto listed = [](const std::vector<uint32_t>& ids, uint32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  if (listed(uids, peer.uid) || listed(gids, peer.gid)) return true;
  return std::any_of(peer.groups.begin(), peer.groups.end(), [&](gid_t g) { return listed(gids, g); });
}

}  // namespace hdb
