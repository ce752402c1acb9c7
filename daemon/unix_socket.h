// The Unix-domain socket plumbing of the socket sink, without lws: our own
// listening socket (not lws's Unix vhost, see libwebsockets-4.1.md pitfall 3)
// and who is on the other end of an accepted one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hdb {

// Binds a listening AF_UNIX stream socket at `path`, creating the parent
// directory; replaces a stale socket file, refuses a live one or any other
// file. The file gets `owner`/`group` (when set) and then `mode`; until then
// it has mode 0, so no one connects early. Returns the non-blocking fd or
// throws std::runtime_error.
int listenUnix(const std::string& path, unsigned mode, std::optional<uint32_t> owner = std::nullopt,
               std::optional<uint32_t> group = std::nullopt);

// The peer of a connected Unix socket (SO_PEERCRED, SO_PEERGROUPS).
struct PeerCredentials {
  bool known = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, when the kernel tells
  std::string describe() const;  // "pid 12, uid 1000, gid 1000"
};
PeerCredentials peerCredentials(int fd);

// allow_uids / allow_gids: both empty allows everyone; otherwise the peer's
// uid, primary gid or any supplementary gid must be listed.
bool peerAllowed(const PeerCredentials& peer, const std::vector<uint32_t>& uids, const std::vector<uint32_t>& gids);

}  // namespace hdb
