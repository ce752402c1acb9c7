#include "frames.h"

#include <cstring>
#include <ctime>

namespace bench {

namespace {

constexpr uint64_t kBaseMillis = 1795693388000;  // localTime/version start here (Nov 2026) and grow by 1 per record

void appendHeader(std::string& out, size_t n) {
  out.push_back(static_cast<char>(0x81));  // FIN + text
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n < 65536) {
    out.push_back(126);
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(127);
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>((n >> s) & 0xff));
  }
}

// One record's JSON with placeholders; offsets are relative to the JSON's start.
std::string recordJson(Mix mix, Slot& s) {
  std::string j;
  auto mark = [&j](size_t& field, const char* key, size_t width) {
    j.append(key);
    field = j.size();
    j.append(width, '0');
  };
  mark(s.id, "{\"id\":", 12);
  mark(s.localTime, ",\"localTime\":", 13);
  j.append(".1797,\"value\":");
  mark(s.valueId, "{\"id\":", 12);
  j.append(",\"name\":\"Harper\",\"type\":\"dog\",\"breed\":\"Australian Shepherd\",\"age\":5,"
           "\"tags\":[\"good\",\"herding\"],");
  if (mix == Mix::Big) {
    j.append("\"notes\":\"");
    j.append(3800, 'x');
    j.append("\",");
  }
  mark(s.sentNs, "\"sent_ns\":", 19);
  j.append(",\"__updatedtime__\":1795693388907.117,\"__createdtime__\":1795693388907.117}");
  mark(s.version, ",\"version\":", 13);
  j.append(".117,\"type\":\"put\"}");
  return j;
}

// A HarperDB 3 #publish of one inserted record; the same placeholders (the Small mix's record).
std::string publishJson(const Shape& shape, Slot& s) {
  std::string j;
  auto mark = [&j](size_t& field, const char* key, size_t width) {
    j.append(key);
    field = j.size();
    j.append(width, '0');
  };
  std::string names = "\"schema\":\"" + shape.schema + "\",\"table\":\"" + shape.table + "\"";
  j.append("{\"event\":\"#publish\",\"data\":{\"channel\":\"" + shape.schema + ":" + shape.table + "\",\"data\":");
  mark(s.valueId, "{\"id\":\"txn-", 12);
  j.append("\",\"type\":\"HDB_TRANSACTION\",\"transaction\":{\"operation\":\"insert\"," + names +
           ",\"records\":[");
  mark(s.id, "{\"id\":", 12);
  j.append(",\"name\":\"Harper\",\"type\":\"dog\",\"breed\":\"Australian Shepherd\",\"age\":5,"
           "\"tags\":[\"good\",\"herding\"],");
  mark(s.sentNs, "\"sent_ns\":", 19);
  j.append(",\"__updatedtime__\":1795693388907,\"__createdtime__\":1795693388907}],");
  mark(s.localTime, "\"__origin\":{\"timestamp\":", 13);
  j.append(".691,\"user\":\"HDB_ADMIN\",\"node_name\":\"bench\"}},\"__originator\":{\"bench\":1},"
           "\"__transacted\":true,");
  mark(s.version, "\"timestamp\":", 13);
  j.append("," + names + "}}}");
  return j;
}

}  // namespace

void putDigits(char* p, size_t width, uint64_t v) {
  for (size_t i = width; i-- > 0;) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Batch::Batch(Mix mix, size_t frames, bool lines, const Shape& shape)
    : mix_(mix), baseMillis_(shape.baseMillis ? shape.baseMillis : kBaseMillis) {
  for (size_t i = 0; i < frames; ++i) {
    Slot s{};
    std::string json = shape.hdb3 ? publishJson(shape, s) : recordJson(mix, s);
    s.begin = buf_.size();
    if (!lines) appendHeader(buf_, json.size());
    size_t at = buf_.size();
    s.id += at;
    s.valueId += at;
    s.localTime += at;
    s.version += at;
    s.sentNs += at;
    buf_.append(json);
    if (lines) buf_.push_back('\n');
    s.end = buf_.size();
    payloadBytes_ += json.size();
    slots_.push_back(s);
  }
}

void Batch::stamp(size_t i, uint64_t n, uint64_t sentNs) {
  const Slot& s = slots_[i];
  char* b = buf_.data();
  // Fixed width without leading zeros (JSON forbids them): ids start at 10^11, send times at 10^18.
  putDigits(b + s.id, 12, kIdBase + n);
  putDigits(b + s.valueId, 12, kIdBase + n);
  putDigits(b + s.localTime, 13, baseMillis_ + n);
  // A transaction of three records shares one version (the transaction time), as HarperDB 4 sends it.
  uint64_t txn = mix_ == Mix::Txn3 ? n / 3 * 3 : n;
  putDigits(b + s.version, 13, baseMillis_ + txn);
  putDigits(b + s.sentNs, 19, kSentBase + sentNs);
}

}  // namespace bench
