// Builds the sink a config entry describes (one file per kind: sink_stdout,
// sink_unix, sink_fifo, sink_ingest).
#pragma once

#include <memory>

#include "config.h"
#include "event_loop.h"
#include "sink.h"
#include "writer.h"

namespace hdb {

// Throws std::runtime_error naming the sink when it cannot be set up (a path
// in use, a directory that cannot be created, ...). An ingest sink finds each
// command's writer through `writers`.
std::unique_ptr<Sink> makeSink(EventLoop& loop, const SinkConfig& config, const WriterLookup& writers);

}  // namespace hdb
