#include "backoff.h"

#include <algorithm>

namespace hdb {

std::chrono::milliseconds Backoff::next(const BackoffPolicy& policy) {
  const int64_t floor = policy.floor.count();
  const int64_t cap = std::max(floor, static_cast<int64_t>(policy.cap.count()));
  int64_t ceiling = floor;
  for (unsigned i = 0; i < failures_ && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  if (failures_ < 64) ++failures_;
  std::uniform_int_distribution<int64_t> pick(floor, ceiling);
  return std::chrono::milliseconds(pick(rng_));
}

}  // namespace hdb
