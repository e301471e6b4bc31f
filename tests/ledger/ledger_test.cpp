// Behaviour of the ledger state machine as a user of the ledger sees it.
#include <catch2/catch.hpp>

#include "tests/ledger/ledger_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
using R = transfer_result;

namespace {

state_machine& with_accounts(state_machine& sm, std::vector<account> as) {
  auto rs = sm.create_accounts(as.data(), as.size(), 1000);
  for (auto r : rs) REQUIRE(r == account_result::ok);
  return sm;
}

} // namespace

TEST_CASE("a transfer moves money from the debit to the credit account", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 25)) == R::ok);
  CHECK(sm.account_find(1)->debits_posted == 25);
  CHECK(sm.account_find(2)->credits_posted == 25);
  CHECK(sm.transfer_find(10)->timestamp > sm.account_find(2)->timestamp);
}

TEST_CASE("timestamps are strictly increasing even when the clock stands still or goes back", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  std::vector<transfer> ts{make_transfer(10, 1, 2, 1), make_transfer(11, 1, 2, 1)};
  sm.create_transfers(ts.data(), 2, 5000);
  REQUIRE(transfer_one(sm, make_transfer(12, 1, 2, 1), 10) == R::ok);
  CHECK(sm.transfer_find(10)->timestamp < sm.transfer_find(11)->timestamp);
  CHECK(sm.transfer_find(11)->timestamp < sm.transfer_find(12)->timestamp);
}

TEST_CASE("shard k of n stamps only timestamps equal to k modulo n, still strictly increasing", "[ledger]") {
  for (uint32_t lane : {0u, 1u, 2u}) {
    state_machine sm;
    sm.timestamp_lanes_set(lane, 3);
    with_accounts(sm, {make_account(1), make_account(2)});
    std::vector<transfer> ts{make_transfer(10, 1, 2, 1), make_transfer(11, 1, 2, 1), make_transfer(12, 1, 2, 1)};
    sm.create_transfers(ts.data(), 3, 7001);
    REQUIRE(transfer_one(sm, make_transfer(13, 1, 2, 1), 10) == R::ok); // the clock went back
    uint64_t last = 0;
    for (u128 id : {10, 11, 12, 13}) {
      const uint64_t t = sm.transfer_find(id)->timestamp;
      CHECK(t % 3 == lane);
      CHECK(t > last);
      CHECK(t >= 7001);
      CHECK(t < 7001 + 4 * 3 + 3); // never more than a lane's width past max(now, last + 1)
      last = t;
    }
    CHECK(sm.timestamp_last() == last);
  }
}

TEST_CASE("a batch stamped by the directory keeps its stamps while they rise; a repeat below them moves no clock", "[ledger]") {
  state_machine sm;
  sm.timestamp_lanes_set(1, 3);
  with_accounts(sm, {make_account(1), make_account(2)});
  std::vector<transfer> ts{make_transfer(10, 1, 2, 1), make_transfer(11, 1, 2, 1), make_transfer(12, 1, 2, 0)};
  const std::vector<uint64_t> stamps{5000, 5002, 5003};
  auto rs = sm.create_transfers(ts.data(), 3, 1000, nullptr, stamps.data());
  CHECK(rs[2] == R::amount_must_not_be_zero);
  CHECK(sm.transfer_find(10)->timestamp == 5000); // any lane: the directory's stamps are unique
  CHECK(sm.transfer_find(11)->timestamp == 5002);
  CHECK(sm.timestamp_last() == 5003); // a refused event's stamp is used up, as without stamps
  // The same round again (recovery): every event exists, and the clock stays where it was.
  rs = sm.create_transfers(ts.data(), 2, 9'000'000, nullptr, stamps.data());
  CHECK(rs[0] == R::exists);
  CHECK(rs[1] == R::exists);
  CHECK(sm.timestamp_last() == 5003);
  // A new event with a stamp at or below the latest gets one of the shard's own, above it.
  transfer late = make_transfer(13, 1, 2, 1);
  const uint64_t stale = 4000;
  REQUIRE(sm.create_transfers(&late, 1, 6000, nullptr, &stale)[0] == R::ok);
  CHECK(sm.transfer_find(13)->timestamp > 5003);
  CHECK(sm.transfer_find(13)->timestamp % 3 == 1);
  // Accounts too.
  const account a = make_account(3);
  const uint64_t at = 7000;
  REQUIRE(sm.create_accounts(&a, 1, 0, nullptr, &at)[0] == account_result::ok);
  CHECK(sm.account_find(3)->timestamp == 7000);
}

TEST_CASE("a pending transfer holds funds; a partial post moves part and releases the rest", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 100, transfer_pending)) == R::ok);
  CHECK(sm.account_find(1)->debits_pending == 100);
  CHECK(sm.account_find(2)->credits_pending == 100);
  REQUIRE(transfer_one(sm, make_resolve(11, 10, transfer_post_pending, 60)) == R::ok);
  CHECK(sm.account_find(1)->debits_pending == 0);
  CHECK(sm.account_find(1)->debits_posted == 60);
  CHECK(sm.account_find(2)->credits_posted == 60);
  CHECK(sm.pending_find(10).status == pending_status::posted);
  // The stored post names the accounts it inherited from the pending transfer.
  CHECK(sm.transfer_find(11)->debit_account_id == 1);
  CHECK(sm.transfer_find(11)->amount == 60);
  // Repeating the post, as a client retry would, is recognised.
  CHECK(transfer_one(sm, make_resolve(11, 10, transfer_post_pending, 60)) == R::exists);
}

TEST_CASE("a post with amount zero posts the whole pending amount", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 100, transfer_pending)) == R::ok);
  REQUIRE(transfer_one(sm, make_resolve(11, 10, transfer_post_pending)) == R::ok);
  CHECK(sm.account_find(2)->credits_posted == 100);
  CHECK(transfer_one(sm, make_resolve(11, 10, transfer_post_pending)) == R::exists);
}

TEST_CASE("a void releases the hold and moves nothing", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 100, transfer_pending)) == R::ok);
  REQUIRE(transfer_one(sm, make_resolve(11, 10, transfer_void_pending)) == R::ok);
  const account* a = sm.account_find(1);
  CHECK(a->debits_pending == 0);
  CHECK(a->debits_posted == 0);
  CHECK(sm.pending_find(10).status == pending_status::voided);
}

TEST_CASE("a pending transfer that times out releases its hold", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  auto t = make_transfer(10, 1, 2, 100, transfer_pending);
  t.timeout = 2;
  REQUIRE(transfer_one(sm, t, ns_per_s) == R::ok);
  const uint64_t deadline = sm.pending_deadline_next_ns();
  CHECK(deadline == sm.transfer_find(10)->timestamp + 2 * ns_per_s);
  CHECK(sm.expire_pending(deadline - 1) == 0);
  CHECK(sm.account_find(1)->debits_pending == 100);
  CHECK(sm.expire_pending(deadline) == 1);
  CHECK(sm.account_find(1)->debits_pending == 0);
  CHECK(sm.account_find(2)->credits_pending == 0);
  CHECK(sm.pending_find(10).status == pending_status::expired);
  CHECK(sm.pending_deadline_next_ns() == 0);
  const change_set changes = sm.changes_take();
  REQUIRE(changes.pending_updates.size() == 2);
  CHECK(changes.pending_updates[0].timestamp == sm.transfer_find(10)->timestamp);
  CHECK(changes.pending_updates[1].status == pending_status::expired);
  CHECK(changes.pending_updates[1].timestamp > sm.transfer_find(10)->timestamp);
  CHECK(changes.pending_updates[1].timestamp == changes.timestamp_last); // the expiry's own stamp
  CHECK(transfer_one(sm, make_resolve(11, 10, transfer_post_pending), deadline + 1) ==
        R::pending_transfer_expired);
}

TEST_CASE("debits_must_not_exceed_credits holds exactly at the boundary", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2, 1, account_debits_must_not_exceed_credits)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 100)) == R::ok);
  CHECK(transfer_one(sm, make_transfer(11, 2, 1, 60, transfer_pending)) == R::ok);
  CHECK(transfer_one(sm, make_transfer(12, 2, 1, 41)) == R::exceeds_credits);
  CHECK(transfer_one(sm, make_transfer(13, 2, 1, 40)) == R::ok);
  CHECK(transfer_one(sm, make_transfer(14, 2, 1, 1)) == R::exceeds_credits);
}

TEST_CASE("a balancing debit moves no more than the available balance", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2, 1, account_debits_must_not_exceed_credits)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 70)) == R::ok);
  REQUIRE(transfer_one(sm, make_transfer(11, 2, 1, 1000, transfer_balancing_debit)) == R::ok);
  CHECK(sm.transfer_find(11)->amount == 70);
  CHECK(sm.account_find(2)->debits_posted == 70);
  CHECK(transfer_one(sm, make_transfer(12, 2, 1, 0, transfer_balancing_debit)) == R::exceeds_credits);
  // A retry of the balancing transfer with the same cap is the same transfer.
  CHECK(transfer_one(sm, make_transfer(11, 2, 1, 1000, transfer_balancing_debit)) == R::exists);
}

TEST_CASE("a closing transfer closes the account; voiding it reopens the account", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 1, transfer_pending | transfer_closing_debit)) == R::ok);
  CHECK(has(sm.account_find(1)->flags, account_closed));
  CHECK(transfer_one(sm, make_transfer(11, 1, 2, 1)) == R::debit_account_already_closed);
  REQUIRE(transfer_one(sm, make_resolve(12, 10, transfer_void_pending)) == R::ok);
  CHECK_FALSE(has(sm.account_find(1)->flags, account_closed));
  CHECK(transfer_one(sm, make_transfer(11, 1, 2, 1)) == R::ok);
}

TEST_CASE("posting a closing transfer keeps the account closed", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 1, transfer_pending | transfer_closing_debit)) == R::ok);
  REQUIRE(transfer_one(sm, make_resolve(11, 10, transfer_post_pending)) == R::ok);
  CHECK(has(sm.account_find(1)->flags, account_closed));
}

TEST_CASE("a linked chain of transfers succeeds or fails as one", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2), make_account(3, 1, account_debits_must_not_exceed_credits)});
  std::vector<transfer> chain{make_transfer(10, 1, 2, 5, transfer_linked),
                              make_transfer(11, 2, 1, 5, transfer_linked | transfer_pending),
                              make_transfer(12, 3, 1, 5), // fails: account 3 has no credits
                              make_transfer(13, 1, 2, 7)};
  auto r = sm.create_transfers(chain.data(), chain.size(), 1000);
  CHECK(r[0] == R::linked_event_failed);
  CHECK(r[1] == R::linked_event_failed);
  CHECK(r[2] == R::exceeds_credits);
  CHECK(r[3] == R::ok);
  CHECK(sm.transfer_find(10) == nullptr);
  CHECK(sm.transfer_find(11) == nullptr);
  CHECK(sm.pending_find(11).status == pending_status::none);
  CHECK(sm.account_find(1)->debits_posted == 7);
  CHECK(sm.account_find(2)->debits_pending == 0);
  auto changes = sm.changes_take();
  REQUIRE(changes.transfers_created.size() == 1);
  CHECK(changes.transfers_created[0].id == 13);
  CHECK(changes.pending_updates.empty());
}

TEST_CASE("a chain that fails after the first event leaves the rest of the chain failed", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  std::vector<transfer> chain{make_transfer(10, 1, 1, 5, transfer_linked), make_transfer(11, 1, 2, 5, transfer_linked),
                              make_transfer(12, 1, 2, 5), make_transfer(13, 1, 2, 5)};
  auto r = sm.create_transfers(chain.data(), chain.size(), 1000);
  CHECK(r[0] == R::accounts_must_be_different);
  CHECK(r[1] == R::linked_event_failed);
  CHECK(r[2] == R::linked_event_failed);
  CHECK(r[3] == R::ok);
}

TEST_CASE("a chain left open at the end of a batch fails whole", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  std::vector<transfer> chain{make_transfer(10, 1, 2, 5, transfer_linked), make_transfer(11, 1, 2, 5, transfer_linked)};
  auto r = sm.create_transfers(chain.data(), chain.size(), 1000);
  CHECK(r[0] == R::linked_event_failed);
  CHECK(r[1] == R::linked_event_chain_open);
  CHECK(sm.account_find(1)->debits_posted == 0);
}

TEST_CASE("a linked chain of accounts is created whole or not at all", "[ledger]") {
  state_machine sm;
  std::vector<account> as{make_account(1, 1, account_linked), make_account(2, 0)};
  auto r = sm.create_accounts(as.data(), as.size(), 1000);
  CHECK(r[0] == account_result::linked_event_failed);
  CHECK(r[1] == account_result::ledger_must_not_be_zero);
  CHECK(sm.account_count() == 0);
  CHECK(sm.changes().accounts_created.empty());
}

TEST_CASE("events of a unit decided whole elsewhere keep linked and balancing as data", "[ledger]") {
  state_machine sm;
  // Accounts marked system_unlinked: `linked` is stored, and opens no chain.
  const account as[2] = {make_account(1, 1, account_linked), make_account(2)};
  const uint8_t unlinked[2] = {system_unlinked, system_unlinked};
  auto ra = sm.create_accounts(as, 2, 1000, unlinked);
  CHECK(ra[0] == account_result::ok);
  CHECK(ra[1] == account_result::ok);
  CHECK(has(sm.account_find(1)->flags, account_linked));
  // A lone linked account so marked is no open chain either.
  const account lone = make_account(3, 1, account_linked);
  CHECK(sm.create_accounts(&lone, 1, 1000, unlinked)[0] == account_result::ok);
  // A balancing leg so marked moves its amount as given, even where a clamp would give
  // another (or refuse): account 1 holds nothing to balance.
  const transfer leg = make_transfer(10, 1, 2, 40, transfer_balancing_debit | transfer_balancing_credit);
  CHECK(sm.create_transfers(&leg, 1, 2000, unlinked)[0] == R::ok);
  CHECK(sm.transfer_find(10)->amount == 40);
  CHECK(sm.account_find(2)->credits_posted == 40);
  // Without the mark, the same event is clamped (and here refused).
  const transfer client = make_transfer(11, 1, 2, 40, transfer_balancing_debit);
  CHECK(sm.create_transfers(&client, 1, 3000)[0] == R::exceeds_credits);
}

TEST_CASE("a history account records its balance after every transfer", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1, 1, account_history), make_account(2)});
  sm.changes_take();
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 5)) == R::ok);
  REQUIRE(transfer_one(sm, make_transfer(11, 2, 1, 3)) == R::ok);
  auto changes = sm.changes_take();
  REQUIRE(changes.history.size() == 2);
  CHECK(changes.history[0].account_id == 1);
  CHECK(changes.history[0].balance.debits_posted == 5);
  CHECK(changes.history[1].balance.credits_posted == 3);
  CHECK(changes.history[1].balance.timestamp == sm.transfer_find(11)->timestamp);
  CHECK(changes.accounts_updated.size() == 2);
}

TEST_CASE("prefetch names only stored transfers that are not in memory", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 5, transfer_pending)) == R::ok);
  REQUIRE(transfer_one(sm, make_transfer(11, 1, 2, 5)) == R::ok);
  sm.changes_take();
  sm.transfers_evict(0, sm.timestamp_last()); // 11 leaves memory; 10 is pending and stays
  sm.transfer_id_load(50); // stored long ago, never resident since recovery
  std::vector<transfer> batch{make_transfer(11, 1, 2, 5), make_transfer(12, 1, 2, 5),
                              make_resolve(13, 10, transfer_void_pending), make_resolve(14, 99, transfer_post_pending),
                              make_resolve(15, 50, transfer_post_pending)};
  auto ids = sm.transfer_ids_to_prefetch(batch.data(), batch.size());
  CHECK(ids == std::vector<u128>{11, 50});
}

TEST_CASE("eviction keeps transfers that are still pending", "[ledger]") {
  state_machine sm;
  with_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(transfer_one(sm, make_transfer(10, 1, 2, 5, transfer_pending)) == R::ok);
  REQUIRE(transfer_one(sm, make_transfer(11, 1, 2, 5)) == R::ok);
  sm.changes_take();
  sm.transfers_evict(0, sm.timestamp_last());
  CHECK(sm.transfer_find(10) != nullptr);
  CHECK(sm.transfer_find(11) == nullptr);
  // Loading it back, as prefetch would, makes a repeat resolve to `exists` again.
  transfer t = make_transfer(11, 1, 2, 5);
  t.timestamp = 1;
  sm.transfer_load(t, {});
  auto again = make_transfer(11, 1, 2, 5);
  CHECK(transfer_one(sm, again) == R::exists);
}

TEST_CASE("u128 text round-trips and rejects overflow", "[ledger]") {
  u128 v = 0;
  CHECK(parse_u128("340282366920938463463374607431768211455", v));
  CHECK(v == u128_max);
  CHECK(to_string_u128(v) == "340282366920938463463374607431768211455");
  CHECK_FALSE(parse_u128("340282366920938463463374607431768211456", v));
  CHECK(parse_u128("0xff", v));
  CHECK(v == 255);
  CHECK_FALSE(parse_u128("12a", v));
  CHECK_FALSE(parse_u128("", v));
}
