#include "line_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

namespace hdb {
namespace {
constexpr size_t kMaxIov = 64;
}

bool LineQueue::push(Line line) {
  if (bytes_ + line->size() > cap_) return false;
  bytes_ += line->size();
  lines_.push_back(std::move(line));
  return true;
}

void LineQueue::clear() {
  lines_.clear();
  headOffset_ = 0;
  bytes_ = 0;
}

void LineQueue::consume(size_t n) {
  bytes_ -= n;
  while (n > 0) {
    size_t left = lines_.front()->size() - headOffset_;
    if (n < left) {
      headOffset_ += n;
      return;
    }
    n -= left;
    lines_.pop_front();
    headOffset_ = 0;
  }
}

WriteStatus LineQueue::writeTo(int fd, bool isSocket, int& err) {
  iovec iov[kMaxIov];
  while (!lines_.empty()) {
    size_t count = 0;
    for (auto it = lines_.begin(); it != lines_.end() && count < kMaxIov; ++it, ++count) {
      size_t skip = count == 0 ? headOffset_ : 0;
      iov[count].iov_base = const_cast<char*>((*it)->data() + skip);
      iov[count].iov_len = (*it)->size() - skip;
    }
    ssize_t n;
    if (isSocket) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      n = ::writev(fd, iov, static_cast<int>(count));
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return WriteStatus::Blocked;
      err = errno;
      if (errno == EPIPE || errno == ECONNRESET) return WriteStatus::Closed;
      return WriteStatus::Failed;
    }
    consume(static_cast<size_t>(n));
  }
  return WriteStatus::Drained;
}

}  // namespace hdb
