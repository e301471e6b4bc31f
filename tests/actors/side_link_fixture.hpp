#pragma once
// Helpers for the side-link tests (accounting, reconciliation): a payments store in a temp
// dir filled directly, an actor system of two threads, and a blocking ask for test code.
#include <caf/all.hpp>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "ledger/store/payments_store.hpp"
#include "tests/ask.hpp"
#include "tests/store/store_fixture.hpp"

namespace kassa::test {

namespace ks = kassa::ledger::store;

inline std::shared_ptr<ks::payments_store> open_payments(const std::string& path) {
  ks::error err;
  std::shared_ptr<ks::payments_store> s(ks::payments_store::open(path, ks::durability::none, 256ull << 20, err));
  INFO(err.message);
  REQUIRE(s);
  return s;
}

inline void write_ok(ks::payments_store& s, ks::payments_batch b) {
  ks::error err = s.write(b);
  INFO(err.message);
  REQUIRE(err.ok());
}

inline void set_name(char (&out)[16], const std::string& name) {
  std::memset(out, 0, sizeof out);
  std::memcpy(out, name.data(), std::min(name.size(), sizeof out));
}

struct actor_node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<caf::actor> actors; // stopped at destruction

  actor_node() {
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  ~actor_node() {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    // A detached actor's thread ends once its last handle is gone: drop ours first.
    actors.clear();
    sys.reset(); // waits for every actor
  }

  template <class Reply, class Request> Reply ask(const caf::actor& to, Request req) {
    auto r = kassa::test::ask<Reply>(*sys, to, std::move(req));
    REQUIRE(r);
    return std::move(*r);
  }
};

// Polls `done` every few milliseconds for up to `timeout`; true once it holds.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

} // namespace kassa::test
