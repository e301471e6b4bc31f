// Deterministic simulations of the directory over two shards on CAF's test_coordinator, with
// the shards' writers held and failed on command: what happens to a saga when a shard fails
// in the middle of it. Tagged [sim].
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/directory.hpp"
#include "actors/shard.hpp"
#include "ledger/system_ids.hpp"
#include "tests/actors/held_writer.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/process.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using namespace kassa::test;
namespace sid = kassa::ledger::system_ids;

namespace {

// The directory's timer message (sweeps, and retries of unresolved sagas).
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;

struct two_shards {
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<std::shared_ptr<ks::store>> stores;
  std::vector<std::shared_ptr<size_t>> held;
  std::vector<caf::actor> writers; // held_writer: a writer_actor that also takes release_atom
  std::vector<shard_actor> shards;
  caf::actor directory;
  uint64_t clock_ns = 1'000'000'000'000;

  two_shards() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    for (uint32_t i = 0; i < 2; ++i) {
      ks::options o;
      o.path = dir.path() + "/shard-" + std::to_string(i);
      o.durability = ks::durability::none;
      o.map_size_bytes = 64ull << 20;
      ks::error err;
      stores.push_back(std::shared_ptr<ks::store>(ks::store::open(o, err)));
      REQUIRE(stores.back());
      held.push_back(std::make_shared<size_t>(0));
      writers.push_back(sys->spawn(held_writer, stores.back(), held.back()));
      shard_options so;
      so.shard = i;
      so.store = stores.back();
      so.writer = caf::actor_cast<writer_actor>(writers.back());
      so.clock = [this] { return clock_ns; };
      shards.push_back(spawn_shard(*sys, so, err));
      REQUIRE(shards.back());
    }
    ks::error err;
    directory_options d;
    d.shards = shards;
    d.saga_log = std::shared_ptr<ks::saga_log>(ks::saga_log::open(dir.path() + "/sagas", ks::durability::none, 16u << 20, err));
    REQUIRE(d.saga_log);
    d.saga_writer_detached = false;
    d.sweep_interval_ns = 3600ull * 1'000'000'000; // the test sends the timer's message itself
    d.clock = [this] { return clock_ns; };
    std::string error;
    directory = caf::actor_cast<caf::actor>(spawn_directory(*sys, d, error));
    REQUIRE(directory);
    sched->run();
  }
  ~two_shards() {
    for (auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    sched->run();
  }
  // Commits (or fails) the group shard i's writer holds.
  void release(uint32_t i, bool succeed = true) {
    REQUIRE(*held[i] > 0);
    caf::anon_send(writers[i], release_atom::value, succeed);
    sched->run();
  }
  // Commits every held group until no writer holds one.
  void settle() {
    for (int round = 0; round < 100 && (*held[0] > 0 || *held[1] > 0); ++round) {
      for (uint32_t i = 0; i < 2; ++i) if (*held[i] > 0) release(i);
    }
  }
};

struct replies {
  std::vector<create_reply> creates;
  std::vector<accounts_reply> accounts;
  std::vector<transfers_reply> transfers;
};

caf::behavior client(caf::event_based_actor* self, caf::actor to, std::shared_ptr<replies> rec) {
  return {
      [=](create_transfers_request& r) { self->request(to, caf::infinite, std::move(r)).then([rec](create_reply& x) { rec->creates.push_back(x); }); },
      [=](create_accounts_request& r) { self->request(to, caf::infinite, std::move(r)).then([rec](create_reply& x) { rec->creates.push_back(x); }); },
      [=](lookup_accounts_request& r) { self->request(to, caf::infinite, std::move(r)).then([rec](accounts_reply& x) { rec->accounts.push_back(x); }); },
      [=](caf::actor dest, lookup_transfers_request& r) {
        self->request(dest, caf::infinite, std::move(r)).then([rec](transfers_reply& x) { rec->transfers.push_back(x); });
      },
  };
}

u128 id_in(uint32_t shard, uint32_t k = 0) {
  for (u128 id = 1;; ++id) if (shard_of(id, 2) == shard && k-- == 0) return id;
}

// Accounts a (shard 0) and b (shard 1), and a first transfer of 5 between them, all durable:
// the clearing accounts exist from here on, so the next saga's legs are one group per shard.
void two_accounts_settled(two_shards& s, caf::actor c, const replies& rec, u128 from, u128 to) {
  caf::anon_send(c, create_accounts_request{{}, {make_account(id_in(0)), make_account(id_in(1))}, {}});
  s.sched->run();
  s.settle();
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(1, from, to, 5)}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec.creates.size() == 2);
  REQUIRE(rec.creates[0].failures.empty());
  REQUIRE(rec.creates[1].failures.empty());
}

} // namespace

TEST_CASE("a shard failing while a saga's legs commit: nothing is acknowledged, the round is applied again later", "[sim][directory]") {
  two_shards s;
  auto rec = std::make_shared<replies>();
  auto c = s.sys->spawn(client, s.directory, rec);
  const u128 a = id_in(0), b = id_in(1);
  two_accounts_settled(s, c, *rec, b, a);

  caf::anon_send(c, create_transfers_request{{}, {make_transfer(77, a, b, 40)}, {}});
  s.sched->run();
  // The legs wait with both writers; nothing is answered.
  REQUIRE(*s.held[0] == 1);
  REQUIRE(*s.held[1] == 1);
  s.release(0);
  s.release(1, false); // b's leg is lost on disk
  REQUIRE(rec->creates.size() == 3);
  CHECK(rec->creates[2].status == outcome::store_unavailable); // not acknowledged

  // The directory applies the round again at once; shard 1 fails that commit too.
  REQUIRE(*s.held[1] == 1);
  s.release(1, false);
  // The round stands in shard 0 only: a request naming its accounts or ids is answered
  // store_unavailable until it stands whole; one that names none goes through.
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(77, a, b, 40)}, {}});
  s.sched->run();
  REQUIRE(rec->creates.size() == 4);
  CHECK(rec->creates[3].status == outcome::store_unavailable);
  const u128 a2 = id_in(0, 1), a3 = id_in(0, 2);
  caf::anon_send(c, create_accounts_request{{}, {make_account(a2), make_account(a3)}, {}});
  s.sched->run();
  s.settle();
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(90, a2, a3, 3)}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->creates.size() == 6);
  CHECK(rec->creates[5].status == outcome::ok);
  CHECK(rec->creates[5].failures.empty());
  caf::anon_send(c, lookup_accounts_request{{}, {a, b}});
  s.sched->run();
  REQUIRE(rec->accounts.size() == 1);
  CHECK(rec->accounts[0].accounts.at(0).debits_posted == 40);
  CHECK(rec->accounts[0].accounts.at(1).credits_posted == 0);

  // The timer: the directory applies the round again; shard 0 finds its part there already.
  s.clock_ns += 2'000'000'000;
  caf::anon_send(s.directory, sweep_atom::value);
  s.sched->run();
  s.settle();
  // The client's retry then finds the transfer done, once.
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(77, a, b, 40)}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->creates.size() == 7);
  REQUIRE(rec->creates[6].failures.size() == 1);
  CHECK(rec->creates[6].failures[0].code == static_cast<uint32_t>(transfer_result::exists));
  caf::anon_send(c, lookup_accounts_request{{}, {a, b}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->accounts.size() == 2);
  CHECK(rec->accounts[1].accounts.at(0).debits_posted == 40);
  CHECK(rec->accounts[1].accounts.at(0).credits_posted == 5);
  CHECK(rec->accounts[1].accounts.at(1).credits_posted == 40);
  CHECK(rec->accounts[1].accounts.at(1).credits_pending == 0);
  CHECK(rec->accounts[1].accounts.at(1).debits_posted == 5);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a shard that took its part of a round late stamps it as the round did: one timestamp per transfer", "[sim][directory]") {
  two_shards s;
  auto rec = std::make_shared<replies>();
  auto c = s.sys->spawn(client, s.directory, rec);
  const u128 a = id_in(0), b = id_in(1);
  two_accounts_settled(s, c, *rec, b, a);
  const u128 b2 = id_in(1, 1), b3 = id_in(1, 2);
  caf::anon_send(c, create_accounts_request{{}, {make_account(b2), make_account(b3)}, {}});
  s.sched->run();
  s.settle();

  // Shard 1 fails its leg of 77, twice (the round, and its first retry).
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(77, a, b, 40)}, {}});
  s.sched->run();
  s.release(0);
  s.release(1, false);
  REQUIRE(rec->creates.size() == 4);
  CHECK(rec->creates[3].status == outcome::store_unavailable);
  REQUIRE(*s.held[1] == 1);
  s.release(1, false);

  // A later round for shard 1 alone: shard 1 takes the late leg first, then the round.
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(91, b2, b3, 1)}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->creates.size() == 5);
  CHECK(rec->creates[4].status == outcome::ok);
  CHECK(rec->creates[4].failures.empty());

  // Both legs of 77 carry one timestamp, below 91's.
  caf::anon_send(c, caf::actor_cast<caf::actor>(s.shards[0]), lookup_transfers_request{{}, {77}});
  caf::anon_send(c, caf::actor_cast<caf::actor>(s.shards[1]), lookup_transfers_request{{}, {77, 91}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->transfers.size() == 2);
  const auto& first = rec->transfers[0].transfers.size() == 1 ? rec->transfers[0] : rec->transfers[1];
  const auto& second = rec->transfers[0].transfers.size() == 1 ? rec->transfers[1] : rec->transfers[0];
  REQUIRE(first.transfers.size() == 1);
  REQUIRE(second.transfers.size() == 2);
  CHECK(first.transfers[0].timestamp == second.transfers[0].timestamp);
  CHECK(second.transfers[0].timestamp < second.transfers[1].timestamp);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a refused transfer across shards writes nothing and uses no id, also inside a round", "[sim][directory]") {
  two_shards s;
  auto rec = std::make_shared<replies>();
  auto c = s.sys->spawn(client, s.directory, rec);
  const u128 a = id_in(0), b = id_in(1);
  caf::anon_send(c, create_accounts_request{{}, {make_account(a, 1, account_debits_must_not_exceed_credits), make_account(b)}, {}});
  s.sched->run();
  s.settle();
  // b -> a 50, then a -> b 30 and a -> b 30: the second does not fit after the first.
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(1, b, a, 50), make_transfer(2, a, b, 30), make_transfer(3, a, b, 30)}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->creates.size() == 2);
  REQUIRE(rec->creates[1].failures.size() == 1);
  CHECK(rec->creates[1].failures[0].index == 2);
  CHECK(rec->creates[1].failures[0].code == static_cast<uint32_t>(transfer_result::exceeds_credits));
  // Id 3 is free: with more money it applies.
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(4, b, a, 10), make_transfer(3, a, b, 30)}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->creates.size() == 3);
  CHECK(rec->creates[2].failures.empty());
  caf::anon_send(c, lookup_accounts_request{{}, {a, b}});
  s.sched->run();
  REQUIRE(rec->accounts.size() == 1);
  CHECK(rec->accounts[0].accounts.at(0).debits_posted == 60);
  CHECK(rec->accounts[0].accounts.at(0).credits_posted == 60);
  CHECK(rec->accounts[0].accounts.at(1).credits_posted == 60);
  CHECK(rec->accounts[0].accounts.at(1).debits_posted == 60);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("a shard failing while a chain of accounts across shards commits: the chain waits, then stands whole", "[sim][directory]") {
  two_shards s;
  auto rec = std::make_shared<replies>();
  auto c = s.sys->spawn(client, s.directory, rec);
  const account a = make_account(id_in(0, 5), 1, account_linked), b = make_account(id_in(1, 5));
  caf::anon_send(c, create_accounts_request{{}, {a, b}, {}});
  s.sched->run();
  REQUIRE(*s.held[0] == 1);
  REQUIRE(*s.held[1] == 1);
  s.release(0);
  s.release(1, false); // b is lost on disk
  REQUIRE(rec->creates.size() == 1);
  CHECK(rec->creates[0].status == outcome::store_unavailable);
  REQUIRE(*s.held[1] == 1); // applied again at once; fails again
  s.release(1, false);

  // Until the chain stands whole, a request naming its accounts waits for it.
  caf::anon_send(c, create_accounts_request{{}, {a, b}, {}});
  s.sched->run();
  caf::anon_send(c, create_transfers_request{{}, {make_transfer(5, a.id, b.id, 1)}, {}});
  s.sched->run();
  REQUIRE(rec->creates.size() == 3);
  CHECK(rec->creates[1].status == outcome::store_unavailable);
  CHECK(rec->creates[2].status == outcome::store_unavailable);

  // The timer applies the round again; then the retry finds the chain created, once.
  s.clock_ns += 2'000'000'000;
  caf::anon_send(s.directory, sweep_atom::value);
  s.sched->run();
  s.settle();
  caf::anon_send(c, create_accounts_request{{}, {a, b}, {}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->creates.size() == 4);
  REQUIRE(rec->creates[3].status == outcome::ok);
  REQUIRE(rec->creates[3].failures.size() == 2);
  CHECK(rec->creates[3].failures[0].code == static_cast<uint32_t>(account_result::exists));
  CHECK(rec->creates[3].failures[1].code == static_cast<uint32_t>(account_result::linked_event_failed));
  caf::anon_send(c, lookup_accounts_request{{}, {a.id, b.id}});
  s.sched->run();
  s.settle();
  REQUIRE(rec->accounts.size() == 1);
  CHECK(rec->accounts[0].accounts.size() == 2);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}
