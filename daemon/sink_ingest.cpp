#include "sink_ingest.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "line_queue.h"
#include "unix_socket.h"

namespace hdb {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWakeup = 16;  // then other fds get their turn
}  // namespace

// One connected program: its unread input, its commands in line order
// (answered or not) and the answers waiting to be written.
class IngestSink::Client : public RawFdHandler {
 public:
  Client(IngestSink& sink, int fd, uint64_t id, std::string peer)
      : sink_(sink), fd_(fd), id_(id), peer_(std::move(peer)),
        out_(SIZE_MAX / 2, OverflowPolicy::Disconnect, sink.config().name, &sink.stats_.queue) {}

  ~Client() override {
    // Answers still owed go nowhere; the writers' callbacks see `life_` gone.
    IngestStats& st = sink_.stats_.ingest;
    st.dropped += inFlight_;
    st.inFlight -= inFlight_;
  }

  void attach(lws* wsi) { wsi_ = wsi; }

  int onReadable(lws*) override {
    if (done_) return -1;
    for (int i = 0; i < kReadsPerWakeup && !paused(); ++i) {
      size_t had = in_.size();
      in_.resize(had + kReadChunk);
      ssize_t n = ::read(fd_, in_.data() + had, kReadChunk);
      in_.resize(had + std::max<ssize_t>(n, 0));
      if (n > 0) {
        takeLines();
        continue;
      }
      if (n == 0) {
        endOfInput();
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -1;
    }
    updateReading();
    return finished() ? -1 : 0;
  }

  int onWritable(lws*) override {
    awaitingWritable_ = false;
    if (done_) return -1;
    write();
    return done_ ? -1 : 0;
  }

  void onClosed(lws*) override {
    spdlog::info("sink '{}': client #{} ({}) disconnected after {} line(s){}", sink_.config().name, id_, peer_,
                 line_, inFlight_ ? fmt::format("; {} answer(s) in flight dropped", inFlight_) : std::string());
    wsi_ = nullptr;
    sink_.remove(this);  // deletes this; nothing may follow
  }

  // Writes the answers the socket takes now (once per loop wake-up).
  void flush() {
    if (done_ || awaitingWritable_ || out_.empty()) return;
    write();
  }

  bool pending() const { return !done_ && (inFlight_ > 0 || !out_.empty() || doneBytes_ > 0); }
  size_t queuedBytes() const { return out_.bytes() + doneBytes_; }

  // The sink goes away (reload): one last write of what the socket takes now,
  // then the fd is let go of. Answers still in flight are dropped.
  void release() {
    if (!done_ && !awaitingWritable_ && !out_.empty()) {
      int err = 0;
      (void)out_.writeTo(fd_, true, err);
    }
    done_ = true;
    out_.clear();
    ::shutdown(fd_, SHUT_RDWR);
    releaseRawFd(wsi_, *this);
    wsi_ = nullptr;
  }

 private:
  // A command line, from the moment it is read until its answer is queued.
  struct Slot {
    uint64_t line = 0;
    std::string ref;
    WriteCommand head;   // op, database, table, count (the items went to the writer)
    bool done = false;
    std::string answer;  // once done
  };

  bool paused() const {
    return done_ || eof_ || inFlight_ >= sink_.config().maxInFlight || queuedBytes() >= sink_.config().queueBytes;
  }
  bool finished() const { return eof_ && slots_.empty() && out_.empty(); }

  // Takes the complete lines in in_ while the client may have more in flight.
  void takeLines() {
    if (inTake_) return;  // a writer answered from inside submit(): the outer call goes on
    inTake_ = true;
    const size_t maxLine = sink_.config().maxLineBytes;
    size_t at = 0;
    while (!paused()) {
      size_t nl = in_.find('\n', at);
      if (skipping_) {
        if (nl == std::string::npos) {
          at = in_.size();
          break;
        }
        skipping_ = false;
        at = nl + 1;
        continue;
      }
      if (nl == std::string::npos) {
        if (in_.size() - at > maxLine) {  // no end in sight: answer now, drop the rest as it comes
          tooLong(++line_);
          skipping_ = true;
          at = in_.size();
        }
        break;
      }
      std::string_view text(in_.data() + at, nl - at);
      at = nl + 1;
      ++line_;
      if (text.size() > maxLine) tooLong(line_);
      else take(text, line_);
    }
    in_.erase(0, at);
    inTake_ = false;
    settle();
  }

  // The peer will send nothing more: a last line without '\n' still counts.
  void endOfInput() {
    eof_ = true;
    if (!skipping_ && !in_.empty()) {
      ++line_;
      if (in_.size() > sink_.config().maxLineBytes) tooLong(line_);
      else take(in_, line_);
    }
    in_.clear();
    settle();
  }

  void tooLong(uint64_t line) {
    ++sink_.stats_.ingest.commands;
    ++sink_.stats_.ingest.malformed;
    answerNow(line, {}, "line is longer than max_line_bytes (" + std::to_string(sink_.config().maxLineBytes) +
                            " bytes); skipped to the next newline");
  }

  // One line: a command for a writer, or an error answer at once.
  void take(std::string_view text, uint64_t line) {
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) return;  // blank: no command, no answer
    IngestStats& st = sink_.stats_.ingest;
    ++st.commands;
    ParsedCommand parsed;
    std::string error;
    if (!sink_.parser_.parse(text, parsed, error)) {
      ++st.malformed;
      logBad(line, error);
      answerNow(line, parsed.ref, error);
      return;
    }
    WriteCommand& command = parsed.command;
    std::string why = refusal(command);
    WriteTarget target;
    if (why.empty()) {
      target = sink_.lookup_(command.database, command.table);
      if (!target.writer) why = target.error.empty() ? "no writer for this table" : target.error;
    }
    if (!why.empty()) {
      ++st.refused;
      answerNow(line, parsed.ref, why);
      return;
    }
    Slot slot;
    slot.line = line;
    slot.ref = std::move(parsed.ref);
    slot.head.op = command.op;
    slot.head.database = command.database;
    slot.head.table = command.table;
    slot.head.count = command.count;
    slots_.push_back(std::move(slot));
    uint64_t seq = firstSeq_ + slots_.size() - 1;
    ++inFlight_;
    ++st.inFlight;
    std::weak_ptr<char> life = life_;
    target.writer->submit(std::move(command), [this, life, seq](WriteResult result) {
      if (life.expired()) return;  // the client left: counted as dropped when it did
      answered(seq, std::move(result));
    });
  }

  // Why the sink's own `tables:`/`ops:` refuse the command; empty when they allow it.
  std::string refusal(const WriteCommand& command) const {
    const std::string& name = sink_.config().name;
    std::string key = command.database + "." + command.table;
    if (!sink_.filter().takesTable(key))
      return "this socket may not write to " + key + " (not in the tables: of sink '" + name + "')";
    if (!sink_.filter().takesOp(writeOpName(command.op)))
      return std::string("this socket does not allow ") + writeOpName(command.op) + " (not in the ops: of sink '" +
             name + "')";
    return {};
  }

  void answered(uint64_t seq, WriteResult result) {
    if (seq < firstSeq_ || seq - firstSeq_ >= slots_.size()) return;  // never happens: one answer per command
    Slot& slot = slots_[seq - firstSeq_];
    if (slot.done) return;
    IngestStats& st = sink_.stats_.ingest;
    --inFlight_;
    --st.inFlight;
    ++(result.ok ? st.ok : st.failed);
    slot.answer = result.ok ? answerOk(slot.line, slot.ref, slot.head, result.fields)
                            : answerError(slot.line, slot.ref, result.error);
    slot.done = true;
    doneBytes_ += slot.answer.size();
    settle();
    updateReading();
  }

  void answerNow(uint64_t line, std::string_view ref, std::string_view error) {
    Slot slot;
    slot.line = line;
    slot.answer = answerError(line, ref, error);
    slot.done = true;
    doneBytes_ += slot.answer.size();
    slots_.push_back(std::move(slot));
  }

  // Answers whose turn has come move to the output queue; flush() writes them.
  void settle() {
    while (!slots_.empty() && slots_.front().done) {
      Slot& slot = slots_.front();
      doneBytes_ -= slot.answer.size();
      out_.push(std::make_shared<const std::string>(std::move(slot.answer)));
      slots_.pop_front();
      ++firstSeq_;
    }
  }

  // Reads on (from what is buffered, then from the socket) unless the client is
  // paused; the socket is polled for input only while it is not.
  void updateReading() {
    if (!paused() && !in_.empty()) takeLines();
    bool want = !paused();
    if (want != reading_ && wsi_) {
      lws_rx_flow_control(wsi_, want ? 1 : 0);
      reading_ = want;
    }
  }

  void write() {
    int err = 0;
    switch (out_.writeTo(fd_, true, err)) {
      case WriteStatus::Drained:
        updateReading();
        if (finished()) stop(nullptr);
        return;
      case WriteStatus::Blocked:
        awaitingWritable_ = true;
        requestWritable(wsi_);
        return;
      case WriteStatus::Closed: stop(nullptr); return;
      case WriteStatus::Failed: stop(std::strerror(err)); return;
    }
  }

  // Ends the connection (done, or the socket failed); the fd closes soon.
  void stop(const char* why) {
    if (done_) return;
    done_ = true;
    if (why)
      spdlog::warn("sink '{}': client #{} ({}): {}; disconnecting it", sink_.config().name, id_, peer_, why);
    out_.clear();
    ::shutdown(fd_, SHUT_RDWR);
    if (wsi_) closeRawFdAsync(wsi_);
  }

  void logBad(uint64_t line, std::string error) {
    uint64_t held = 0;
    if (!sink_.badLineLog_.allow(held)) return;
    // The message may quote the client (an unknown key): one log line, no terminal control.
    std::replace_if(error.begin(), error.end(), [](char c) { return (c >= 0 && c < 0x20) || c == 0x7f; }, '?');
    spdlog::warn("sink '{}': client #{} ({}) line {}: {} ({} more not logged)", sink_.config().name, id_, peer_,
                 line, error, held);
  }

  IngestSink& sink_;
  int fd_;
  uint64_t id_;
  std::string peer_;
  lws* wsi_ = nullptr;
  std::shared_ptr<char> life_ = std::make_shared<char>();  // writers' callbacks hold a weak_ptr to it
  std::string in_;             // read, not yet taken (at most a chunk and a line)
  uint64_t line_ = 0;          // lines read so far (the last one's number)
  bool skipping_ = false;      // inside an over-long line: drop up to its '\n'
  std::deque<Slot> slots_;     // commands in line order, until their answer is queued
  uint64_t firstSeq_ = 0;      // sequence number of slots_.front()
  size_t doneBytes_ = 0;       // answers done but waiting behind one in flight
  size_t inFlight_ = 0;
  LineQueue out_;              // answers to write; bounded by pausing input, not by its cap
  bool reading_ = true;
  bool inTake_ = false;
  bool eof_ = false;
  bool awaitingWritable_ = false;
  bool done_ = false;
};

IngestSink::IngestSink(EventLoop& loop, const SinkConfig& config, WriterLookup lookup)
    : Sink(config), loop_(loop), lookup_(std::move(lookup)) {
  listener_ = listenForSink(loop_, config, [this](int client) { admit(client); });
  spdlog::info("sink '{}': ingest socket listening on {}", config.name, config.path);
}

IngestSink::~IngestSink() {
  clients_.clear();  // while the counters they update still exist
}

void IngestSink::admit(int fd) {
  PeerCredentials peer = peerCredentials(fd);
  if (!admitPeer(fd, peer, config_, stats_, rejectLog_, "client")) return;
  uint64_t id = nextId_++;
  auto client = std::make_unique<Client>(*this, fd, id, peer.describe());
  lws* wsi = adoptRawFd(loop_.localVhost(), fd, client.get());
  if (!wsi) {
    spdlog::warn("sink '{}': cannot watch client #{} ({}); closed", config_.name, id, peer.describe());
    return;
  }
  client->attach(wsi);
  ++stats_.consumersAccepted;
  spdlog::info("sink '{}': client #{} connected ({})", config_.name, id, peer.describe());
  Client* raw = client.get();
  clients_.emplace(raw, std::move(client));
  stats_.consumers = clients_.size();
}

void IngestSink::remove(Client* client) {
  clients_.erase(client);
  stats_.consumers = clients_.size();
}

void IngestSink::flush() {
  for (auto& [raw, client] : clients_) raw->flush();
}

void IngestSink::close() { listener_->close(); }

void IngestSink::retire() {
  listener_->release();
  uint64_t inFlight = stats_.ingest.inFlight;
  for (auto& [raw, client] : clients_) raw->release();
  spdlog::info("sink '{}': removed; {} client(s) disconnected, {} answer(s) in flight dropped", config_.name,
               clients_.size(), inFlight);
  clients_.clear();
  stats_.consumers = 0;
}

bool IngestSink::pending() const {
  for (const auto& [raw, client] : clients_)
    if (raw->pending()) return true;
  return false;
}

size_t IngestSink::queuedBytes() const {
  size_t total = 0;
  for (const auto& [raw, client] : clients_) total += raw->queuedBytes();
  return total;
}

}  // namespace hdb
