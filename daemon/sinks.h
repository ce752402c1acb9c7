// Builds the sink a config entry describes (one file per kind: sink_stdout,
// sink_unix, sink_fifo).
#pragma once

#include <memory>

#include "config.h"
#include "event_loop.h"
#include "sink.h"

namespace hdb {

// Throws std::runtime_error naming the sink when it cannot be set up (a path
// in use, a directory that cannot be created, ...).
std::unique_ptr<Sink> makeSink(EventLoop& loop, const SinkConfig& config);

}  // namespace hdb
