// Pre-encoded HarperDB 4 feed frames for the benchmark feeder.
//
// A batch is one contiguous buffer of WebSocket text frames (server to client, unmasked) shaped like
// the frames of /work/shared/frames/hdb4: {"id":..,"localTime":..,"value":{..},"version":..,"type":"put"}.
// Every number that changes per record (id, localTime, the send timestamp) has a fixed width, so a
// frame is re-stamped in place before each write instead of being re-encoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

enum class Mix { Small, Big, Txn3 };  // ~300-byte records; 4 KiB records; 3 records per transaction

// What a frame carries: a HarperDB 4 `put`, or a HarperDB 3 SocketCluster `#publish` of an HDB_TRANSACTION
// inserting one record on channel "<schema>:<table>" (the shape of /work/shared/frames/hdb3).
struct Shape {
  bool hdb3 = false;
  std::string schema, table;  // hdb3 only
  uint64_t baseMillis = 0;    // times start here (0: a fixed November 2026 instant); hdb3 wants the wall clock
};

struct Slot {
  size_t id;        // offset of the 12-digit id (twice: top level and inside value; hdb3: the record's
  size_t valueId;   // id and the message's id)
  size_t localTime; // offset of the 13-digit integer part of localTime (hdb3: __origin.timestamp)
  size_t version;   // offset of the 13-digit integer part of version (hdb3: the message's timestamp)
  size_t sentNs;    // offset of the 19-digit send time (CLOCK_MONOTONIC ns)
  size_t begin, end;
};

class Batch {
 public:
  // lines: plain JSON lines (the direct path to a consumer) instead of WebSocket frames.
  Batch(Mix mix, size_t frames, bool lines, const Shape& shape = {});
  // Stamps frame i with record number n (ids, localTime) and the current time; txn groups share version.
  void stamp(size_t i, uint64_t n, uint64_t sentNs);
  const char* data() const { return buf_.data(); }
  size_t size() const { return buf_.size(); }
  size_t frames() const { return slots_.size(); }
  const Slot& slot(size_t i) const { return slots_[i]; }
  size_t payloadBytes() const { return payloadBytes_; }  // JSON bytes of all frames (no WS headers)

 private:
  Mix mix_;
  uint64_t baseMillis_;
  std::string buf_;
  std::vector<Slot> slots_;
  size_t payloadBytes_ = 0;
};

constexpr uint64_t kIdBase = 100000000000ull;       // ids are kIdBase + record number
constexpr uint64_t kSentBase = 1000000000000000000ull;  // sent_ns is kSentBase + CLOCK_MONOTONIC ns

// Writes v as exactly `width` decimal digits at p (zero-padded).
void putDigits(char* p, size_t width, uint64_t v);

uint64_t monotonicNs();

}  // namespace bench
