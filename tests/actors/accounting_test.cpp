// The accounting actor over a payments store filled directly with random journal entries: the
// GL totals equal what the test adds up itself, debits equal credits, and pausing, a failing
// disk and a restart neither skip an entry nor count one twice; a case's `book` resolution in
// the reconciliation store becomes one correction voucher. Tagged [accounting].
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "actors/accounting.hpp"
#include "ledger/payments/gl.hpp"
#include "tests/actors/side_link_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::test;
namespace pay = kassa::ledger::payments;

namespace {

using totals_map = std::map<std::pair<uint16_t, uint32_t>, std::pair<u128, u128>>; // (account, ledger) -> (dr, cr)

// The GL table as docs/accounting.md states it, written out again so that a slip in the
// constexpr table shows: (debit, credit), or (0, 0) for no voucher.
std::pair<uint16_t, uint16_t> expected_posting(const std::string& step, pay::kind k) {
  if (step == "book_topup") return {1100, 2100};
  if (step == "book_withdrawal") return {2100, 1100};
  if (step == "book_fee") return {2100, 4100};
  if (step == "book_transfer" || step == "book_capture_bal" || step == "book_refund_bal") return {2100, 2100};
  if (step == "book_capture_prv") return {1100, 2100};
  if (step == "book_refund_prv") return {2100, 1100};
  if (step == "book_suspense") return {1100, 2900};
  if (step == "book_suspense_out") return {2900, 1100};
  if (step == "book_suspense_in") return {2900, 2100};
  if (step == "book_late" && k == pay::kind::topup) return {1100, 2100};
  if (step == "book_late" && k == pay::kind::withdrawal) return {2100, 1100};
  if (step == "book_late" && k == pay::kind::refund) return {2100, 1100};
  return {0, 0};
}

const std::vector<std::string> steps = {
    "book_topup", "book_withdrawal", "book_fee", "book_transfer", "book_capture_bal", "book_capture_prv",
    "book_refund_bal", "book_refund_prv", "book_suspense", "book_suspense_out", "book_late", "book_suspense_in",
    // no vouchers:
    "provider_charge", "callback", "compensated", "hold", "book", "book_topupx"};

// Rows 1..4 carry ledgers 1..4; row 5 is a pay item of order 1 without its own ledger; row 0
// (no row) books into ledger 0.
uint32_t ledger_of_row(uint64_t row) { return row >= 1 && row <= 4 ? uint32_t(row) : row == 5 ? 1 : 0; }

struct journal_model {
  std::mt19937_64 rng;
  totals_map totals;
  uint64_t vouchers = 0;

  explicit journal_model(uint64_t seed) : rng(seed) {}

  void write_rows(ks::payments_store& s) {
    ks::payments_batch b;
    for (uint64_t i = 1; i <= 5; ++i) {
      pay::order row{};
      row.id = i;
      row.sequence = i;
      row.ledger = i <= 4 ? uint32_t(i) : 0;
      row.parent_id = i == 5 ? 1 : 0;
      row.kind = uint16_t(i == 5 ? pay::kind::pay : pay::kind::topup);
      b.rows.push_back(row);
    }
    write_ok(s, std::move(b));
  }

  // Appends `n` random entries in batches of random size.
  void append(ks::payments_store& s, size_t n) {
    while (n > 0) {
      const size_t batch = std::min<size_t>(n, 1 + rng() % 300);
      ks::payments_batch b;
      for (size_t i = 0; i < batch; ++i) {
        ks::journal_entry e;
        const std::string& step = steps[rng() % steps.size()];
        const auto k = static_cast<pay::kind>(1 + rng() % pay::kind_max);
        const uint64_t row = rng() % 6;
        e.row_id = row;
        e.trace_id = make_u128(7, rng());
        e.kind = uint16_t(k);
        e.amount = rng() % 4 == 0 ? make_u128(rng() >> 40, rng()) : u128(rng() % 100000);
        std::memcpy(e.step, step.data(), std::min(step.size(), sizeof e.step)); // cut to 16 bytes, as the core stores it
        set_name(e.actor, "flow");
        b.journal.push_back(e);
        const auto [dr, cr] = expected_posting(step, k);
        if (dr == 0) continue;
        ++vouchers;
        const uint32_t ledger = ledger_of_row(row);
        totals[{dr, ledger}].first += e.amount;
        totals[{cr, ledger}].second += e.amount;
      }
      write_ok(s, std::move(b));
      n -= batch;
    }
  }
};

accounting_options options(const std::shared_ptr<ks::payments_store>& payments, const std::string& path) {
  accounting_options o;
  o.payments = payments;
  o.path = path;
  o.durability = ks::durability::none;
  o.map_size_bytes = 64ull << 20;
  o.interval_ms = 10;
  o.batch_events_max = 97; // many transactions per test, and the catch-up path
  return o;
}

caf::actor spawn_ok(actor_node& node, accounting_options o) {
  ks::error err;
  caf::actor a = spawn_accounting(*node.sys, std::move(o), err);
  INFO(err.message);
  REQUIRE(a);
  node.actors.push_back(a);
  return a;
}

accounting_status status(actor_node& node, const caf::actor& a) {
  return node.ask<accounting_status>(a, accounting_status_request{});
}

void wait_caught_up(actor_node& node, const caf::actor& a, uint64_t journal_last) {
  const bool caught_up = eventually([&] { return status(node, a).cursor == journal_last; });
  const accounting_status s = status(node, a);
  INFO("cursor " << s.cursor << " journal_last " << s.journal_last << " error " << s.last_error);
  REQUIRE(caught_up);
  CHECK(s.journal_last == journal_last);
  CHECK(s.last_error.empty());
}

// The totals in the store are exactly the model's, and every ledger balances.
void check_totals(actor_node& node, const caf::actor& a, const journal_model& m) {
  const accounting_totals t = node.ask<accounting_totals>(a, accounting_totals_request{});
  INFO(t.error.message);
  REQUIRE(t.error.ok());
  CHECK(t.vouchers == m.vouchers);
  totals_map got;
  std::map<uint32_t, std::pair<u128, u128>> per_ledger;
  for (const ks::gl_total& g : t.totals) {
    got[{g.account, g.ledger}] = {g.debits, g.credits};
    per_ledger[g.ledger].first += g.debits;
    per_ledger[g.ledger].second += g.credits;
  }
  CHECK(got.size() == m.totals.size());
  for (const auto& [key, value] : m.totals) {
    INFO("GL " << key.first << " ledger " << key.second);
    REQUIRE(got.count(key) == 1);
    CHECK(to_string_u128(got[key].first) == to_string_u128(value.first));
    CHECK(to_string_u128(got[key].second) == to_string_u128(value.second));
  }
  for (const auto& [ledger, dc] : per_ledger) {
    INFO("ledger " << ledger);
    CHECK(to_string_u128(dc.first) == to_string_u128(dc.second));
  }
}

} // namespace

TEST_CASE("a booking step names its GL posting; a step cut to 16 bytes still matches", "[accounting]") {
  char step[16] = {};
  const std::string full = "book_suspense_out";
  std::memcpy(step, full.data(), sizeof step); // cut to 16 bytes
  const pay::gl_rule* r = pay::gl_rule_for(step, uint16_t(pay::kind::topup));
  REQUIRE(r != nullptr);
  CHECK(r->debit == pay::gl_account::suspense);
  CHECK(r->credit == pay::gl_account::provider_receivable);
  std::strncpy(step, "book_late", sizeof step);
  CHECK(pay::gl_rule_for(step, uint16_t(pay::kind::transfer)) == nullptr);
  CHECK(pay::gl_rule_for(step, uint16_t(pay::kind::withdrawal))->debit == pay::gl_account::customer_funds);
  // a refund made by a late success leaves the merchant's funds for the provider, as book_refund_prv
  REQUIRE(pay::gl_rule_for(step, uint16_t(pay::kind::refund)) != nullptr);
  CHECK(pay::gl_rule_for(step, uint16_t(pay::kind::refund))->debit == pay::gl_account::customer_funds);
  CHECK(pay::gl_rule_for(step, uint16_t(pay::kind::refund))->credit == pay::gl_account::provider_receivable);
  std::strncpy(step, "book_suspense", sizeof step);
  CHECK(pay::gl_rule_for(step, 0)->credit == pay::gl_account::suspense);
  std::strncpy(step, "book_topupx", sizeof step);
  CHECK(pay::gl_rule_for(step, 0) == nullptr);
}

TEST_CASE("accounting books every booking entry once: pause, a failing disk and a restart lose and double nothing",
          "[accounting]") {
  temp_dir dir;
  journal_model m(seed("accounting"));
  auto payments = open_payments(dir.path + "/payments");
  m.write_rows(*payments);
  m.append(*payments, 2000);
  {
    actor_node node;
    caf::actor acc = spawn_ok(node, options(payments, dir.path + "/accounting"));
    wait_caught_up(node, acc, payments->journal_last());
    check_totals(node, acc, m);

    // Paused: the journal grows, the cursor stays; resumed: it catches up.
    caf::anon_send(acc, accounting_pause{true});
    const uint64_t cursor = status(node, acc).cursor; // the pause is in the mailbox before this ask
    m.append(*payments, 700);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(status(node, acc).cursor == cursor);
    CHECK(status(node, acc).paused);
    caf::anon_send(acc, accounting_pause{false});
    wait_caught_up(node, acc, payments->journal_last());
    check_totals(node, acc, m);

    // A failing disk: errors, no progress; cleared: every entry counted exactly once.
    caf::anon_send(acc, accounting_fail{true});
    const uint64_t before = status(node, acc).cursor;
    m.append(*payments, 900);
    REQUIRE(eventually([&] { return !status(node, acc).last_error.empty(); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(status(node, acc).cursor == before);
    caf::anon_send(acc, accounting_fail{false});
    wait_caught_up(node, acc, payments->journal_last());
    check_totals(node, acc, m);
  }
  // A restart: a new actor on the same store goes on from the durable cursor.
  m.append(*payments, 500);
  {
    actor_node node;
    caf::actor acc = spawn_ok(node, options(payments, dir.path + "/accounting"));
    wait_caught_up(node, acc, payments->journal_last());
    check_totals(node, acc, m);
  }
  // What an offline reader (`kassa gl`) sees.
  ks::error err;
  auto ro = ks::voucher_store::open_read_only(dir.path + "/accounting", err);
  INFO(err.message);
  REQUIRE(ro);
  uint64_t cursor = 0, vouchers = 0;
  REQUIRE(ro->read_cursor(cursor, vouchers).ok());
  CHECK(cursor == payments->journal_last());
  CHECK(vouchers == m.vouchers);
}

TEST_CASE("a store that is ahead of the journal range it is given refuses the write", "[accounting]") {
  temp_dir dir;
  ks::error err;
  auto vs = ks::voucher_store::open(dir.path, ks::durability::none, 16ull << 20, err);
  REQUIRE(vs);
  ks::voucher v;
  v.journal_sequence = 3;
  v.amount = 5;
  v.debit_account = 1100, v.credit_account = 2100;
  REQUIRE(vs->write({v}, 0, 4).ok());
  ks::error again = vs->write({v}, 0, 4);
  CHECK(again.code == ks::errc::invalid_argument);
  CHECK(vs->cursor() == 4);
  CHECK(vs->vouchers() == 1);
}

namespace {

void recon_write_ok(ks::recon_store& s, ks::recon_batch& b) {
  ks::error err = s.write(b);
  INFO(err.message);
  REQUIRE(err.ok());
}

ks::recon_resolution resolution_of(uint64_t case_id, pay::case_action action, pay::case_direction direction,
                                   u128 amount) {
  ks::recon_resolution r;
  r.case_id = case_id;
  r.resolved_ns = 5000 + case_id;
  r.action = uint8_t(action);
  r.direction = uint8_t(direction);
  r.amount = amount;
  if (action == pay::case_action::book) r.transfer_id = pay::case_transfer_id(case_id);
  std::strncpy(r.by, "ops", sizeof r.by);
  std::strncpy(r.note, "checked with the provider", sizeof r.note);
  return r;
}

// The (debits, credits) of one GL account in one ledger, as the actor reports them.
std::pair<u128, u128> gl_of(actor_node& node, const caf::actor& a, pay::gl_account account, uint32_t ledger) {
  const accounting_totals t = node.ask<accounting_totals>(a, accounting_totals_request{});
  REQUIRE(t.error.ok());
  for (const ks::gl_total& g : t.totals)
    if (g.account == uint16_t(account) && g.ledger == ledger) return {g.debits, g.credits};
  return {0, 0};
}

void wait_resolutions(actor_node& node, const caf::actor& a, uint64_t resolution_last) {
  const bool caught_up = eventually([&] { return status(node, a).recon_cursor == resolution_last; });
  const accounting_status s = status(node, a);
  INFO("recon_cursor " << s.recon_cursor << " resolution_last " << s.resolution_last << " error " << s.last_error);
  REQUIRE(caught_up);
  CHECK(s.resolution_last == resolution_last);
  CHECK(s.last_error.empty());
}

} // namespace

TEST_CASE("a case booked out of suspense reaches the GL once, also across a restart; an accept books nothing",
          "[accounting][cases]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  ks::error err;
  std::shared_ptr<ks::recon_store> recon(
      ks::recon_store::open(dir.path + "/recon", ks::durability::none, 16ull << 20, err).release());
  INFO(err.message);
  REQUIRE(recon);
  ks::recon_batch cases;
  for (uint64_t i = 1; i <= 3; ++i) {
    ks::recon_case c;
    c.kind = uint8_t(ks::case_kind::amount_mismatch);
    c.payment_id = i;
    c.row_id = 40 + i;
    c.ledger = 840;
    c.internal_amount = 1000;
    c.provider_amount = 1000 + 7 * i;
    cases.cases.push_back(c);
  }
  recon_write_ok(*recon, cases);
  // An amount mismatch parked 7 in suspense (ledger 840), as the payment core journals it.
  ks::payments_batch parked;
  ks::payments_batch rows;
  pay::order row{};
  row.id = 41, row.sequence = 1, row.ledger = 840, row.kind = uint16_t(pay::kind::topup);
  rows.rows.push_back(row);
  write_ok(*payments, std::move(rows));
  ks::journal_entry e;
  e.row_id = 41, e.amount = 7, e.kind = uint16_t(pay::kind::topup);
  std::strncpy(e.step, "book_suspense", sizeof e.step);
  parked.journal.push_back(e);
  write_ok(*payments, std::move(parked));

  accounting_options o = options(payments, dir.path + "/accounting");
  o.recon = recon;
  {
    actor_node node;
    caf::actor acc = spawn_ok(node, o);
    wait_caught_up(node, acc, payments->journal_last());
    CHECK(gl_of(node, acc, pay::gl_account::suspense, 840) == std::pair<u128, u128>{0, 7});
    // The operator accepts case 2 and books case 1's 7 out of suspense to the user.
    ks::recon_batch resolved;
    resolved.resolutions = {resolution_of(2, pay::case_action::accept, pay::case_direction::none, 0),
                            resolution_of(1, pay::case_action::book, pay::case_direction::from_suspense, 7)};
    recon_write_ok(*recon, resolved);
    wait_resolutions(node, acc, 2);
    CHECK(gl_of(node, acc, pay::gl_account::suspense, 840) == std::pair<u128, u128>{7, 7});
    CHECK(gl_of(node, acc, pay::gl_account::customer_funds, 840) == std::pair<u128, u128>{0, 7});
    CHECK(node.ask<accounting_totals>(acc, accounting_totals_request{}).vouchers == 2);
    // A failing disk: the resolution waits, then counts once.
    caf::anon_send(acc, accounting_fail{true});
    ks::recon_batch more;
    more.resolutions = {resolution_of(3, pay::case_action::book, pay::case_direction::to_suspense, 4)};
    recon_write_ok(*recon, more);
    REQUIRE(eventually([&] { return !status(node, acc).last_error.empty(); }));
    CHECK(status(node, acc).recon_cursor == 2);
    caf::anon_send(acc, accounting_fail{false});
    wait_resolutions(node, acc, 3);
    CHECK(gl_of(node, acc, pay::gl_account::suspense, 840) == std::pair<u128, u128>{7, 11});
    CHECK(gl_of(node, acc, pay::gl_account::customer_funds, 840) == std::pair<u128, u128>{4, 7});
  }
  // A restart on the same stores: nothing is counted again.
  {
    actor_node node;
    caf::actor acc = spawn_ok(node, o);
    CHECK(status(node, acc).recon_cursor == 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // a few ticks
    wait_resolutions(node, acc, 3);
    wait_caught_up(node, acc, payments->journal_last());
    CHECK(gl_of(node, acc, pay::gl_account::suspense, 840) == std::pair<u128, u128>{7, 11});
    const accounting_totals t = node.ask<accounting_totals>(acc, accounting_totals_request{});
    CHECK(t.vouchers == 3);
    CHECK(t.recon_cursor == 3);
  }
  std::vector<ks::voucher> corrections;
  auto ro = ks::voucher_store::open_read_only(dir.path + "/accounting", err);
  REQUIRE(ro);
  REQUIRE(ro->corrections_after(0, 10, corrections).ok());
  REQUIRE(corrections.size() == 2);
  CHECK(corrections[0].journal_sequence == 2); // the resolution's sequence
  CHECK(corrections[0].business_id == 1);      // the case
  CHECK(corrections[0].row_id == 41);
  CHECK(std::string(corrections[0].step) == "case_to_account");
  CHECK(std::string(corrections[1].step, 16) == "case_to_suspense");
}

TEST_CASE("with reconciliation off the accounting actor reads no resolutions", "[accounting][cases]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  actor_node node;
  caf::actor acc = spawn_ok(node, options(payments, dir.path + "/accounting"));
  const accounting_status s = status(node, acc);
  CHECK(s.recon_cursor == 0);
  CHECK(s.resolution_last == 0);
  CHECK(s.last_error.empty());
}
