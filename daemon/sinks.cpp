#include "sinks.h"

#include "sink_fifo.h"
#include "sink_ingest.h"
#include "sink_stdout.h"
#include "sink_unix.h"

namespace hdb {

std::unique_ptr<Sink> makeSink(EventLoop& loop, const SinkConfig& config, const WriterLookup& writers) {
  switch (config.type) {
    case SinkType::Stdout: return std::make_unique<StdoutSink>(loop, config);
    case SinkType::Unix: return std::make_unique<UnixSink>(loop, config);
    case SinkType::Fifo: return std::make_unique<FifoSink>(loop, config);
    case SinkType::Ingest: return std::make_unique<IngestSink>(loop, config, writers);
  }
  return nullptr;
}

}  // namespace hdb
