// The ledger's messages (actors/messages.hpp) and the payment core's (payment_messages.hpp,
// channel.hpp, reconciler.hpp, accounting.hpp, payments_core.hpp) through CAF's binary
// serializer and back: every field, u128 values with both halves set and names that fill
// their zero-padded field included, survives; bytes cut short or a list of u128 halves of odd
// length are refused with an error, never a crash. Tagged [serial].
#include <catch2/catch.hpp>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <cstring>

#include "actors/accounting.hpp"
#include "actors/channel.hpp"
#include "actors/messages.hpp"
#include "actors/payment_messages.hpp"
#include "actors/payments_core.hpp"
#include "actors/reconciler.hpp"
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

// A record whose every byte is set (no zero, so a name fills its whole field): u128 fields
// get both halves, each value differs with `seed`.
template <class T>
T patterned(uint8_t seed) {
  static_assert(std::is_trivially_copyable_v<T>);
  T x;
  unsigned char bytes[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<unsigned char>(seed + i * 7) | 1;
  std::memcpy(&x, bytes, sizeof(T));
  return x;
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

TEST_CASE("the payment core's messages survive serialisation, records byte for byte", "[serial]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  request_context ctx{big, big - 9, 77, 88, true, 99};
  using namespace kassa::ledger::payments;

  SECTION("a session's submit_payments, lookup_orders and lookup_order_items and their replies") {
    const auto cmd = patterned<payment_command>(1);
    auto req = round_trip(sys, submit_payments_request{ctx, {cmd, patterned<payment_command>(2)}, {840, 978}});
    CHECK(req.ctx.trace_id == big);
    CHECK(req.ctx.handed_ns == 99);
    REQUIRE(req.commands.size() == 2);
    CHECK(same_bytes(req.commands[0], cmd));
    CHECK(req.commands[0].key > u128{1} << 64);
    CHECK(same_bytes(req.commands[1], patterned<payment_command>(2)));
    CHECK(req.ledgers == std::vector<uint32_t>{840, 978});

    const auto reply = patterned<payment_reply>(3);
    auto replies = round_trip(sys, payments_reply{outcome::store_unavailable, {reply}});
    CHECK(replies.status == outcome::store_unavailable);
    REQUIRE(replies.replies.size() == 1);
    CHECK(same_bytes(replies.replies[0], reply));

    auto lookup = round_trip(sys, lookup_orders_request{ctx, {big, 3}});
    CHECK(lookup.ids == std::vector<u128>{big, 3});
    const auto row = patterned<order>(4);
    auto orders = round_trip(sys, orders_reply{outcome::too_many, {row, patterned<order>(5)}});
    CHECK(orders.status == outcome::too_many);
    REQUIRE(orders.orders.size() == 2);
    CHECK(same_bytes(orders.orders[0], row));
    CHECK(same_bytes(orders.orders[1], patterned<order>(5)));

    auto items_req = round_trip(sys, lookup_items_request{ctx, {big - 1}, 4096});
    CHECK(items_req.ids == std::vector<u128>{big - 1});
    CHECK(items_req.items_max == 4096);
    const auto item = patterned<order_item>(6);
    auto items = round_trip(sys, items_reply{outcome::ok, {item}});
    REQUIRE(items.items.size() == 1);
    CHECK(same_bytes(items.items[0], item));
  }
  SECTION("a channel's calls, events, statements and health") {
    auto call = round_trip(sys, payment_call{ctx, big, call_kind::refund, big - 1, 978, big - 2, big - 3, "tok"});
    CHECK(call.ctx.business_id == big - 9);
    CHECK(call.payment_id == big);
    CHECK(call.kind == call_kind::refund);
    CHECK(call.amount == big - 1);
    CHECK(call.ledger == 978);
    CHECK(call.account_id == big - 2);
    CHECK(call.refund_of == big - 3);
    CHECK(call.credential == "tok");
    auto result = round_trip(sys, call_result{call_status::partial, big, big - 1, "ref-1", 3, "timeout", true});
    CHECK(result.status == call_status::partial);
    CHECK(result.payment_id == big);
    CHECK(result.amount == big - 1);
    CHECK(result.provider_ref == "ref-1");
    CHECK(result.attempts == 3);
    CHECK(result.detail == "timeout");
    CHECK(result.not_sent);
    auto query = round_trip(sys, status_query{ctx, big - 5});
    CHECK(query.payment_id == big - 5);
    auto ev = round_trip(sys, provider_event{"alpha", 12, big, call_kind::payout, call_status::pending, big - 1, "r"});
    CHECK(ev.provider == "alpha");
    CHECK(ev.sequence == 12);
    CHECK(ev.payment_id == big);
    CHECK(ev.kind == call_kind::payout);
    CHECK(ev.status == call_status::pending);
    CHECK(ev.amount == big - 1);
    CHECK(ev.provider_ref == "r");
    const statement_entry line{7, big, call_kind::charge, call_status::partial, big - 1, 840, "s"};
    auto statement = round_trip(sys, statement_reply{true, {line}, ""});
    CHECK(statement.ok);
    REQUIRE(statement.entries.size() == 1);
    CHECK(statement.entries[0].sequence == 7);
    CHECK(statement.entries[0].payment_id == big);
    CHECK(statement.entries[0].status == call_status::partial);
    CHECK(statement.entries[0].amount == big - 1);
    CHECK(statement.entries[0].ledger == 840);
    CHECK(statement.entries[0].provider_ref == "s");
    auto health = round_trip(sys, health_reply{"beta", health_state::down, 1, 2, 3, 4, 5});
    CHECK(health.provider == "beta");
    CHECK(health.state == health_state::down);
    CHECK(health.inflight_max == 2);
    CHECK(health.rejected == 5);
    auto cred = round_trip(sys, credential_reply{true, "token", "fresh"});
    CHECK(cred.ok);
    CHECK(cred.token == "token");
    auto page = round_trip(sys, statement_request{41, 500});
    CHECK(page.after == 41);
    CHECK(page.limit == 500);
    // An actor handle travels as CAF serialises it: back in this process, the same actor.
    // (spawned with an argument: CAF 0.17 dereferences a null argument tuple for a function
    // without one, which UBSan reports)
    caf::actor subscriber = sys.spawn([](int) -> caf::behavior { return {[](int) {}}; }, 0);
    auto sub = round_trip(sys, subscribe_events{subscriber, 33});
    CHECK(sub.subscriber == subscriber);
    CHECK(sub.after == 33);
    caf::anon_send_exit(subscriber, caf::exit_reason::user_shutdown);
  }
  SECTION("reconciliation cases, resolutions and status; accounting's status and totals") {
    auto opened = round_trip(sys, open_case{big, big - 1, 840, big - 2, big - 3, "gamma", big - 4});
    CHECK(opened.payment_id == big);
    CHECK(opened.row_id == big - 1);
    CHECK(opened.ledger == 840);
    CHECK(opened.internal_amount == big - 2);
    CHECK(opened.provider_amount == big - 3);
    CHECK(opened.provider == "gamma");
    CHECK(opened.trace_id == big - 4);
    auto done = round_trip(sys, recon_case_opened{store::error{store::errc::io, "full"}, 5});
    CHECK(done.error.code == store::errc::io);
    CHECK(done.id == 5);
    auto resolve = round_trip(sys, resolve_case{9, uint8_t(case_action::book), uint8_t(case_direction::to_suspense),
                                                big, "ops", "mismatch", 21, {840}});
    CHECK(resolve.id == 9);
    CHECK(resolve.action == uint8_t(case_action::book));
    CHECK(resolve.direction == uint8_t(case_direction::to_suspense));
    CHECK(resolve.amount == big);
    CHECK(resolve.by == "ops");
    CHECK(resolve.note == "mismatch");
    CHECK(resolve.client_id == 21);
    CHECK(resolve.ledgers == std::vector<uint32_t>{840});
    const auto resolution = patterned<store::recon_resolution>(7);
    recon_case_resolved resolved;
    resolved.result = case_result(3);
    resolved.resolution = resolution;
    auto back = round_trip(sys, resolved);
    CHECK(back.error.ok());
    CHECK(back.result == case_result(3));
    CHECK(same_bytes(back.resolution, resolution));
    auto cases_req = round_trip(sys, recon_cases_request{false, 17, SIZE_MAX});
    CHECK(!cases_req.open_only);
    CHECK(cases_req.id_min == 17);
    CHECK(cases_req.limit == SIZE_MAX);
    const auto c = patterned<store::recon_case>(8);
    auto cases = round_trip(sys, recon_cases_reply{{}, {c}, {resolution}});
    REQUIRE(cases.cases.size() == 1);
    CHECK(same_bytes(cases.cases[0], c));
    REQUIRE(cases.resolutions.size() == 1);
    CHECK(same_bytes(cases.resolutions[0], resolution));
    recon_status status;
    status.matched = 1;
    status.booking_scan_passes = 2;
    status.booking_last_error = "ledger busy";
    status.providers = {recon_provider_status{"alpha", 3, 4, "refused"}};
    status.last_error = "disk";
    auto st = round_trip(sys, status);
    CHECK(st.matched == 1);
    CHECK(st.booking_scan_passes == 2);
    CHECK(st.booking_last_error == "ledger busy");
    REQUIRE(st.providers.size() == 1);
    CHECK(st.providers[0].provider == "alpha");
    CHECK(st.providers[0].pending == 4);
    CHECK(st.providers[0].last_error == "refused");
    CHECK(st.last_error == "disk");

    auto acc = round_trip(sys, accounting_status{1, 2, 3, 4, 5, "lag", true});
    CHECK(acc.cursor == 1);
    CHECK(acc.resolution_last == 4);
    CHECK(acc.vouchers == 5);
    CHECK(acc.last_error == "lag");
    CHECK(acc.paused);
    auto totals = round_trip(sys, accounting_totals{{}, {store::gl_total{3, 840, big, big - 1}}, 6, 7, 8});
    REQUIRE(totals.totals.size() == 1);
    CHECK(totals.totals[0].account == 3);
    CHECK(totals.totals[0].ledger == 840);
    CHECK(totals.totals[0].debits == big);
    CHECK(totals.totals[0].credits == big - 1);
    CHECK(totals.recon_cursor == 7);
    CHECK(round_trip(sys, accounting_pause{true}).paused);
    CHECK(round_trip(sys, accounting_fail{true}).failing);
  }
  SECTION("the payment core's own: flows, orders, limits") {
    pay::flow_start start{ctx, patterned<payment_command>(9), patterned<order>(10), patterned<order>(11),
                          patterned<order>(12), true};
    auto got = round_trip(sys, start);
    CHECK(got.ctx.client_id == 77);
    CHECK(same_bytes(got.cmd, start.cmd));
    CHECK(same_bytes(got.row, start.row));
    CHECK(same_bytes(got.parent, start.parent));
    CHECK(same_bytes(got.item, start.item));
    CHECK(got.resume);
    store::journal_entry entry;
    entry.sequence = 1;
    entry.timestamp_ns = 2;
    entry.trace_id = big;
    entry.business_id = big - 1;
    entry.row_id = big - 2;
    entry.amount = big - 3;
    entry.result = 4;
    entry.kind = 5;
    entry.state = 6;
    std::memcpy(entry.actor, "channel:abcdefgh", 16); // fills the field: no zero
    std::memcpy(entry.step, "book", 4);
    auto report = round_trip(sys, pay::flow_report{start.row, payment_result::amount_mismatch, true, {entry}});
    CHECK(same_bytes(report.row, start.row));
    CHECK(report.result == payment_result::amount_mismatch);
    CHECK(report.final);
    REQUIRE(report.journal.size() == 1);
    const auto& e = report.journal[0];
    CHECK(e.sequence == 1);
    CHECK(e.timestamp_ns == 2);
    CHECK(e.trace_id == big);
    CHECK(e.business_id == big - 1);
    CHECK(e.row_id == big - 2);
    CHECK(e.amount == big - 3);
    CHECK(e.result == 4);
    CHECK(e.kind == 5);
    CHECK(e.state == 6);
    CHECK(std::memcmp(e.actor, entry.actor, sizeof e.actor) == 0);
    CHECK(std::memcmp(e.step, entry.step, sizeof e.step) == 0);
    auto reserve =
        round_trip(sys, pay::limit_reserve{big, big - 1, config::payment_type::transfer, 840, 19000, big - 2});
    CHECK(reserve.row_id == big);
    CHECK(reserve.account_id == big - 1);
    CHECK(reserve.type == config::payment_type::transfer);
    CHECK(reserve.day == 19000);
    CHECK(reserve.amount == big - 2);
    auto capture = round_trip(sys, pay::capture_request{big, big - 1, true});
    CHECK(capture.item_id == big);
    CHECK(capture.force);
    auto late = round_trip(sys, pay::late_start{start.row, provider_event{"alpha", 3, big, call_kind::charge,
                                                                            call_status::succeeded, big - 1, "x"}});
    CHECK(same_bytes(late.row, start.row));
    CHECK(late.ev.amount == big - 1);
    auto command = round_trip(sys, pay::order_command{ctx, start.cmd, 44, 3});
    CHECK(same_bytes(command.cmd, start.cmd));
    CHECK(command.sequence == 44);
    CHECK(command.room == 3);
    auto idle = round_trip(sys, pay::order_idle{big, 8});
    CHECK(idle.order_id == big);
    CHECK(idle.commands == 8);
    auto reply = round_trip(sys, patterned<payment_reply>(13));
    CHECK(same_bytes(reply, patterned<payment_reply>(13)));
    auto unregister = round_trip(sys, pay::flow_register{45, caf::actor{}});
    CHECK(unregister.sequence == 45);
    CHECK(!unregister.flow);
  }
  SECTION("a record renders as text; a full name stops at its field") {
    auto row = patterned<order>(14);
    std::memcpy(row.provider, "alpha", 6);
    const std::string s = caf::deep_to_string(orders_reply{outcome::ok, {row}});
    CHECK(s.find("kassa.orders_reply") != std::string::npos);
    CHECK(s.find("\"alpha\"") != std::string::npos);
    auto full = patterned<order>(15);
    std::memcpy(full.provider, "abcdefghijklmnop", sizeof full.provider); // no zero
    const std::string t = caf::deep_to_string(full);
    CHECK(t.find("\"abcdefghijklmnop\"") != std::string::npos);
  }
}

TEST_CASE("a payment message cut short is refused", "[serial]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  const std::vector<char> buf = bytes_of(sys, orders_reply{outcome::ok, {patterned<ledger::payments::order>(1)}});
  for (size_t cut : {size_t{0}, size_t{1}, buf.size() / 2, buf.size() - 1}) {
    orders_reply out;
    caf::binary_deserializer source{sys, buf.data(), cut};
    CHECK(source(out));
  }
}
