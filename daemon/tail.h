// `hdb-bridge tail SOCKET [--ops a,b] [--pretty]`: a consumer of a Unix socket
// sink for people. A plain blocking client: it is its own process, not part
// of the daemon's loop.
#pragma once

namespace hdb {

// argv[0] is "tail". Returns the process exit code: 0 at end of stream,
// EX_USAGE for bad arguments, EX_NOINPUT when the socket does not exist,
// EX_UNAVAILABLE when nothing listens on it, EX_NOPERM when access is denied.
int runTail(int argc, char** argv);

}  // namespace hdb
