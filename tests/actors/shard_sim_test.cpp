// Deterministic simulations of the shard / writer protocol on CAF's test_coordinator: every
// message is delivered by the test, the writer is a stand-in that commits (or fails) only
// when told, and the shard's clock is manual. Tagged [sim].
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <deque>

#include "actors/shard.hpp"
#include "tests/actors/held_writer.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/process.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using namespace kassa::test;
namespace ks = kassa::ledger::store;

namespace {

struct sim {
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<ks::store> store;
  caf::actor writer, shard;
  uint64_t clock_ns = 1'000'000'000'000;

  uint64_t commit_delay_ns;

  explicit sim(uint64_t delay_ns = 0) : commit_delay_ns(delay_ns) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    open();
  }

  void open() {
    ks::options o;
    o.path = dir.path() + "/shard-000";
    o.durability = ks::durability::none;
    o.map_size_bytes = 64ull << 20;
    ks::error err;
    store = std::shared_ptr<ks::store>(ks::store::open(o, err));
    REQUIRE(store);
    writer = sys->spawn(held_writer, store, std::make_shared<size_t>(0));
    shard_options so;
    so.store = store;
    so.writer = caf::actor_cast<writer_actor>(writer); // held_writer also takes release_atom
    so.commit_events_max = 1000;
    so.commit_delay_ns = commit_delay_ns;
    so.clock = [this] { return clock_ns; };
    shard = caf::actor_cast<caf::actor>(spawn_shard(*sys, so, err));
    REQUIRE(shard);
    sched->run();
  }

  ~sim() {
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void release(bool succeed = true) {
    caf::anon_send(writer, release_atom::value, succeed);
    sched->run();
  }

};

// A client actor that records every reply it gets, in arrival order.
struct recorder {
  std::vector<create_reply> creates;
  std::vector<accounts_reply> lookups;
};

caf::behavior client(caf::event_based_actor* self, caf::actor shard, std::shared_ptr<recorder> rec) {
  return {
      [=](create_transfers_request& req) {
        self->request(shard, caf::infinite, std::move(req)).then([rec](create_reply& r) { rec->creates.push_back(r); });
      },
      [=](create_accounts_request& req) {
        self->request(shard, caf::infinite, std::move(req)).then([rec](create_reply& r) { rec->creates.push_back(r); });
      },
      [=](lookup_accounts_request& req) {
        self->request(shard, caf::infinite, std::move(req)).then([rec](accounts_reply& r) { rec->lookups.push_back(r); });
      },
  };
}

create_transfers_request transfers(std::vector<transfer> ts) { return {{}, std::move(ts), {}}; }

} // namespace

TEST_CASE("a shard answers only once the group holding the request is durable", "[sim]") {
  sim s;
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  caf::anon_send(c, create_accounts_request{{}, {make_account(1), make_account(2)}, {}});
  s.sched->run();
  CHECK(rec->creates.empty()); // applied, but not durable yet
  s.release();
  REQUIRE(rec->creates.size() == 1);
  CHECK(rec->creates[0].status == outcome::ok);
  CHECK(rec->creates[0].failures.empty());

  // Three requests arrive while the writer holds the first: they become one group.
  caf::anon_send(c, transfers({make_transfer(10, 1, 2, 5)}));
  s.sched->run();
  caf::anon_send(c, transfers({make_transfer(11, 1, 2, 5)}));
  caf::anon_send(c, transfers({make_transfer(12, 1, 2, 5), make_transfer(13, 1, 1, 5)}));
  s.sched->run();
  CHECK(rec->creates.size() == 1);
  s.release(); // group with transfer 10
  CHECK(rec->creates.size() == 2);
  s.release(); // one group with 11, 12 and 13
  REQUIRE(rec->creates.size() == 4);
  CHECK(rec->creates[3].failures.size() == 1);
  CHECK(rec->creates[3].failures[0].code == static_cast<uint32_t>(transfer_result::accounts_must_be_different));
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a failed commit acknowledges nothing and the shard recovers the durable state", "[sim]") {
  sim s;
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  caf::anon_send(c, create_accounts_request{{}, {make_account(1), make_account(2, 1, account_debits_must_not_exceed_credits)}, {}});
  s.sched->run();
  s.release();
  caf::anon_send(c, transfers({make_transfer(10, 1, 2, 70)}));
  s.sched->run();
  s.release();
  REQUIRE(rec->creates.size() == 2);

  // Spend 2's 70 twice over two requests; the group that holds them fails on disk.
  caf::anon_send(c, transfers({make_transfer(20, 2, 1, 70)}));
  s.sched->run();
  caf::anon_send(c, transfers({make_transfer(21, 2, 1, 1)})); // refused: 2 is empty now
  s.sched->run();
  s.release(false);
  REQUIRE(rec->creates.size() == 4);
  CHECK(rec->creates[2].status == outcome::store_unavailable);
  CHECK(rec->creates[3].status == outcome::store_unavailable);

  // Nothing of the failed group stands: 2 still has its 70, and transfer 20 can be retried.
  caf::anon_send(c, lookup_accounts_request{{}, {2}});
  s.sched->run();
  REQUIRE(rec->lookups.size() == 1);
  REQUIRE(rec->lookups[0].accounts.size() == 1);
  CHECK(rec->lookups[0].accounts[0].debits_posted == 0);
  CHECK(rec->lookups[0].accounts[0].credits_posted == 70);
  caf::anon_send(c, transfers({make_transfer(20, 2, 1, 70)}));
  s.sched->run();
  s.release();
  REQUIRE(rec->creates.size() == 5);
  CHECK(rec->creates[4].status == outcome::ok);
  CHECK(rec->creates[4].failures.empty()); // applied now, exactly once
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a shard answers busy when the group being filled would exceed commit_events_max", "[sim]") {
  sim s;
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  caf::anon_send(c, create_accounts_request{{}, {make_account(1), make_account(2)}, {}});
  s.sched->run();
  s.release();
  auto batch = [](u128 first, u128 n) {
    std::vector<transfer> ts;
    for (u128 i = 0; i < n; ++i) ts.push_back(make_transfer(first + i, 1, 2, 1));
    return ts;
  };
  caf::anon_send(c, transfers(batch(100, 900))); // goes to the writer, which holds it
  s.sched->run();
  caf::anon_send(c, transfers(batch(2000, 600))); // fills the next group: 600 of 1000
  s.sched->run();
  caf::anon_send(c, transfers(batch(3000, 500))); // 600 + 500 > 1000: refused
  s.sched->run();
  REQUIRE(rec->creates.size() == 2);
  CHECK(rec->creates[1].status == outcome::busy);
  s.release(); // the 900; the 600 go to the writer
  s.release();
  REQUIRE(rec->creates.size() == 4);
  CHECK(rec->creates[2].status == outcome::ok);
  CHECK(rec->creates[3].status == outcome::ok);
  caf::anon_send(c, transfers(batch(3000, 500))); // room again
  s.sched->run();
  s.release();
  REQUIRE(rec->creates.size() == 5);
  CHECK(rec->creates[4].status == outcome::ok);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a pending transfer expires on the shard's timer and releases its hold", "[sim]") {
  sim s;
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  caf::anon_send(c, create_accounts_request{{}, {make_account(1), make_account(2)}, {}});
  s.sched->run();
  s.release();
  auto pending = make_transfer(10, 1, 2, 40, transfer_pending);
  pending.timeout = 5;
  caf::anon_send(c, transfers({pending}));
  s.sched->run();
  s.release();
  REQUIRE(rec->creates.size() == 2);

  CHECK(rec->creates[1].failures.empty());
  s.clock_ns += 6 * ns_per_s;
  CHECK(s.sched->clock().advance_time(std::chrono::seconds(6)) >= 1);
  s.sched->run();
  s.release(); // the expiry is a change like any other: it is committed
  caf::anon_send(c, lookup_accounts_request{{}, {1}});
  s.sched->run();
  REQUIRE(rec->lookups.size() == 1);
  CHECK(rec->lookups[0].accounts[0].debits_pending == 0);
  // A refused event changes nothing, so its reply needs no commit.
  caf::anon_send(c, transfers({make_resolve(11, 10, transfer_post_pending)}));
  s.sched->run();
  REQUIRE(rec->creates.size() == 3);
  REQUIRE(rec->creates[2].failures.size() == 1);
  CHECK(rec->creates[2].failures[0].code == static_cast<uint32_t>(transfer_result::pending_transfer_expired));
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a request past its deadline is refused without being applied", "[sim]") {
  sim s;
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  create_accounts_request late{{}, {make_account(1)}, {}};
  late.ctx.deadline_ns = s.clock_ns - 1;
  caf::anon_send(c, late);
  s.sched->run();
  REQUIRE(rec->creates.size() == 1);
  CHECK(rec->creates[0].status == outcome::deadline_exceeded);
  caf::anon_send(c, lookup_accounts_request{{}, {1}});
  s.sched->run();
  REQUIRE(rec->lookups.size() == 1);
  CHECK(rec->lookups[0].accounts.empty());
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a full store makes the shard refuse changes without retrying, and serve reads", "[sim]") {
  sim s;
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  caf::anon_send(c, create_accounts_request{{}, {make_account(1), make_account(2)}, {}});
  s.sched->run();
  s.release();
  caf::anon_send(c, transfers({make_transfer(10, 1, 2, 5)}));
  s.sched->run();
  caf::anon_send(s.writer, full_atom::value);
  s.sched->run();
  REQUIRE(rec->creates.size() == 2);
  CHECK(rec->creates[1].status == outcome::store_unavailable);

  // The next change is refused at once: nothing reaches the writer.
  caf::anon_send(c, transfers({make_transfer(11, 1, 2, 5)}));
  s.sched->run();
  REQUIRE(rec->creates.size() == 3);
  CHECK(rec->creates[2].status == outcome::store_unavailable);
  caf::anon_send(c, lookup_accounts_request{{}, {1}});
  s.sched->run();
  REQUIRE(rec->lookups.size() == 1);
  REQUIRE(rec->lookups[0].status == outcome::ok);
  CHECK(rec->lookups[0].accounts.at(0).debits_posted == 0); // transfer 10 never became durable
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("with a commit delay, requests arriving within it share one group", "[sim]") {
  sim s(1'000'000); // 1 ms
  auto rec = std::make_shared<recorder>();
  auto c = s.sys->spawn(client, s.shard, rec);
  caf::anon_send(c, create_accounts_request{{}, {make_account(1), make_account(2)}, {}});
  s.sched->run();
  s.sched->clock().advance_time(std::chrono::milliseconds(1));
  s.sched->run();
  s.release();
  REQUIRE(rec->creates.size() == 1);
  caf::anon_send(c, transfers({make_transfer(10, 1, 2, 5)}));
  caf::anon_send(c, transfers({make_transfer(11, 1, 2, 5)}));
  s.sched->run();
  CHECK(rec->creates.size() == 1); // waiting for the delay, nothing with the writer
  CHECK(s.sched->clock().advance_time(std::chrono::milliseconds(1)) >= 1);
  s.sched->run();
  s.release(); // one group holds both
  CHECK(rec->creates.size() == 3);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}
