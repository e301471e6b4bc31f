// The reconciler against fake channel actors that serve statements from a vector, a fake
// ledger that serves bookings from a map, and a payments store filled directly: every
// discrepancy becomes exactly one case, a matched line or booking none; a line whose payment
// is not final waits (until its grace runs out); a provider or a ledger that is down delays
// only itself; a restart neither re-opens nor forgets a case. Tagged [recon].
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/channel.hpp"
#include "actors/messages.hpp"
#include "actors/reconciler.hpp"
#include "ledger/payments/ids.hpp"
#include "tests/actors/side_link_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::test;
namespace pay = kassa::ledger::payments;

namespace {

constexpr uint64_t t0 = 1'700'000'000'000'000'000ull; // ns
constexpr uint64_t second = 1'000'000'000ull;

// A provider's statement as the test writes it; the fake channel serves it.
struct fake_statement {
  std::mutex mu;
  std::vector<statement_entry> entries;
  bool down = false; // answers ok = false
  uint64_t requests = 0;
  // payment calls (a case's refund): answered with `refund_status` and the amount asked plus
  // `refund_extra`, the first answer again to a payment id seen before; `silent`: never answered
  std::vector<payment_call> calls;
  std::map<u128, call_result> answered;
  call_status refund_status = call_status::succeeded;
  u128 refund_extra = 0;
  bool silent = false;
  std::vector<caf::response_promise> unanswered;
  void add(u128 payment_id, u128 amount) {
    std::lock_guard<std::mutex> g(mu);
    statement_entry e;
    e.sequence = entries.size() + 1;
    e.payment_id = payment_id;
    e.amount = amount;
    e.ledger = 1;
    entries.push_back(e);
  }
};

caf::behavior fake_channel(caf::event_based_actor* self, std::shared_ptr<fake_statement> f) {
  return {
      [f](const credential_request&) -> credential_reply {
        std::lock_guard<std::mutex> g(f->mu);
        return f->down ? credential_reply{false, {}, "provider down"} : credential_reply{true, "tok-1", {}};
      },
      [self, f](const payment_call& c) -> caf::result<call_result> {
        std::lock_guard<std::mutex> g(f->mu);
        f->calls.push_back(c);
        if (auto it = f->answered.find(c.payment_id); it != f->answered.end()) return it->second;
        if (f->silent) {
          f->unanswered.push_back(self->make_response_promise());
          return f->unanswered.back();
        }
        call_result r;
        r.status = f->refund_status;
        r.payment_id = c.payment_id;
        const bool moved = r.status == call_status::succeeded || r.status == call_status::partial;
        r.amount = moved ? c.amount + f->refund_extra : 0;
        r.attempts = 1;
        if (moved || r.status == call_status::declined) f->answered[c.payment_id] = r; // the provider keeps it
        return r;
      },
      [f](const statement_request& r) -> statement_reply {
        std::lock_guard<std::mutex> g(f->mu);
        ++f->requests;
        statement_reply reply;
        if (f->down) {
          reply.detail = "provider down";
          return reply;
        }
        reply.ok = true;
        for (const statement_entry& e : f->entries)
          if (e.sequence > r.after && reply.entries.size() < r.limit) reply.entries.push_back(e);
        return reply;
      },
  };
}

// The ledger as the reconciler sees it: the bookings the test puts in, by transfer id.
struct fake_ledger {
  std::mutex mu;
  std::map<u128, u128> amounts; // transfer id -> amount
  std::map<u128, ledger::transfer> created; // by create_transfers_request
  uint64_t applied = 0;                     // transfers created (not `exists`)
  bool down = false;            // answers busy
  uint64_t scans = 0;           // transfers_by_id requests answered
  void put(u128 id, u128 amount) {
    std::lock_guard<std::mutex> g(mu);
    amounts[id] = amount;
  }
  void erase(u128 id) {
    std::lock_guard<std::mutex> g(mu);
    amounts.erase(id);
  }
  void set_down(bool d) {
    std::lock_guard<std::mutex> g(mu);
    down = d;
  }
};

caf::behavior fake_ledger_actor(caf::event_based_actor*, std::shared_ptr<fake_ledger> f) {
  return {
      [f](const create_transfers_request& r) -> create_reply {
        std::lock_guard<std::mutex> g(f->mu);
        create_reply reply;
        for (uint32_t i = 0; i < r.events.size(); ++i) {
          const ledger::transfer& t = r.events[i];
          auto it = f->created.find(t.id);
          if (it == f->created.end()) {
            f->created[t.id] = t;
            ++f->applied;
            continue;
          }
          const bool same = it->second.amount == t.amount && it->second.debit_account_id == t.debit_account_id &&
                            it->second.credit_account_id == t.credit_account_id;
          reply.failures.push_back({i, uint32_t(same ? ledger::transfer_result::exists
                                                     : ledger::transfer_result::exists_with_different_amount)});
        }
        return reply;
      },
      [f](const lookup_transfers_request& r) -> transfers_reply {
        std::lock_guard<std::mutex> g(f->mu);
        transfers_reply reply;
        if (f->down) {
          reply.status = outcome::busy;
          return reply;
        }
        for (u128 id : r.ids) {
          auto it = f->amounts.find(id);
          if (it == f->amounts.end()) continue;
          ledger::transfer t{};
          t.id = id;
          t.amount = it->second;
          reply.transfers.push_back(t);
        }
        return reply;
      },
      [f](const transfers_by_id_request& r) -> transfers_by_id_reply {
        std::lock_guard<std::mutex> g(f->mu);
        ++f->scans;
        transfers_by_id_reply reply;
        if (f->down || r.limit == 0) {
          reply.status = outcome::busy;
          return reply;
        }
        // The bookings and the transfers created (a case's correcting transfer), by id.
        std::map<u128, ledger::transfer> all = f->created;
        for (const auto& [id, amount] : f->amounts) {
          ledger::transfer t{};
          t.id = id;
          t.amount = amount;
          t.ledger = 1;
          all[id] = t;
        }
        reply.next = r.id_end;
        for (auto it = all.lower_bound(r.id_min); it != all.end() && it->first < r.id_end; ++it) {
          if (reply.transfers.size() == r.limit) {
            reply.next = it->first;
            break;
          }
          reply.transfers.push_back(it->second);
        }
        return reply;
      },
  };
}

pay::order make_row(uint64_t seq, pay::order_state state, u128 provider_amount, const std::string& provider = "alpha",
                    uint64_t updated_ns = t0) {
  pay::order row{};
  row.id = make_u128(0xA0, seq);
  row.sequence = seq;
  row.state = uint16_t(state);
  row.provider_amount = provider_amount;
  row.ledger = 1;
  row.kind = uint16_t(pay::kind::topup);
  row.trace_id = make_u128(0x7, seq);
  row.updated_ns = updated_ns;
  if (!provider.empty()) set_name(row.provider, provider);
  return row;
}

ks::journal_entry compensated(u128 row_id, u128 amount) {
  ks::journal_entry e;
  e.row_id = row_id;
  e.amount = amount;
  set_name(e.step, "compensated");
  set_name(e.actor, "flow");
  return e;
}

struct recon_node {
  actor_node node;
  caf::actor recon;
  recon_node(const std::shared_ptr<ks::payments_store>& payments, const std::string& path,
             const std::vector<std::pair<std::string, std::shared_ptr<fake_statement>>>& statements,
             std::shared_ptr<std::atomic<uint64_t>> clock, std::shared_ptr<fake_ledger> ledger = nullptr,
             std::function<void(const std::string&)> log_booking_case = {},
             std::function<void(reconciler_options&)> edit = {}) {
    reconciler_options o;
    o.payments = payments;
    o.path = path;
    o.durability = ks::durability::none;
    o.map_size_bytes = 64ull << 20;
    o.interval_ms = 5;
    o.grace_ms = 1000;
    o.inflight_grace_ms = 3000;
    o.statement_lines_max = 3; // several requests per statement
    o.statement_timeout_ms = 2000;
    o.clock_ns = [clock] { return clock->load(); };
    for (const auto& [name, st] : statements) {
      caf::actor ch = node.sys->spawn(fake_channel, st);
      node.actors.push_back(ch);
      o.channels.emplace_back(name, ch);
    }
    if (ledger) {
      caf::actor fake = node.sys->spawn(fake_ledger_actor, ledger); // answers the directory's messages
      o.ledger = caf::actor_cast<directory_actor>(fake);
      node.actors.push_back(fake);
      o.booking_rows_max = 2; // several rounds for the rows
      o.booking_scan_ids_max = 3; // several pages for the ledger's payments id range
      o.log_booking_case = std::move(log_booking_case);
      o.suspense_account = [](u128 account, uint32_t l) { return make_u128(0x5050, u128_lo(account) * 1000 + l); };
      o.clearing_account = [](const std::string& provider, u128 account, uint32_t l) -> u128 {
        return provider == "alpha" ? make_u128(0xC1EA, u128_lo(account) * 1000 + l) : 0;
      };
      o.refund_timeout_ms = 300;
    }
    if (edit) edit(o);
    ks::error err;
    recon = spawn_reconciler(*node.sys, std::move(o), err);
    INFO(err.message);
    REQUIRE(recon);
    node.actors.push_back(recon);
  }
  recon_status status() { return node.ask<recon_status>(recon, recon_status_request{}); }
  // The suspense case the payment core opens for `row` (sequence `sequence`, ledger 1, provider
  // alpha) when it parks `parked` of the `internal` it expected; returns the case id.
  uint64_t open_suspense(const ks::payments_store& payments, const pay::order& row, uint64_t sequence, u128 internal,
                         u128 parked) {
    open_case oc;
    oc.payment_id = payments.ids().id(sequence);
    oc.row_id = row.id;
    oc.ledger = 1;
    oc.internal_amount = internal;
    oc.provider_amount = parked;
    oc.provider = "alpha";
    return node.ask<recon_case_opened>(recon, oc).id;
  }
  std::vector<ks::recon_case> cases(bool open_only = false) {
    auto r = node.ask<recon_cases_reply>(recon, recon_cases_request{open_only});
    INFO(r.error.message);
    REQUIRE(r.error.ok());
    return r.cases;
  }
  // Waits until two more rounds have completed: everything sent before is decided.
  void settle() {
    const uint64_t start = status().rounds;
    const bool done = eventually([&] { return status().rounds >= start + 2; });
    INFO("last error: " << status().last_error);
    REQUIRE(done);
  }
  // Waits until every row the journal names had its bookings looked up and judged, and the
  // journal cursor is durable (two rounds after the queue ran empty).
  void settle_bookings() {
    const uint64_t start = status().booking_rounds;
    bool done = eventually([&] { return status().booking_rounds >= start + 1 && status().booking_rows_queued == 0; });
    const uint64_t empty_at = status().booking_rounds;
    done = done && eventually([&] { return status().booking_rounds >= empty_at + 2; });
    INFO("last error: " << status().last_error);
    REQUIRE(done);
  }
  // Waits until the scan of the ledger's payments id range passed over all of it twice: every
  // booking put in before was read and judged.
  void settle_scan() {
    const uint64_t start = status().booking_scan_passes;
    const bool done = eventually([&] { return status().booking_scan_passes >= start + 2; });
    INFO("last scan error: " << status().booking_scan_last_error);
    REQUIRE(done);
  }
};

using case_set = std::multiset<std::pair<std::string, std::string>>; // (kind, payment id)

case_set set_of(const std::vector<ks::recon_case>& cases) {
  case_set out;
  for (const auto& c : cases)
    out.insert({std::string(ks::name(static_cast<ks::case_kind>(c.kind))), to_string_u128(c.payment_id)});
  return out;
}

std::pair<std::string, std::string> expect(ks::case_kind k, u128 pid) {
  return {std::string(ks::name(k)), to_string_u128(pid)};
}

} // namespace

TEST_CASE("every discrepancy between statements and payments becomes exactly one case", "[recon]") {
  seed("recon"); // the scenario is fixed; printed for the record
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0 + second / 2);
  auto alpha = std::make_shared<fake_statement>();
  auto bravo = std::make_shared<fake_statement>();
  using s = pay::order_state;
  using pay::call_role;
  const auto pid = [&](uint64_t seq, call_role r = call_role::main) { return payments->ids().id(seq, r); };

  ks::payments_batch b;
  b.rows = {make_row(1, s::completed, 100),       // matched
            make_row(2, s::completed, 200),       // the provider says 250: amount_mismatch
            make_row(3, s::completed, 300),       // never in a statement: missing_provider
            make_row(4, s::failed, 0),            // the provider took 40 anyway: missing_internal after grace
            make_row(5, s::failed, 500),          // charged and compensated in full: matched twice
            make_row(6, s::failed, 600),          // compensated 300, the provider refunded 600
            make_row(7, s::completed, 0, ""),     // no provider: nothing to reconcile
            make_row(8, s::completed, 800, "bravo"), // matched once bravo is up
            make_row(9, s::unknown, 0),           // becomes final later: matched then
            make_row(10, s::processing, 0)};      // never final: missing_internal after the in-flight grace
  b.journal = {compensated(make_u128(0xA0, 5), 500), compensated(make_u128(0xA0, 6), 300)};
  write_ok(*payments, std::move(b));

  alpha->add(pid(1), 100);
  alpha->add(pid(2), 250);
  alpha->add(pid(99), 50);               // no such payment
  alpha->add(make_u128(0, 12345), 10);   // not a kassa payment id at all
  alpha->add(pid(4), 40);
  alpha->add(pid(5), 500);
  alpha->add(pid(5, call_role::compensation), 500);
  alpha->add(pid(6), 600);
  alpha->add(pid(6, call_role::compensation), 600);
  alpha->add(pid(1), 100);               // the same payment settled twice
  alpha->add(pid(9), 900);
  alpha->add(pid(10), 1000);
  bravo->add(pid(8), 800);
  bravo->down = true;

  const case_set statement_cases = {
      expect(ks::case_kind::amount_mismatch, pid(2)),
      expect(ks::case_kind::missing_internal, pid(99)),
      expect(ks::case_kind::missing_internal, make_u128(0, 12345)),
      expect(ks::case_kind::amount_mismatch, pid(6, call_role::compensation)),
      expect(ks::case_kind::missing_internal, pid(1)),
  };
  std::vector<ks::recon_case> first_cases;
  {
    recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}, {"bravo", bravo}}, clock);
    // bravo is down: alpha is reconciled all the same; within grace nothing else is a case.
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 12; }));
    rn.settle();
    CHECK(set_of(rn.cases()) == statement_cases);
    recon_status st = rn.status();
    CHECK(st.providers[0].pending == 3); // rows 9 and 10 are not final; row 4 failed (a late success may come)
    CHECK(st.providers[1].cursor == 0);
    CHECK_FALSE(st.providers[1].last_error.empty());
    CHECK(st.matched == 4); // pid 1, 5, 5 (compensation), 6

    // Row 9 becomes final; bravo comes back.
    ks::payments_batch later;
    later.rows = {make_row(9, s::completed, 900)};
    write_ok(*payments, std::move(later));
    {
      std::lock_guard<std::mutex> g(bravo->mu);
      bravo->down = false;
    }
    REQUIRE(eventually([&] { return rn.status().providers[1].cursor == 1; }));
    rn.settle();
    st = rn.status();
    CHECK(st.providers[0].pending == 2);
    CHECK(st.providers[1].last_error.empty());
    CHECK(st.matched == 6); // + pid 9, pid 8
    CHECK(set_of(rn.cases()) == statement_cases);

    // Past the grace period: row 3 never showed up, row 4 stayed failed although the provider
    // took its money. Row 10 is still in flight: its line waits longer (a resumed flow may be
    // waiting for its channel), until the in-flight grace runs out too.
    clock->store(t0 + 2 * second);
    rn.settle();
    case_set all = statement_cases;
    all.insert(expect(ks::case_kind::missing_provider, pid(3)));
    all.insert(expect(ks::case_kind::missing_internal, pid(4)));
    CHECK(set_of(rn.cases()) == all);
    CHECK(rn.status().providers[0].pending == 1);
    clock->store(t0 + 4 * second);
    rn.settle();
    all.insert(expect(ks::case_kind::missing_internal, pid(10)));
    first_cases = rn.cases();
    CHECK(set_of(first_cases) == all);
    CHECK(rn.status().providers[0].pending == 0);
    CHECK(rn.status().cases_open == all.size());
    for (const auto& c : first_cases) {
      CHECK(c.status == uint8_t(ks::case_status::open));
      CHECK(c.opened_ns >= t0);
    }
  }
  // A restart re-reads nothing it decided and re-opens nothing.
  {
    clock->store(t0 + 5 * second);
    recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}, {"bravo", bravo}}, clock);
    rn.settle();
    rn.settle();
    const auto again = rn.cases();
    REQUIRE(again.size() == first_cases.size());
    for (size_t i = 0; i < again.size(); ++i) {
      CHECK(again[i].id == first_cases[i].id);
      CHECK(again[i].kind == first_cases[i].kind);
    }
    CHECK(rn.status().matched == 6);
    CHECK(rn.status().providers[0].cursor == 12);
    CHECK(rn.status().unmatched_rows == 0);

    // A new line after the restart is matched against its row like any other.
    ks::payments_batch more;
    more.rows = {make_row(11, s::completed, 1100, "alpha", clock->load())};
    more.journal = {compensated(make_u128(0xA0, 11), 0)}; // any entry names the row
    write_ok(*payments, std::move(more));
    alpha->add(pid(11), 1100);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 13; }));
    rn.settle();
    CHECK(rn.status().matched == 7);
    CHECK(rn.cases().size() == first_cases.size());
  }
}

TEST_CASE("a compensating refund no statement shows becomes one missing_provider case after the grace, also "
          "across a restart", "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0 + second / 2);
  auto alpha = std::make_shared<fake_statement>();
  using s = pay::order_state;
  const auto pid = [&](uint64_t seq) { return payments->ids().id(seq); };
  const auto refund = [&](uint64_t seq) { return payments->ids().id(seq, pay::call_role::compensation); };
  const auto row_id = [](uint64_t seq) { return make_u128(0xA0, seq); };

  ks::payments_batch b;
  b.rows = {make_row(21, s::failed, 700),     // given back in full; the refund never shows
            make_row(22, s::failed, 800),     // given back in full; the refund shows
            make_row(23, s::in_review, 900),  // 400 given back; the refund never shows
            make_row(24, s::in_review, 1000)}; // the refund failed: suspense, nothing given back
  b.journal = {compensated(row_id(21), 700), compensated(row_id(22), 800), compensated(row_id(23), 400)};
  write_ok(*payments, std::move(b));
  for (uint64_t seq : {21, 22, 23, 24}) alpha->add(pid(seq), 100 * (seq - 14)); // the charges
  alpha->add(refund(22), 800);

  std::vector<ks::recon_case> first;
  {
    recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 5; }));
    rn.settle();
    CHECK(rn.cases().empty()); // within the grace
    CHECK(rn.status().matched == 5);

    clock->store(t0 + 2 * second);
    rn.settle();
    rn.settle();
    first = rn.cases();
    REQUIRE(set_of(first) == case_set{expect(ks::case_kind::missing_provider, refund(21)),
                                      expect(ks::case_kind::missing_provider, refund(23))});
    for (const auto& c : first) {
      const bool is21 = c.payment_id == refund(21);
      CHECK(c.internal_amount == (is21 ? 700 : 400));
      CHECK(c.provider_amount == 0);
      CHECK(c.row_id == row_id(is21 ? 21 : 23));
      CHECK(c.trace_id == make_u128(0x7, is21 ? 21 : 23));
      CHECK(c.ledger == 1);
      CHECK(std::string(c.provider) == "alpha");
      CHECK(c.status == uint8_t(ks::case_status::open));
    }
    CHECK(rn.status().unmatched_rows == 0);
  }
  // Written while the reconciler is down: only the rescan at its start finds this row.
  ks::payments_batch later;
  later.rows = {make_row(25, s::failed, 500)};
  later.journal = {compensated(row_id(25), 500)};
  write_ok(*payments, std::move(later));
  alpha->add(pid(25), 500);
  {
    clock->store(t0 + 5 * second);
    recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 6; }));
    rn.settle();
    rn.settle();
    const auto again = rn.cases();
    REQUIRE(again.size() == 3); // the two found before, once each, and row 25's
    for (size_t i = 0; i < first.size(); ++i) CHECK(again[i].id == first[i].id);
    CHECK(again[2].payment_id == refund(25));
    CHECK(again[2].kind == uint8_t(ks::case_kind::missing_provider));
    CHECK(again[2].internal_amount == 500);
    CHECK(rn.status().cases_open == 3);

    // The refund's line comes late: it is matched, and the case stays open for the operator.
    alpha->add(refund(21), 700);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 7; }));
    rn.settle();
    CHECK(rn.status().matched == 7);
    CHECK(rn.cases().size() == 3);
    CHECK(rn.status().cases_open == 3);
  }
}

TEST_CASE("a statement line under another installation's or generation's id matches none of the rows", "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0 + second / 2);
  auto alpha = std::make_shared<fake_statement>();
  ks::payments_batch b;
  b.rows = {make_row(1, pay::order_state::completed, 100)};
  write_ok(*payments, std::move(b));
  const pay::provider_ids& ids = payments->ids();
  const uint64_t other_installation = ids.installation_id() ^ 0x0101'0101'0000'0000ull;
  const u128 foreign = pay::payment_id(pay::issuer_of(other_installation, ids.generations()[0].nonce), 1);
  const u128 earlier = pay::payment_id(pay::issuer_of(ids.installation_id(), ids.generations()[0].nonce ^ 1), 1);
  const u128 legacy = pay::legacy_payment_id(1); // a store created since sent none
  alpha->add(foreign, 100);
  alpha->add(earlier, 100);
  alpha->add(legacy, 100);
  alpha->add(ids.id(1), 100);
  recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock);
  REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 4; }));
  rn.settle();
  CHECK(set_of(rn.cases()) == case_set{expect(ks::case_kind::missing_internal, foreign),
                                        expect(ks::case_kind::missing_internal, earlier),
                                        expect(ks::case_kind::missing_internal, legacy)});
  CHECK(rn.status().matched == 1);
}

TEST_CASE("after the upgrade of a payments store of format 1, statement lines under legacy ids still match their rows",
          "[recon][ids]") {
  temp_dir dir;
  // the fixture kassa wrote before provider ids carried an installation id: row 1 a top-up
  // whose outcome is unknown, row 2 a completed top-up of 2000, row 3 a withdrawal processing
  std::filesystem::create_directories(dir.path + "/payments");
  std::filesystem::copy_file(std::string(KASSA_STORE_TEST_DATA) + "/payments-v1/data.mdb",
                             dir.path + "/payments/data.mdb");
  auto payments = open_payments(dir.path + "/payments");
  const pay::provider_ids& ids = payments->ids();
  REQUIRE(ids.generations().size() == 1);
  CHECK(ids.generations()[0].sequence_first == 4);
  ks::payments_batch b;
  b.rows = {make_row(4, pay::order_state::completed, 4000)}; // after the upgrade
  write_ok(*payments, std::move(b));
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0 + second / 2);
  auto alpha = std::make_shared<fake_statement>();
  const u128 new_format_two = pay::payment_id(ids.issuer(), 2); // never sent for row 2
  alpha->add(pay::legacy_payment_id(2), 2000);
  alpha->add(pay::legacy_payment_id(1), 1000); // the unknown top-up: pending until it is final
  alpha->add(ids.id(4), 4000);
  alpha->add(new_format_two, 2000);
  alpha->add(pay::legacy_payment_id(4), 4000); // row 4 never had a legacy id
  recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock);
  REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 5; }));
  rn.settle();
  CHECK(ids.id(2) == pay::legacy_payment_id(2));
  CHECK(set_of(rn.cases()) == case_set{expect(ks::case_kind::missing_internal, new_format_two),
                                        expect(ks::case_kind::missing_internal, pay::legacy_payment_id(4))});
  CHECK(rn.status().matched == 2);
  CHECK(rn.status().providers[0].pending == 1);
}

TEST_CASE("the payment core opens suspense cases once; an operator resolves them", "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  recon_node rn(payments, dir.path + "/recon", {}, clock);
  open_case oc;
  oc.payment_id = payments->ids().id(42);
  oc.row_id = 42;
  oc.ledger = 1;
  oc.internal_amount = 100;
  oc.provider_amount = 120;
  oc.provider = "alpha";
  oc.trace_id = 77;
  const auto first = rn.node.ask<recon_case_opened>(rn.recon, oc);
  REQUIRE(first.error.ok());
  CHECK(first.id == 1);
  const auto second = rn.node.ask<recon_case_opened>(rn.recon, oc); // a retry of the same case
  REQUIRE(second.error.ok());
  CHECK(second.id == 0);
  auto cases = rn.cases(true);
  REQUIRE(cases.size() == 1);
  CHECK(cases[0].kind == uint8_t(ks::case_kind::suspense));
  CHECK(std::string(cases[0].provider) == "alpha");
  CHECK(cases[0].trace_id == 77);
  CHECK(rn.status().cases_open == 1);

  resolve_case accept;
  accept.id = 1;
  accept.note = "provider confirmed the difference";
  CHECK(rn.node.ask<recon_case_resolved>(rn.recon, accept).resolved());
  CHECK(rn.node.ask<recon_case_resolved>(rn.recon, accept).result == pay::case_result::case_resolved);
  accept.id = 99;
  CHECK(rn.node.ask<recon_case_resolved>(rn.recon, accept).result == pay::case_result::case_not_found);
  CHECK(rn.cases(true).empty());
  cases = rn.cases(false);
  REQUIRE(cases.size() == 1);
  CHECK(cases[0].status == uint8_t(ks::case_status::resolved));
  CHECK(cases[0].resolved_ns == t0);
  CHECK(rn.status().cases_open == 0);
}

TEST_CASE("resolving a suspense case with book moves the parked money once; a second resolution books nothing",
          "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  pay::order row = make_row(42, pay::order_state::in_review, 1007);
  row.account_id = 5;
  row.amount = 1000;
  ks::payments_batch rows;
  rows.rows = {row};
  write_ok(*payments, std::move(rows));
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  auto ledger = std::make_shared<fake_ledger>();
  recon_node rn(payments, dir.path + "/recon", {}, clock, ledger);
  REQUIRE(rn.open_suspense(*payments, row, 42, 1000, 1007) == 1);
  const u128 suspense = make_u128(0x5050, 5 * 1000 + 1);

  resolve_case r;
  r.id = 1;
  r.action = uint8_t(pay::case_action::book);
  r.by = "ops-anna";
  SECTION("bad requests change nothing") {
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::note_missing);
    r.note = "x";
    r.action = 9;
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::action_unknown);
    r.action = uint8_t(pay::case_action::accept);
    r.amount = 5;
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::amount_invalid);
    r.action = uint8_t(pay::case_action::book);
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::direction_invalid);
    r.direction = uint8_t(pay::case_direction::to_suspense);
    r.amount = 0;
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::amount_invalid);
    r.ledgers = {2};
    r.amount = 5;
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::ledger_forbidden);
    CHECK(ledger->applied == 0);
    CHECK(rn.cases(true).size() == 1);
  }
  SECTION("book from the case: all it parked, into the account; journaled; never twice") {
    r.note = "customer keeps the 7 the provider added";
    r.client_id = 9;
    const auto done = rn.node.ask<recon_case_resolved>(rn.recon, r);
    INFO(done.error.message);
    REQUIRE(done.resolved());
    CHECK(done.resolution.transfer_id == pay::case_transfer_id(1));
    CHECK(done.resolution.amount == 1007);
    CHECK(done.resolution.direction == uint8_t(pay::case_direction::from_suspense));
    REQUIRE(ledger->created.count(pay::case_transfer_id(1)) == 1);
    const ledger::transfer& t = ledger->created[pay::case_transfer_id(1)];
    CHECK(t.debit_account_id == suspense);
    CHECK(t.credit_account_id == 5);
    CHECK(t.amount == 1007);
    CHECK(t.ledger == 1);
    // asked again (a lost reply): refused, nothing booked again
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::case_resolved);
    CHECK(ledger->applied == 1);
    auto listed = rn.node.ask<recon_cases_reply>(rn.recon, recon_cases_request{false});
    REQUIRE(listed.resolutions.size() == 1);
    const ks::recon_resolution& j = listed.resolutions[0];
    CHECK(j.case_id == 1);
    CHECK(j.resolved_ns == t0);
    CHECK(j.client_id == 9);
    CHECK(std::string(j.by) == "ops-anna");
    CHECK(std::string(j.note) == "customer keeps the 7 the provider added");
    CHECK(j.action == uint8_t(pay::case_action::book));
    CHECK(j.transfer_id == pay::case_transfer_id(1));
    CHECK(rn.status().cases_open == 0);
  }
  // a booking that landed before kassad stopped, its journal entry lost
  auto booked_before = [&](u128 amount) {
    ledger::transfer earlier{};
    earlier.id = pay::case_transfer_id(1);
    earlier.debit_account_id = suspense;
    earlier.credit_account_id = 5;
    earlier.amount = amount;
    ledger->created[earlier.id] = earlier;
    ledger->put(earlier.id, amount);
  };
  SECTION("a booking made before a lost journal answers exists when asked again, and is journaled once") {
    booked_before(1007);
    resolve_case accept = r;
    accept.action = uint8_t(pay::case_action::accept);
    accept.note = "nothing to book";
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, accept).result == pay::case_result::case_booked);
    r.note = "retry";
    REQUIRE(rn.node.ask<recon_case_resolved>(rn.recon, r).resolved());
    CHECK(ledger->applied == 0);
  }
  SECTION("a retry with another amount than the booking made is refused") {
    booked_before(7);
    r.note = "retry";
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::booking_differs);
    CHECK(rn.cases(true).size() == 1);
  }
}

TEST_CASE("refunding a suspense case gives the parked money back through the provider once and books it out of "
          "suspense; the provider's statement line of it matches", "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  pay::order row = make_row(42, pay::order_state::in_review, 1007);
  row.account_id = 5;
  row.amount = 1000;
  pay::order out = make_row(43, pay::order_state::in_review, 300);
  out.kind = uint16_t(pay::kind::withdrawal);
  out.account_id = 5;
  ks::payments_batch rows;
  rows.rows = {row, out};
  write_ok(*payments, std::move(rows));
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  auto ledger = std::make_shared<fake_ledger>();
  auto alpha = std::make_shared<fake_statement>();
  recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock, ledger);
  REQUIRE(rn.open_suspense(*payments, row, 42, 1000, 1007) == 1);
  REQUIRE(rn.open_suspense(*payments, out, 43, 1000, 300) == 2); // money that went out: nothing to refund
  const u128 suspense = make_u128(0x5050, 5 * 1000 + 1);
  const u128 clearing = make_u128(0xC1EA, 5 * 1000 + 1);
  const u128 refund_id = payments->ids().case_refund_id(1);
  auto calls = [&] {
    std::lock_guard<std::mutex> g(alpha->mu);
    return alpha->calls;
  };

  resolve_case r;
  r.id = 1;
  r.action = uint8_t(pay::case_action::refund);
  r.note = "the customer meant 1000";
  SECTION("refused before the provider is asked") {
    r.direction = uint8_t(pay::case_direction::from_suspense);
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::direction_invalid);
    r.direction = 0;
    r.amount = 1008;
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::refund_exceeds_parked);
    r.amount = 0;
    r.id = 2;
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::refund_not_possible);
    CHECK(calls().empty());
    CHECK(ledger->applied == 0);
    CHECK(rn.cases(true).size() == 2);
  }
  SECTION("all that was parked, once; the statement line of the refund matches") {
    r.client_id = 9;
    const auto done = rn.node.ask<recon_case_resolved>(rn.recon, r);
    INFO(done.error.message);
    REQUIRE(done.resolved());
    CHECK(done.resolution.action == uint8_t(pay::case_action::refund));
    CHECK(done.resolution.amount == 1007);
    CHECK(done.resolution.transfer_id == pay::case_transfer_id(1));
    CHECK(done.resolution.debit_account_id == suspense);
    CHECK(done.resolution.credit_account_id == clearing);
    REQUIRE(calls().size() == 1);
    const payment_call c = calls()[0];
    CHECK(c.kind == call_kind::refund);
    CHECK(c.payment_id == refund_id);
    CHECK(c.refund_of == payments->ids().id(42));
    CHECK(c.amount == 1007);
    CHECK(c.ledger == 1);
    CHECK(c.account_id == 5);
    REQUIRE(ledger->created.count(pay::case_transfer_id(1)) == 1);
    const ledger::transfer& t = ledger->created[pay::case_transfer_id(1)];
    CHECK(t.debit_account_id == suspense);
    CHECK(t.credit_account_id == clearing);
    CHECK(t.amount == 1007);
    // asked again: refused, the provider not asked again, nothing booked again
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::case_resolved);
    CHECK(calls().size() == 1);
    CHECK(ledger->applied == 1);
    // the provider's statement shows the refund under the case-refund id
    const uint64_t matched = rn.status().matched;
    alpha->add(refund_id, 1007);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 1; }));
    rn.settle();
    CHECK(rn.status().matched == matched + 1);
    CHECK(rn.cases(true).size() == 1); // case 2 only
  }
  SECTION("a part of it; a provider that gives back more is booked as asked, its statement line a mismatch") {
    r.amount = 500;
    {
      std::lock_guard<std::mutex> g(alpha->mu);
      alpha->refund_extra = 2;
    }
    const auto done = rn.node.ask<recon_case_resolved>(rn.recon, r);
    REQUIRE(done.resolved());
    CHECK(done.resolution.amount == 500);
    CHECK(ledger->created[pay::case_transfer_id(1)].amount == 500);
    alpha->add(refund_id, 502);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 1; }));
    rn.settle();
    CHECK(set_of(rn.cases(true)) ==
          case_set{expect(ks::case_kind::suspense, payments->ids().id(43)), expect(ks::case_kind::amount_mismatch, refund_id)});
  }
  SECTION("a decline or an unclear answer leaves the case open; asking again sends the same refund") {
    auto answer_with = [&](call_status st) {
      std::lock_guard<std::mutex> g(alpha->mu);
      alpha->answered.clear();
      alpha->refund_status = st;
    };
    answer_with(call_status::declined);
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::provider_declined);
    answer_with(call_status::rejected);
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::provider_unavailable);
    answer_with(call_status::pending);
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::refund_outcome_unknown);
    {
      std::lock_guard<std::mutex> g(alpha->mu);
      alpha->silent = true;
    }
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::refund_outcome_unknown);
    CHECK(ledger->applied == 0);
    CHECK(rn.cases(true).size() == 2);
    // the statement shows the refund before kassa knows of it: it waits the grace
    alpha->add(refund_id, 1007);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 1; }));
    rn.settle();
    CHECK(rn.status().providers[0].pending == 1);
    {
      std::lock_guard<std::mutex> g(alpha->mu);
      alpha->silent = false;
      alpha->refund_status = call_status::succeeded;
    }
    REQUIRE(rn.node.ask<recon_case_resolved>(rn.recon, r).resolved());
    for (const payment_call& c : calls()) CHECK(c.payment_id == refund_id);
    CHECK(ledger->applied == 1);
    rn.settle();
    CHECK(rn.status().providers[0].pending == 0);
    CHECK(rn.cases(true).size() == 1);
  }
  SECTION("a refund line of a case never refunded becomes missing_internal after the grace") {
    alpha->add(refund_id, 1007);
    alpha->add(payments->ids().case_refund_id(77), 5); // no such case
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 2; }));
    rn.settle();
    CHECK(rn.status().providers[0].pending == 1);
    clock->store(t0 + 2 * second);
    rn.settle();
    // (the rows' own charges never showed in a statement either)
    CHECK(set_of(rn.cases(true)) == case_set{expect(ks::case_kind::suspense, payments->ids().id(42)),
                                            expect(ks::case_kind::suspense, payments->ids().id(43)),
                                            expect(ks::case_kind::missing_provider, payments->ids().id(42)),
                                            expect(ks::case_kind::missing_provider, payments->ids().id(43)),
                                            expect(ks::case_kind::missing_internal, refund_id),
                                            expect(ks::case_kind::missing_internal, payments->ids().case_refund_id(77))});
  }
}

TEST_CASE("a compensating refund the statement shows after the payment core gave up on it is booked out of "
          "suspense once, and its case resolved by kassa", "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  pay::order row = make_row(42, pay::order_state::in_review, 1000); // charged 1000, not booked, refund failed
  row.account_id = 5;
  row.amount = 1000;
  ks::payments_batch rows;
  rows.rows = {row};
  write_ok(*payments, std::move(rows));
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  auto ledger = std::make_shared<fake_ledger>();
  auto alpha = std::make_shared<fake_statement>();
  recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock, ledger);
  // what the flow opens when its compensating refund fails
  REQUIRE(rn.open_suspense(*payments, row, 42, 1000, 1000) == 1);
  const u128 compensation = payments->ids().id(42, pay::call_role::compensation);
  const u128 suspense = make_u128(0x5050, 5 * 1000 + 1);
  const u128 clearing = make_u128(0xC1EA, 5 * 1000 + 1);
  alpha->add(payments->ids().id(42), 1000); // the charge

  SECTION("all of it: booked, resolved, the line matched; nothing asked of the provider") {
    alpha->add(compensation, 1000);
    REQUIRE(eventually([&] { return rn.cases(true).empty(); }));
    rn.settle();
    REQUIRE(ledger->created.count(pay::case_transfer_id(1)) == 1);
    const ledger::transfer& t = ledger->created[pay::case_transfer_id(1)];
    CHECK(t.debit_account_id == suspense);
    CHECK(t.credit_account_id == clearing);
    CHECK(t.amount == 1000);
    CHECK(ledger->applied == 1);
    auto listed = rn.node.ask<recon_cases_reply>(rn.recon, recon_cases_request{false});
    REQUIRE(listed.cases.size() == 1);
    CHECK(listed.resolutions[0].action == uint8_t(pay::case_action::refund));
    CHECK(listed.resolutions[0].amount == 1000);
    CHECK(std::string(listed.resolutions[0].by) == "kassa");
    CHECK(rn.status().providers[0].pending == 0);
    CHECK(rn.status().matched == 2);
    {
      std::lock_guard<std::mutex> g(alpha->mu);
      CHECK(alpha->calls.empty());
    }
    // an operator asking later finds it resolved; nothing is booked again
    resolve_case r;
    r.id = 1;
    r.action = uint8_t(pay::case_action::refund);
    r.note = "give it back";
    CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::case_resolved);
    CHECK(ledger->applied == 1);
  }
  SECTION("more than was parked: a mismatch, the case stays open, nothing booked") {
    alpha->add(compensation, 1001);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 2; }));
    rn.settle();
    CHECK(set_of(rn.cases(true)) == case_set{expect(ks::case_kind::suspense, payments->ids().id(42)),
                                            expect(ks::case_kind::amount_mismatch, compensation)});
    CHECK(ledger->applied == 0);
  }
  SECTION("an operator booked the parked money before: the refund's line is money kassa has no record of") {
    resolve_case r;
    r.id = 1;
    r.action = uint8_t(pay::case_action::book);
    r.note = "the customer keeps it";
    REQUIRE(rn.node.ask<recon_case_resolved>(rn.recon, r).resolved());
    alpha->add(compensation, 1000);
    REQUIRE(eventually([&] { return rn.status().providers[0].cursor == 2; }));
    rn.settle();
    clock->store(t0 + 2 * second);
    rn.settle();
    CHECK(set_of(rn.cases(true)) == case_set{expect(ks::case_kind::missing_internal, compensation)});
    CHECK(ledger->applied == 1); // the operator's booking only
  }
}

TEST_CASE("a case's refund to a provider that wants a credential carries one; without one it is not sent",
          "[recon]") {
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  pay::order row = make_row(42, pay::order_state::in_review, 1007);
  row.account_id = 5;
  ks::payments_batch rows;
  rows.rows = {row};
  write_ok(*payments, std::move(rows));
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  auto ledger = std::make_shared<fake_ledger>();
  auto alpha = std::make_shared<fake_statement>();
  recon_node rn(payments, dir.path + "/recon", {{"alpha", alpha}}, clock, ledger, {},
                [](reconciler_options& o) { o.credential_providers = {"alpha"}; });
  REQUIRE(rn.open_suspense(*payments, row, 42, 0, 1007) == 1);
  resolve_case r;
  r.id = 1;
  r.action = uint8_t(pay::case_action::refund);
  r.note = "refund";
  {
    std::lock_guard<std::mutex> g(alpha->mu);
    alpha->down = true; // no credential
  }
  CHECK(rn.node.ask<recon_case_resolved>(rn.recon, r).result == pay::case_result::provider_unavailable);
  {
    std::lock_guard<std::mutex> g(alpha->mu);
    CHECK(alpha->calls.empty());
    alpha->down = false;
  }
  REQUIRE(rn.node.ask<recon_case_resolved>(rn.recon, r).resolved());
  std::lock_guard<std::mutex> g(alpha->mu);
  REQUIRE(alpha->calls.size() == 1);
  CHECK(alpha->calls[0].credential == "tok-1");
}

namespace {

ks::journal_entry note(const pay::order& row, const std::string& step, u128 amount) {
  ks::journal_entry e;
  e.row_id = row.id;
  e.kind = row.kind;
  e.state = row.state;
  e.amount = amount;
  set_name(e.step, step);
  set_name(e.actor, "flow");
  return e;
}

} // namespace

TEST_CASE("every difference between the payment rows and the ledger's bookings becomes exactly one case; a clean "
          "ledger opens none",
          "[recon][bookings]") {
  seed("recon bookings"); // the scenario is fixed; printed for the record
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  auto ledger = std::make_shared<fake_ledger>();
  using s = pay::order_state;
  using pay::kind;
  using pay::leg;
  const auto tid = [](uint64_t seq, leg l, uint32_t attempt = 0) { return pay::transfer_id(seq, l, attempt); };
  auto row = [](uint64_t seq, kind k, s state, u128 captured, u128 fee) {
    pay::order r = make_row(seq, state, 0, "");
    r.kind = uint16_t(k);
    r.amount = captured;
    r.amount_captured = captured;
    r.fee = fee;
    return r;
  };

  const pay::order topup = row(1, kind::topup, s::completed, 100, 2);
  const pay::order transfer = row(2, kind::transfer, s::completed, 300, 3);
  const pay::order payout = row(3, kind::withdrawal, s::completed, 500, 5);
  const pay::order declined = row(4, kind::topup, s::failed, 0, 0);
  const pay::order item = row(5, kind::pay, s::completed, 600, 0);    // its notes were lost
  const pay::order in_flight = row(6, kind::pay, s::processing, 0, 0); // held, not captured yet
  const pay::order order = row(7, kind::create_order, s::completed, 600, 0);
  ks::payments_batch b;
  b.rows = {topup, transfer, payout, declined, item, in_flight, order};
  b.journal = {note(topup, "book_topup", 100),     note(topup, "book_fee", 2),
               note(transfer, "book_transfer", 300), note(transfer, "book_fee", 3),
               note(payout, "hold", 500),          note(payout, "book_withdrawal", 500),
               note(payout, "book_fee", 5),        note(declined, "provider_declined", 0),
               note(item, "accepted", 600),        note(in_flight, "hold", 700),
               note(order, "book_capture_bal", 600)};
  write_ok(*payments, std::move(b));

  // What the payment core booked for them: the payout's post landed under attempt 2 (its
  // first attempts across shards were undone).
  ledger->put(tid(1, leg::book), 100);
  ledger->put(tid(1, leg::fee), 2);
  ledger->put(tid(2, leg::book), 300);
  ledger->put(tid(2, leg::fee), 3);
  ledger->put(tid(3, leg::hold), 500);
  ledger->put(tid(3, leg::hold_fee), 5);
  ledger->put(tid(3, leg::post, 2), 500);
  ledger->put(tid(3, leg::post_fee), 5);
  ledger->put(tid(5, leg::post), 600);
  ledger->put(tid(5, leg::forward), 600);
  ledger->put(tid(6, leg::hold), 700);

  {
    recon_node rn(payments, dir.path + "/recon", {}, clock, ledger);
    rn.settle_bookings();
    CHECK(rn.cases().empty());
    CHECK(rn.status().booking_rows_checked == 6); // not the order: it books nothing itself
    CHECK(rn.status().booking_last_error.empty());
  }

  // The ledger loses a booking, holds one with another amount, one twice, one for a failed row.
  ledger->erase(tid(1, leg::book));
  ledger->put(tid(2, leg::fee), 4);
  ledger->put(tid(3, leg::post, 3), 500);
  ledger->put(tid(4, leg::book), 400);
  ledger->erase(tid(5, leg::post));
  const case_set expected = {
      expect(ks::case_kind::missing_booking, tid(1, leg::book)),
      expect(ks::case_kind::booking_amount_mismatch, tid(2, leg::fee)),
      expect(ks::case_kind::booking_amount_mismatch, tid(3, leg::post, 2)),
      expect(ks::case_kind::row_status_mismatch, tid(4, leg::book)),
      expect(ks::case_kind::missing_booking, tid(5, leg::book)),
  };
  // Each row is looked up again when the journal names it anew.
  auto touch = [&payments](std::vector<pay::order> rows) {
    ks::payments_batch more;
    for (const auto& r : rows) more.journal.push_back(note(r, "resumed", 0));
    write_ok(*payments, std::move(more));
  };
  // What kassad would log: one line per case, when it opens.
  auto logged = std::make_shared<std::vector<std::string>>();
  auto log_mu = std::make_shared<std::mutex>();
  auto log = [logged, log_mu](const std::string& line) {
    std::lock_guard<std::mutex> g(*log_mu);
    logged->push_back(line);
  };
  auto log_lines = [logged, log_mu] {
    std::lock_guard<std::mutex> g(*log_mu);
    return *logged;
  };
  std::vector<ks::recon_case> first_cases;
  {
    // A restart does not look up again what was looked up before: the journal cursor is durable.
    recon_node rn(payments, dir.path + "/recon", {}, clock, ledger, log);
    rn.settle_bookings();
    CHECK(rn.cases().empty());
    CHECK(rn.status().booking_rows_checked == 6);

    // A ledger that is down delays only this side.
    ledger->set_down(true);
    touch({topup, transfer, payout, declined, item, in_flight});
    REQUIRE(eventually([&] { return rn.status().booking_last_error.find("ledger") != std::string::npos; }));
    CHECK(rn.cases().empty());
    CHECK(rn.status().booking_rows_queued > 0);
    ledger->set_down(false);
    rn.settle_bookings();
    first_cases = rn.cases();
    CHECK(set_of(first_cases) == expected);
    std::map<u128, ks::recon_case> by_row;
    for (const auto& c : first_cases) by_row[c.row_id] = c;
    CHECK(by_row[topup.id].internal_amount == 100);
    CHECK(by_row[topup.id].provider_amount == 0);
    CHECK(by_row[transfer.id].internal_amount == 3);
    CHECK(by_row[transfer.id].provider_amount == 4);
    CHECK(by_row[payout.id].internal_amount == 500);
    CHECK(by_row[payout.id].provider_amount == 1000); // booked twice
    CHECK(by_row[declined.id].internal_amount == 0);
    CHECK(by_row[declined.id].provider_amount == 400);
    CHECK(by_row[item.id].internal_amount == 600);
    CHECK(by_row[item.id].trace_id == item.trace_id);
    CHECK(rn.status().cases_open == expected.size());
    CHECK(rn.status().booking_rows_checked == 12);
    const auto lines = log_lines();
    REQUIRE(lines.size() == expected.size());
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
            return l.find("kind=booking_amount_mismatch") != std::string::npos &&
                   l.find("row_amount=500 ledger_amount=1000") != std::string::npos;
          }) == 1);
  }
  {
    // After a restart the same differences found again are the same cases, logged once.
    recon_node rn(payments, dir.path + "/recon", {}, clock, ledger, log);
    touch({topup, transfer, payout, declined, item});
    rn.settle_bookings();
    CHECK(rn.status().booking_rows_checked == 17);
    const auto again = rn.cases();
    REQUIRE(again.size() == first_cases.size());
    for (size_t i = 0; i < again.size(); ++i) CHECK(again[i].id == first_cases[i].id);
    CHECK(log_lines().size() == expected.size());

    // The held item loses its hold.
    ledger->erase(tid(6, leg::hold));
    touch({in_flight});
    rn.settle_bookings();
    case_set all = expected;
    all.insert(expect(ks::case_kind::missing_booking, tid(6, leg::hold)));
    CHECK(set_of(rn.cases()) == all);
  }
}

TEST_CASE("a booking no payment row made opens exactly one case, also after a restart; a clean ledger and a case's "
          "correcting transfer open none",
          "[recon][bookings]") {
  seed("recon booking without row"); // the scenario is fixed; printed for the record
  temp_dir dir;
  auto payments = open_payments(dir.path + "/payments");
  auto clock = std::make_shared<std::atomic<uint64_t>>(t0);
  auto ledger = std::make_shared<fake_ledger>();
  using pay::leg;
  const auto tid = [](uint64_t seq, leg l, uint32_t attempt = 0) { return pay::transfer_id(seq, l, attempt); };
  ks::payments_batch b;
  b.rows = {make_row(1, pay::order_state::completed, 0, ""), make_row(2, pay::order_state::failed, 0, "")};
  write_ok(*payments, std::move(b));
  ledger->put(tid(1, leg::book), 100);
  ledger->put(tid(1, leg::fee), 1);
  ledger->put(tid(2, leg::hold), 200);
  ledger->put(tid(2, leg::void_hold, 1), 200);
  ledger->put(make_u128(0xA0, 1), 5); // not a payment-core id: outside the range
  auto logged = std::make_shared<std::vector<std::string>>();
  auto log_mu = std::make_shared<std::mutex>();
  auto log = [logged, log_mu](const std::string& line) {
    std::lock_guard<std::mutex> g(*log_mu);
    logged->push_back(line);
  };
  auto log_lines = [logged, log_mu] {
    std::lock_guard<std::mutex> g(*log_mu);
    return *logged;
  };

  const case_set expected = {expect(ks::case_kind::booking_without_row, tid(9, leg::book, 1)),
                             expect(ks::case_kind::booking_without_row, tid(9, leg::fee))};
  std::vector<ks::recon_case> first;
  {
    recon_node rn(payments, dir.path + "/recon", {}, clock, ledger, log);
    rn.settle_scan();
    CHECK(rn.cases().empty());
    CHECK(rn.status().booking_scan_ids >= 4);
    CHECK(rn.status().booking_scan_last_error.empty());

    // Row 9 was never written (a ledger restored from a later copy than the payments store,
    // say), yet the ledger holds two of its bookings; a case's correcting transfer names a case
    // id where a row's sequence would be.
    ledger->put(tid(9, leg::book, 1), 900);
    ledger->put(tid(9, leg::fee), 9);
    ledger->put(pay::transfer_id(3, leg::case_correction), 30);
    rn.settle_scan();
    first = rn.cases();
    CHECK(set_of(first) == expected);
    for (const auto& c : first) {
      CHECK(c.row_id == 0);
      CHECK(c.internal_amount == 0);
      CHECK(c.provider_amount == (c.payment_id == tid(9, leg::book, 1) ? 900 : 9));
      CHECK(c.ledger == 1);
      CHECK(c.status == uint8_t(ks::case_status::open));
    }
    const auto lines = log_lines();
    REQUIRE(lines.size() == 2);
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
            return l.find("kind=booking_without_row row=0") != std::string::npos &&
                   l.find("row_amount=0 ledger_amount=900") != std::string::npos;
          }) == 1);
    rn.settle_scan(); // found again on the next passes: the same cases
    CHECK(rn.cases().size() == 2);

    // A ledger that does not answer delays only this side; the cursor stays.
    ledger->set_down(true);
    REQUIRE(eventually([&] { return rn.status().booking_scan_last_error.find("ledger") != std::string::npos; }));
    ledger->set_down(false);
    rn.settle_scan();
    CHECK(rn.status().booking_scan_last_error.empty());
  }
  {
    // A restart scans from the start again and finds the same cases, opened and logged once.
    recon_node rn(payments, dir.path + "/recon", {}, clock, ledger, log);
    rn.settle_scan();
    const auto again = rn.cases();
    REQUIRE(again.size() == first.size());
    for (size_t i = 0; i < again.size(); ++i) CHECK(again[i].id == first[i].id);
    CHECK(rn.status().cases_open == 2);
    CHECK(log_lines().size() == 2);
  }
}
