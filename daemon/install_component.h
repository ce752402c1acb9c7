// `hdb-bridge install-component`: deploys the project's HarperDB 4 component
// (the files under packaging/harperdb-component/, built into the binary) to a
// running server through its operations API, so that every table becomes
// subscribable with resume support. See docs/delivery.md.
#pragma once

#include <string>

#include "config.h"

namespace hdb {

// Returns the process exit code; prints progress and errors to stderr.
int installComponent(const Config& config, const std::string& serverName);

// The operations API URL of a server: `operations_url:` if given, else the
// feed's host on port 9925 (HarperDB's default), http or https like the feed.
Url operationsUrl(const ServerConfig& server);

}  // namespace hdb
