#include <doctest/doctest.h>

#include "backoff.h"

using namespace std::chrono_literals;

TEST_CASE("backoff grows, stays within floor and cap, resets") {
  hdb::Backoff b(42);
  hdb::BackoffPolicy p{100ms, 2s};
  CHECK(b.next(p) == 100ms);  // first retry: exactly the floor
  std::chrono::milliseconds maxSeen{0};
  for (int i = 0; i < 200; ++i) {
    auto d = b.next(p);
    CHECK(d >= 100ms);
    CHECK(d <= 2s);
    maxSeen = std::max(maxSeen, d);
  }
  CHECK(maxSeen > 1s);  // it reaches towards the cap
  b.reset();
  CHECK(b.failures() == 0);
  CHECK(b.next(p) == 100ms);
}

TEST_CASE("backoff is jittered") {
  hdb::Backoff a(1), b(2);
  hdb::BackoffPolicy p{100ms, 60s};
  int differ = 0;
  for (int i = 0; i < 10; ++i) differ += a.next(p) != b.next(p);
  CHECK(differ >= 5);
}

TEST_CASE("the shipped policies never retry in a tight loop") {
  hdb::Backoff b;
  for (int i = 0; i < 100; ++i) {
    CHECK(b.next(hdb::kReconnectBackoff) >= 500ms);
  }
  CHECK(hdb::kAuthFailureBackoff.floor >= 5s);
}
