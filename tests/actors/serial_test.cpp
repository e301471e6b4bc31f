// The ledger's messages (actors/messages.hpp) through CAF's binary serializer and back: every
// field, u128 values with both halves set included, survives; bytes cut short or a list of
// u128 halves of odd length are refused with an error, never a crash. Tagged [serial].
#include <catch2/catch.hpp>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <cstring>

#include "actors/messages.hpp"
#include "tests/ledger/ledger_fixture.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using kassa::test::make_account;
using kassa::test::make_transfer;

namespace {

const u128 big = (u128{0x0123456789abcdefull} << 64) | 0xfedcba9876543210ull;

template <class T>
std::vector<char> bytes_of(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(x));
  return buf;
}

template <class T>
T round_trip(caf::actor_system& sys, T x) {
  const std::vector<char> buf = bytes_of(sys, std::move(x));
  T out{};
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(out));
  CHECK(source.remaining() == 0);
  return out;
}

template <class T>
bool same_bytes(const T& a, const T& b) {
  static_assert(std::is_trivially_copyable_v<T>);
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

account full_account() {
  account a = make_account(big, 7, account_history | account_debits_must_not_exceed_credits, 42);
  a.debits_pending = big - 1;
  a.debits_posted = big - 2;
  a.credits_pending = big - 3;
  a.credits_posted = big - 4;
  a.user_data_128 = big - 5;
  a.user_data_64 = 64;
  a.user_data_32 = 32;
  a.timestamp = 1234567890123;
  return a;
}

transfer full_transfer() {
  transfer t = make_transfer(big, big - 1, big - 2, big - 3, transfer_pending | transfer_linked, 9);
  t.code = 3;
  t.pending_id = big - 4;
  t.user_data_128 = big - 5;
  t.user_data_64 = 64;
  t.user_data_32 = 32;
  t.timeout = 3600;
  t.timestamp = 987654321;
  return t;
}

} // namespace

TEST_CASE("the ledger's messages survive serialisation, u128 halves and all", "[serial]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  request_context ctx{big, big - 9, 77, 88, true, 99};

  SECTION("a batch of transfers, with kassa's marks and stamps") {
    create_transfers_request req{ctx, {full_transfer(), make_transfer(5, 6, 7, 8)}, {0, system_unlinked}, {11, 12}};
    auto got = round_trip(sys, req);
    CHECK(got.ctx.trace_id == big);
    CHECK(got.ctx.business_id == big - 9);
    CHECK(got.ctx.client_id == 77);
    CHECK(got.ctx.deadline_ns == 88);
    CHECK(got.ctx.shadow);
    CHECK(got.ctx.handed_ns == 99);
    REQUIRE(got.events.size() == 2);
    CHECK(same_bytes(got.events[0], req.events[0]));
    CHECK(same_bytes(got.events[1], req.events[1]));
    CHECK(got.system == req.system);
    CHECK(got.stamps == req.stamps);
  }
  SECTION("accounts, and the replies") {
    auto accounts = round_trip(sys, create_accounts_request{ctx, {full_account()}, {}, {}});
    REQUIRE(accounts.events.size() == 1);
    CHECK(same_bytes(accounts.events[0], full_account()));
    auto reply = round_trip(sys, create_reply{outcome::ok, {{1, 21}, {3, 22}}, 555});
    CHECK(reply.status == outcome::ok);
    REQUIRE(reply.failures.size() == 2);
    CHECK(reply.failures[1].index == 3);
    CHECK(reply.failures[1].code == 22);
    CHECK(reply.timestamp_last == 555);
    auto rows = round_trip(sys, accounts_reply{outcome::too_many, {full_account()}, 7});
    CHECK(rows.status == outcome::too_many);
    REQUIRE(rows.accounts.size() == 1);
    CHECK(same_bytes(rows.accounts[0], full_account()));
  }
  SECTION("lookups, probes and pages name u128 ids") {
    auto lookup = round_trip(sys, lookup_transfers_request{ctx, {big, 1, big - 1}});
    CHECK(lookup.ids == std::vector<u128>{big, 1, big - 1});
    auto probe = round_trip(sys, probe_reply{outcome::ok, {probe_entry{4, full_transfer(), pending_status::voided, 66}}});
    REQUIRE(probe.entries.size() == 1);
    CHECK(probe.entries[0].index == 4);
    CHECK(same_bytes(probe.entries[0].transfer, full_transfer()));
    CHECK(probe.entries[0].status == pending_status::voided);
    CHECK(probe.entries[0].expires_at_ns == 66);
    auto page = round_trip(sys, transfers_by_id_reply{outcome::ok, {full_transfer()}, big});
    CHECK(page.next == big);
    auto due = round_trip(sys, due_pending_reply{outcome::busy, {big, 2}, 5});
    CHECK(due.status == outcome::busy);
    CHECK(due.ids == std::vector<u128>{big, 2});
    CHECK(due.next_ns == 5);
  }
  SECTION("account queries carry their filter") {
    store::account_filter f;
    f.account_id = big;
    f.timestamp_min = 1;
    f.timestamp_max = 2;
    f.limit = 3;
    f.debits = false;
    f.reversed = true;
    auto got = round_trip(sys, account_balances_request{ctx, f});
    CHECK(got.filter.account_id == big);
    CHECK(got.filter.timestamp_min == 1);
    CHECK(got.filter.timestamp_max == 2);
    CHECK(got.filter.limit == 3);
    CHECK(!got.filter.debits);
    CHECK(got.filter.credits);
    CHECK(got.filter.reversed);
    auto balances = round_trip(sys, balances_reply{outcome::ok, {account_balance{big, big - 1, 3, 4, 5, 0}}});
    REQUIRE(balances.balances.size() == 1);
    CHECK(same_bytes(balances.balances[0], account_balance{big, big - 1, 3, 4, 5, 0}));
  }
  SECTION("a group commit and its outcome") {
    commit_group g;
    g.group = 9;
    g.changes.accounts_created = {full_account()};
    g.changes.accounts_updated = {big, 3};
    g.changes.account_rows = {full_account(), full_account()};
    g.changes.transfers_created = {full_transfer()};
    g.changes.pending_updates = {pending_update{big, pending_status::posted, 10, 11}};
    g.changes.history = {history_entry{big, account_balance{1, 2, 3, 4, 5, 0}}};
    g.changes.timestamp_last = 12;
    auto got = round_trip(sys, g);
    CHECK(got.group == 9);
    CHECK(got.changes.accounts_updated == g.changes.accounts_updated);
    REQUIRE(got.changes.account_rows.size() == 2);
    CHECK(same_bytes(got.changes.transfers_created.at(0), full_transfer()));
    REQUIRE(got.changes.pending_updates.size() == 1);
    CHECK(got.changes.pending_updates[0].id == big);
    CHECK(got.changes.pending_updates[0].status == pending_status::posted);
    CHECK(got.changes.pending_updates[0].timestamp == 11);
    REQUIRE(got.changes.history.size() == 1);
    CHECK(got.changes.history[0].account_id == big);
    CHECK(got.changes.timestamp_last == 12);
    commit_done done{9, store::error{store::errc::io, "disk gone"}, {}};
    done.stats.transfers = 5;
    done.stats.checkpoint = true;
    done.stats.sync_ns = 8;
    auto back = round_trip(sys, done);
    CHECK(back.error.code == store::errc::io);
    CHECK(back.error.message == "disk gone");
    CHECK(back.stats.transfers == 5);
    CHECK(back.stats.checkpoint);
    CHECK(back.stats.sync_ns == 8);
  }
  SECTION("a message renders as text") {
    const std::string s = caf::deep_to_string(create_reply{outcome::busy, {{1, 2}}, 3});
    CHECK(s.find("kassa.create_reply") != std::string::npos);
  }
}

TEST_CASE("bytes cut short, or u128 halves of odd length, are refused", "[serial]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  const std::vector<char> buf = bytes_of(sys, create_transfers_request{{}, {full_transfer()}, {}, {}});
  for (size_t cut : {size_t{0}, size_t{1}, buf.size() / 2, buf.size() - 1}) {
    create_transfers_request out;
    caf::binary_deserializer source{sys, buf.data(), cut};
    CHECK(source(out));
  }
  // A probe_request is its list of halves: three halves make no u128 list.
  std::vector<uint64_t> halves{1, 2, 3};
  std::vector<char> odd;
  caf::binary_serializer sink{sys, odd};
  REQUIRE(!sink(halves));
  probe_request out;
  caf::binary_deserializer source{sys, odd};
  CHECK(source(out));
}
