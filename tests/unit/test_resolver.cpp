#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "resolver.h"

TEST_CASE("numeric addresses are recognised") {
  CHECK(hdb::numericAddress("127.0.0.1") == "127.0.0.1");
  CHECK(hdb::numericAddress("::1") == "::1");
  CHECK(hdb::numericAddress("localhost").empty());
  CHECK(hdb::numericAddress("1.2.3").empty());
}

TEST_CASE("the resolver answers through deliver(), never re-entrantly") {
  hdb::Resolver resolver(nullptr);
  std::string got, err;
  int calls = 0;
  resolver.resolve("127.0.0.1", [&](const std::string& a, const std::string& e) {
    got = a;
    err = e;
    ++calls;
  });
  CHECK(calls == 0);
  resolver.deliver();
  CHECK(calls == 1);
  CHECK(got == "127.0.0.1");
  CHECK(err.empty());
}

TEST_CASE("names are resolved off the calling thread; failures say why; cancel works") {
  hdb::Resolver resolver(nullptr);
  std::string local, bad;
  bool cancelledCalled = false;
  resolver.resolve("localhost", [&](const std::string& a, const std::string& e) { local = a.empty() ? e : a; });
  resolver.resolve("no-such-host.invalid", [&](const std::string&, const std::string& e) { bad = e; });
  auto t = resolver.resolve("localhost", [&](const std::string&, const std::string&) { cancelledCalled = true; });
  resolver.cancel(t);
  for (int i = 0; i < 200 && (local.empty() || bad.empty()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    resolver.deliver();
  }
  CHECK((local == "127.0.0.1" || local == "::1"));
  CHECK(bad.find("cannot resolve 'no-such-host.invalid'") == 0);
  CHECK_FALSE(cancelledCalled);
}
