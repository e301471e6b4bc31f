// The round planner (ledger/planner.hpp) against the model, without actors: random rounds of
// requests over several shards (each shard a state machine of its own) with a split hot
// account. Each round is probed as the directory probes it, planned, and applied batch by
// batch; then:
//   - every answer (the planner's, or the shard's for an account unit within one shard) equals
//     the single-shard state machine's, applying the same requests one after the other;
//   - every shard takes every event the planner decided (no shard refuses one);
//   - every account, as the shards hold it (a split account with its sub-accounts), and every
//     transfer, as a client sees it (view_of over the shards), equals the model's;
//   - the clearing accounts of every pair of shards mirror each other.
// KASSA_SEED replays a run; KASSA_PLANNER_RUNS sets the runs per topology (default 40).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ledger/planner.hpp"
#include "ledger/state_machine.hpp"
#include "ledger/system_ids.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::ledger;
namespace sid = kassa::ledger::system_ids;

namespace {

struct cluster {
  uint32_t n;
  std::vector<std::unique_ptr<state_machine>> shards;
  planner::state st;
  uint64_t clock = 1'000'000'000'000ull;

  explicit cluster(uint32_t shards_count) : n(shards_count) {
    st.shards = n;
    for (uint32_t s = 0; s < n; ++s) shards.push_back(std::make_unique<state_machine>());
  }

  // What the directory's round_start and round_read_pending_accounts ask of the shards: the
  // ids and pending ids the requests name (from every shard), and the accounts.
  void probe(planner::round& r, const std::vector<planner::request*>& reqs) {
    std::set<u128> ids;
    for (const planner::request* w : reqs) {
      for (size_t k = w->cursor; k < w->transfer_events.size(); ++k) {
        ids.insert(w->transfer_events[k].id);
        if (w->transfer_events[k].pending_id != 0) ids.insert(w->transfer_events[k].pending_id);
      }
    }
    for (u128 id : ids) {
      if (id == 0 || id == u128_max) continue;
      for (uint32_t s = 0; s < n; ++s) {
        if (const transfer* t = shards[s]->transfer_find(id)) {
          const pending_state ps = shards[s]->pending_find(id);
          r.probed[id].entries.emplace_back(s, probe_entry{0, *t, ps.status, ps.expires_at_ns});
        }
      }
    }
    // Every account the shards hold (a superset of what the directory reads: the model needs
    // the accounts the round names, and more changes nothing).
    for (uint32_t s = 0; s < n; ++s) {
      shards[s]->accounts_for_each([&](const account& a) {
        if (!sid::is_clearing(a.id)) r.accounts[a.id] = a;
      });
    }
  }

  // Plans one round and applies it; returns false (with `why`) when a shard refused an event
  // the planner decided.
  bool round(std::vector<planner::request*>& reqs, std::string& why) {
    planner::round r;
    r.now = clock;
    probe(r, reqs);
    planner::plan_round(st, r, reqs, {}, clock);
    clock += 1'000'000;
    for (uint32_t s = 0; s < n; ++s) {
      planner::shard_batch& b = r.batches[s];
      if (!b.accounts.empty()) {
        auto got = shards[s]->create_accounts(b.accounts.data(), b.accounts.size(), clock, b.accounts_system.data(),
                                              b.accounts_stamp.data());
        for (size_t k = 0; k < got.size(); ++k) {
          const planner::origin& o = b.accounts_origin[k];
          if (o.w != nullptr && o.saga < 0) {
            o.w->results[o.index] = static_cast<uint32_t>(got[k]);
          } else if (got[k] != account_result::ok && !(o.w == nullptr && got[k] == account_result::exists)) {
            why = "shard " + std::to_string(s) + " refused account " + to_string_u128(b.accounts[k].id) + ": " +
                  std::string(name(got[k]));
            return false;
          }
        }
      }
      if (!b.transfers.empty()) {
        auto got = shards[s]->create_transfers(b.transfers.data(), b.transfers.size(), clock,
                                               b.transfers_system.data(), b.transfers_stamp.data());
        for (size_t k = 0; k < got.size(); ++k) {
          if (got[k] == transfer_result::ok) continue;
          why = "shard " + std::to_string(s) + " refused transfer " + to_string_u128(b.transfers[k].id) + ": " +
                std::string(name(got[k]));
          return false;
        }
      }
    }
    for (const auto& [parent, index] : r.subs_to_create) {
      st.hot[parent].confirmed[index] = true;
    }
    return true;
  }

  // An account as a client sees it: a split account with what its sub-accounts hold.
  bool account_of(u128 id, account& out) const {
    const account* a = shards[shard_of(id, n)]->account_find(id);
    if (a == nullptr) return false;
    out = *a;
    auto h = st.hot.find(id);
    if (h == st.hot.end()) return true;
    for (uint32_t x = 0; x < h->second.created.size(); ++x) {
      const u128 sub = sid::sub(id, x);
      const account* s = shards[shard_of(sub, n)]->account_find(sub);
      if (s == nullptr) continue;
      out.credits_posted += s->credits_posted - s->debits_posted;
    }
    return true;
  }

  bool transfer_of(u128 id, planner::view& v) const {
    planner::held h;
    for (uint32_t s = 0; s < n; ++s) {
      if (const transfer* t = shards[s]->transfer_find(id)) {
        const pending_state ps = shards[s]->pending_find(id);
        h.entries.emplace_back(s, probe_entry{0, *t, ps.status, ps.expires_at_ns});
      }
    }
    return h.found() && planner::view_of(st, h, v) && planner::visible(v);
  }
};

struct generator {
  std::mt19937_64 rng;
  std::vector<u128> accounts;
  u128 hot = 0;
  u128 next_id = 1000;
  std::vector<transfer> sent; // every transfer event sent, for duplicates and posts

  explicit generator(uint64_t seed) : rng(seed) {}
  uint64_t below(uint64_t n) { return rng() % n; }

  std::vector<account> accounts_request() {
    std::vector<account> out;
    for (uint32_t i = 0; i < 12; ++i) {
      account a{};
      a.id = u128{i + 1} * 7919;
      a.ledger = i < 9 ? 1 : 2;
      a.code = 10;
      const uint64_t f = below(4);
      a.flags = f == 1 ? account_debits_must_not_exceed_credits : f == 2 ? account_credits_must_not_exceed_debits : 0;
      if (below(3) == 0) a.flags |= account_history;
      if (i == 0) a.flags = account_debits_must_not_exceed_credits | account_history; // the hot one
      // Some accounts come in linked chains (across shards, mostly).
      if (i % 4 != 3 && below(2) == 0) a.flags |= account_linked;
      out.push_back(a);
      accounts.push_back(a.id);
    }
    out.back().flags &= static_cast<uint16_t>(~account_linked);
    hot = accounts[0];
    return out;
  }

  u128 any_account() { return below(5) == 0 ? hot : accounts[below(accounts.size())]; }

  transfer plain() {
    transfer t{};
    t.id = next_id++;
    t.debit_account_id = any_account();
    do t.credit_account_id = any_account(); while (t.credit_account_id == t.debit_account_id && below(20) != 0);
    t.amount = 1 + below(60);
    t.ledger = 1;
    t.code = 1;
    // Accounts of ledger 2 take ledger 2 (most of the time).
    const bool l2 = t.debit_account_id >= u128{10} * 7919 || t.credit_account_id >= u128{10} * 7919;
    if (l2 && below(8) != 0) t.ledger = 2;
    return t;
  }

  transfer event() {
    const uint64_t kind = below(100);
    transfer t = plain();
    if (kind < 40) return t;
    if (kind < 55) { // pending
      t.flags |= transfer_pending;
      if (below(3) == 0) t.timeout = 3600;
      return t;
    }
    if (kind < 70) { // post or void of an earlier pending transfer (any: refused if not pending)
      std::vector<const transfer*> pend;
      for (const transfer& s : sent) if (has(s.flags, transfer_pending)) pend.push_back(&s);
      if (pend.empty()) return t;
      const transfer& p = *pend[below(pend.size())];
      transfer r{};
      r.id = next_id++;
      r.pending_id = p.id;
      r.flags = below(2) == 0 ? transfer_post_pending : transfer_void_pending;
      if (has(r.flags, transfer_post_pending) && below(2) == 0) r.amount = 1 + below(p.amount);
      if (below(6) == 0) r.amount = p.amount + 1; // too much
      return r;
    }
    if (kind < 78) { // balancing
      t.flags |= below(2) == 0 ? transfer_balancing_debit : transfer_balancing_credit;
      t.amount = below(3) == 0 ? 0 : t.amount;
      return t;
    }
    if (kind < 88 && !sent.empty()) { // a duplicate, or one with a field changed
      transfer d = sent[below(sent.size())];
      d.flags &= static_cast<uint16_t>(~transfer_linked);
      if (below(2) == 0) d.amount += 1;
      return d;
    }
    if (kind < 92) { // invalid
      if (below(2) == 0) t.id = 0;
      else t.credit_account_id = t.debit_account_id;
      return t;
    }
    if (kind < 95) { // closing (pending)
      t.flags |= transfer_pending | (below(2) == 0 ? transfer_closing_debit : transfer_closing_credit);
      return t;
    }
    t.amount = 1'000'000; // too much for any limited account
    return t;
  }

  std::vector<transfer> transfers_request() {
    std::vector<transfer> out;
    const size_t n = 1 + below(5);
    for (size_t i = 0; i < n; ++i) {
      transfer t = event();
      if (below(4) == 0) t.flags |= transfer_linked; // chains (one left open now and then)
      out.push_back(t);
    }
    if (below(5) != 0) out.back().flags &= static_cast<uint16_t>(~transfer_linked);
    for (const transfer& t : out) sent.push_back(t);
    return out;
  }
};

std::string codes(const std::vector<uint32_t>& v, bool accounts) {
  std::string s;
  for (uint32_t c : v) {
    s += accounts ? std::string(name(static_cast<account_result>(c))) : std::string(name(static_cast<transfer_result>(c)));
    s += " ";
  }
  return s;
}

std::string describe(const transfer& t) {
  return "{id " + to_string_u128(t.id) + " " + to_string_u128(t.debit_account_id) + "->" + to_string_u128(t.credit_account_id) +
         " amount " + to_string_u128(t.amount) + " pending_id " + to_string_u128(t.pending_id) + " flags " +
         std::to_string(t.flags) + " ledger " + std::to_string(t.ledger) + "}";
}

// Runs `rounds` batches of one to three requests on `shards_count` shards; returns the first
// difference, or an empty string.
std::string run(uint64_t seed, uint32_t shards_count, bool split, size_t rounds) {
  cluster c(shards_count);
  generator g(seed);
  state_machine model;
  uint64_t model_now = 1'000'000'000'000ull;
  auto first = std::make_unique<planner::request>();
  first->accounts = true;
  first->account_events = g.accounts_request();
  first->results.assign(first->account_events.size(), 0);
  if (split) c.st.hot[g.hot].sub_accounts = 4;
  std::vector<std::unique_ptr<planner::request>> reqs;
  reqs.push_back(std::move(first));
  for (size_t b = 0; b < rounds; ++b) {
    std::vector<planner::request*> batch;
    if (b > 0) {
      const size_t k = 1 + g.below(3);
      for (size_t x = 0; x < k; ++x) {
        auto w = std::make_unique<planner::request>();
        w->transfer_events = g.transfers_request();
        w->results.assign(w->transfer_events.size(), 0);
        reqs.push_back(std::move(w));
        batch.push_back(reqs.back().get());
      }
    } else {
      batch.push_back(reqs.back().get());
    }
    // Rounds until every request is decided (the planner leaves a request that names an id
    // planned earlier in the round for the next one, with every request after it).
    std::vector<planner::request*> left = batch;
    for (int guard = 0; !left.empty(); ++guard) {
      if (guard > 64) return "batch " + std::to_string(b) + ": the requests never finish";
      std::string why;
      if (!c.round(left, why)) return "batch " + std::to_string(b) + ": " + why;
      std::vector<planner::request*> rest;
      for (planner::request* w : left) if (w->cursor < w->size()) rest.push_back(w);
      left = rest;
    }
    // The model takes the batch's requests one after the other.
    for (size_t x = 0; x < batch.size(); ++x) {
      planner::request& w = *batch[x];
      std::vector<uint32_t> want;
      model_now += 1'000'000;
      if (w.accounts) {
        for (auto code : model.create_accounts(w.account_events.data(), w.account_events.size(), model_now)) {
          want.push_back(static_cast<uint32_t>(code));
        }
      } else {
        for (auto code : model.create_transfers(w.transfer_events.data(), w.transfer_events.size(), model_now)) {
          want.push_back(static_cast<uint32_t>(code));
        }
      }
      if (want != w.results) {
        std::string events;
        for (const transfer& t : w.transfer_events) events += describe(t) + " ";
        return "batch " + std::to_string(b) + " request " + std::to_string(x) + " " + events + ": model " +
               codes(want, w.accounts) + "planner " + codes(w.results, w.accounts);
      }
    }
    // The state, as clients see it.
    for (u128 id : g.accounts) {
      const account* want = model.account_find(id);
      account got{};
      const bool found = c.account_of(id, got);
      if ((want != nullptr) != found) return "batch " + std::to_string(b) + ": account " + to_string_u128(id) + " exists on one side only";
      if (want == nullptr) continue;
      if (want->debits_posted != got.debits_posted || want->debits_pending != got.debits_pending ||
          want->credits_posted != got.credits_posted || want->credits_pending != got.credits_pending ||
          want->flags != got.flags) {
        return "batch " + std::to_string(b) + ": account " + to_string_u128(id) + (id == g.hot ? " (hot)" : "") +
               " differs: model dp " + to_string_u128(want->debits_pending) + " dP " + to_string_u128(want->debits_posted) +
               " cp " + to_string_u128(want->credits_pending) + " cP " + to_string_u128(want->credits_posted) +
               ", shards dp " + to_string_u128(got.debits_pending) + " dP " + to_string_u128(got.debits_posted) +
               " cp " + to_string_u128(got.credits_pending) + " cP " + to_string_u128(got.credits_posted);
      }
    }
    for (const transfer& t : g.sent) {
      const transfer* want = model.transfer_find(t.id);
      planner::view v;
      const bool found = t.id != 0 && c.transfer_of(t.id, v);
      if ((want != nullptr) != found) {
        return "batch " + std::to_string(b) + ": transfer " + to_string_u128(t.id) + (want ? " is missing" : " should not exist");
      }
      if (want == nullptr) continue;
      if (v.t.amount != want->amount || v.t.debit_account_id != want->debit_account_id ||
          v.t.credit_account_id != want->credit_account_id || v.t.flags != want->flags ||
          v.t.pending_id != want->pending_id || v.status != model.pending_find(t.id).status) {
        return "batch " + std::to_string(b) + ": transfer " + to_string_u128(t.id) + " differs";
      }
    }
  }
  // The clearing accounts of every pair mirror each other: what one shard's owes the other,
  // the other's is owed.
  for (uint32_t a = 0; a < shards_count; ++a) {
    for (uint32_t b = 0; b < shards_count; ++b) {
      if (a == b) continue;
      for (uint32_t ledger : {1u, 2u}) {
        for (bool two_phase : {false, true}) {
          const account* x = c.shards[a]->account_find(sid::clearing(a, b, ledger, two_phase));
          const account* y = c.shards[b]->account_find(sid::clearing(b, a, ledger, two_phase));
          if ((x == nullptr) != (y == nullptr)) return "a clearing account without its mirror";
          if (x == nullptr) continue;
          if (x->credits_posted != y->debits_posted || x->debits_posted != y->credits_posted ||
              x->credits_pending != y->debits_pending || x->debits_pending != y->credits_pending) {
            return "clearing accounts " + std::to_string(a) + "/" + std::to_string(b) + " do not mirror";
          }
        }
      }
    }
  }
  return {};
}

} // namespace

TEST_CASE("the round planner answers as the single-shard model, and the shards take what it decides",
          "[planner][property]") {
  const uint64_t seed = kassa::test::seed("planner");
  std::mt19937_64 seeds(seed);
  // KASSA_PLANNER_RUNS: runs per topology (300 batches each); scripts/test.sh --long runs 2,000.
  const int runs = std::getenv("KASSA_PLANNER_RUNS") ? std::atoi(std::getenv("KASSA_PLANNER_RUNS")) : 40;
  struct topo {
    uint32_t shards;
    bool split;
  };
  for (topo t : {topo{1, true}, topo{2, false}, topo{3, true}, topo{4, false}, topo{4, true}}) {
    for (int run_index = 0; run_index < runs; ++run_index) {
      const uint64_t s = seeds();
      const size_t rounds = 300;
      std::string d = run(s, t.shards, t.split, rounds);
      if (d.empty()) continue;
      // The fewest batches that still differ.
      size_t lo = 1, hi = rounds;
      while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (!run(s, t.shards, t.split, mid).empty()) hi = mid;
        else lo = mid + 1;
      }
      d = run(s, t.shards, t.split, hi);
      FAIL("seed " << seed << " (run " << s << "), " << t.shards << " shards" << (t.split ? ", hot account split" : "")
                   << ", " << hi << " batches: " << d);
    }
  }
}

namespace {

// Accounts a and a2 on shard 0 (no limit) and b on shard 1 (debits within credits), created
// through a round.
struct placed {
  cluster c;
  u128 a = 0, b = 0, a2 = 0;
  explicit placed(uint32_t n) : c(n) {
    for (u128 id = 1; a == 0 || b == 0 || a2 == 0; ++id) {
      const uint32_t s = shard_of(id, n);
      if (s == 0 && a == 0) a = id;
      else if (s == 0 && a2 == 0) a2 = id;
      else if (s == 1 && b == 0) b = id;
    }
    planner::request w;
    w.accounts = true;
    for (u128 id : {a, b, a2}) {
      account x{};
      x.id = id;
      x.ledger = 1;
      x.code = 1;
      if (id == b) x.flags = account_debits_must_not_exceed_credits;
      w.account_events.push_back(x);
    }
    w.results.assign(3, 0);
    std::vector<planner::request*> reqs{&w};
    std::string why;
    REQUIRE(c.round(reqs, why));
    REQUIRE(w.results == std::vector<uint32_t>{0, 0, 0});
  }
  // Plans one request, and then forgets the clearing accounts it meant to create, as the
  // directory does when a round is not applied.
  planner::round plan(planner::request& w) {
    planner::round r;
    r.now = c.clock;
    std::vector<planner::request*> reqs{&w};
    c.probe(r, reqs);
    planner::plan_round(c.st, r, reqs, {}, c.clock);
    c.st.clearing_known.clear();
    return r;
  }
  // Plans and applies one request.
  void apply(planner::request& w) {
    std::vector<planner::request*> reqs{&w};
    std::string why;
    const bool ok = c.round(reqs, why);
    INFO(why);
    REQUIRE(ok);
  }
};

planner::request transfers(std::vector<transfer> ts) {
  planner::request w;
  w.transfer_events = std::move(ts);
  w.results.assign(w.transfer_events.size(), 0);
  return w;
}

size_t events_in(const planner::round& r) {
  size_t n = 0;
  for (const auto& b : r.batches) n += b.transfers.size() + b.accounts.size();
  return n;
}

} // namespace

TEST_CASE("the planner writes a refused unit nowhere, a transfer across shards as two legs with one stamp, "
          "and answers an id the shards hold from what they hold", "[planner]") {
  placed p(2);
  const auto code = [](transfer_result r) { return static_cast<uint32_t>(r); };

  // b holds nothing: refused, and no shard gets anything (no row, no used-up id).
  planner::request refused = transfers({kassa::test::make_transfer(10, p.b, p.a, 5)});
  planner::round r = p.plan(refused);
  CHECK(refused.results == std::vector<uint32_t>{code(transfer_result::exceeds_credits)});
  CHECK(events_in(r) == 0);
  CHECK(r.sagas.empty());

  // a -> b across shards: a leg in each shard (debit + clearing, clearing + credit), with the
  // client's id and one stamp, the first time with the clearing accounts of the pair; a saga.
  planner::request across = transfers({kassa::test::make_transfer(11, p.a, p.b, 5)});
  r = p.plan(across);
  CHECK(across.results == std::vector<uint32_t>{0});
  REQUIRE(r.batches[0].transfers.size() == 1);
  REQUIRE(r.batches[1].transfers.size() == 1);
  CHECK(r.batches[0].transfers[0].id == 11);
  CHECK(r.batches[1].transfers[0].id == 11);
  CHECK(r.batches[0].transfers[0].debit_account_id == p.a);
  CHECK(r.batches[1].transfers[0].credit_account_id == p.b);
  CHECK(r.batches[0].transfers_stamp[0] == r.batches[1].transfers_stamp[0]);
  CHECK(r.batches[0].accounts.size() == 1); // clearing(0 -> 1)
  CHECK(r.batches[1].accounts.size() == 1); // clearing(1 -> 0)
  CHECK(r.sagas.size() == 1);

  // The same, applied; then b (now holding 5) pays 3 back in a chain that crosses shards and
  // stays within shard 0: the second event sees the first.
  across = transfers({kassa::test::make_transfer(11, p.a, p.b, 5)});
  p.apply(across);
  planner::request chain = transfers({kassa::test::make_transfer(12, p.b, p.a, 3, transfer_linked), kassa::test::make_transfer(13, p.a, p.a2, 8)});
  r = p.plan(chain);
  CHECK(chain.results == std::vector<uint32_t>{0, 0});
  CHECK(r.batches[0].transfers.size() == 2); // the credit leg of 12, and 13
  CHECK(r.batches[1].transfers.size() == 1);

  // Within one shard: as it came, no saga.
  planner::request local = transfers({kassa::test::make_transfer(14, p.a, p.a2, 1)});
  r = p.plan(local);
  CHECK(local.results == std::vector<uint32_t>{0});
  CHECK(r.batches[0].transfers.size() == 1);
  CHECK(r.batches[1].transfers.empty());
  CHECK(r.sagas.empty());

  // An id the shards hold: exists, or the first field that differs; nothing is written. An
  // id the round already named waits for the next round, with the rest of its request.
  planner::request again = transfers({kassa::test::make_transfer(11, p.a, p.b, 5), kassa::test::make_transfer(11, p.a, p.b, 6)});
  r = p.plan(again);
  CHECK(again.results[0] == code(transfer_result::exists));
  CHECK(again.cursor == 1);
  CHECK(events_in(r) == 0);
  planner::request changed = transfers({kassa::test::make_transfer(11, p.a, p.b, 6)});
  r = p.plan(changed);
  CHECK(changed.results[0] == code(transfer_result::exists_with_different_amount));
  CHECK(events_in(r) == 0);
}
