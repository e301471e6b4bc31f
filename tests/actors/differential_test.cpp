// The ledger on every topology against one model, the single-shard state machine: the same
// randomized request stream runs against the directory over 1 and 4 shards, with a split hot
// account (static, or adaptive) and the sweeper on or off, with restarts in between. Every
// event's result, and every account and transfer as lookup_accounts / lookup_transfers show
// them, must equal the model's (timestamps aside: each side stamps its own; but a transfer
// shows one timestamp in lookup_transfers and in both its accounts' histories).
//
// The stream: accounts on two ledgers spread over the shards, with and without balance
// limits; now and then more accounts, in linked chains across shards (some refused, some left
// open); plain transfers; linked chains that cross shards and spend what their earlier events
// brought; balancing transfers between any two accounts, the hot one too; two-phase transfers
// (pending, post whole or partial, void) within a shard; chains that post or void and then
// debit the hot account; duplicates (the same event, or one field changed); invalid events;
// chains left open at the end of a request; credits to and debits from the hot account.
// Requests go one to three at a time (rounds take several), each from a client of its own
// (its own thread and actor, all released at once), so the order in which they reach the
// directory is the scheduler's. kassa applies each request whole, in the order they came; the
// model must find an order of the batch that gives every answer kassa gave: the requests that
// applied something in the order of their timestamps (one clock, the apply order), and each
// that applied nothing (it changed nothing) at a place where the model answers it as kassa did.
// Now and then the node crashes with a batch in flight (every actor stops between two
// messages, as after kill -9: what a writer committed stays) after none, some or all of its
// replies; the requests left unanswered are sent again after the restart, and each answers as
// the model does after it applied the units the lost attempt applied and then the request
// again: a repeat (`exists`) where the lost attempt applied a unit, never anything else. Such a
// batch comes from one client, in order: what a lost attempt applied is known only against the
// state the request met, which an unknown arrival order would hide.
//
// KASSA_SEED replays a run (the stream; the arrival order of concurrent requests is up to the
// scheduler each time); KASSA_DIFF_TOPOLOGY picks the topologies whose name holds it;
// KASSA_DIFF_REQUESTS sets the requests per topology (default
// 10,000; scripts/test.sh --long runs 1,000,000). A difference prints the seed, the topology, and the shortest prefix of the stream
// that still shows it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_set>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include "ledger/state_machine.hpp"
#include "tests/actors/directory_node.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using namespace kassa::test;

namespace {

struct topology {
  const char* name;
  uint32_t shards;
  bool hot_static;
  bool hot_adaptive;
  uint64_t sweep_interval_ns;
};

constexpr uint32_t placement_shards = 4; // two-phase transfers stay within a shard of 4

// One request of the stream: transfers (or, first, the accounts).
struct request {
  std::vector<account> accounts;
  std::vector<transfer> transfers;
};

struct generator {
  std::mt19937_64 rng;
  std::vector<account> accounts;
  std::vector<u128> banks;                // no limits: fund the others
  u128 hot = 0;                           // credited most, no limits (see the file's head)
  std::vector<transfer> sent;             // every transfer event so far
  std::vector<u128> pendings;             // ids of pending transfers sent
  std::vector<u128> pendings_by_hot;      // ... of those, not resolved at once: for chains with a debit of the hot account
  uint64_t next_id = 1000;

  explicit generator(uint64_t seed) : rng(seed) {}

  uint64_t below(uint64_t n) { return rng() % n; }
  bool chance(uint32_t percent) { return below(100) < percent; }
  u128 fresh_account_id() { return make_u128(rng() >> 1, rng() | 1); }

  request first() {
    request r;
    auto add = [&](uint32_t ledger, uint16_t flags) {
      account a = make_account(fresh_account_id(), ledger, flags);
      if (chance(20) || accounts.size() == 23) a.flags |= account_history; // the hot one keeps history
      a.user_data_64 = below(1000);
      accounts.push_back(a);
      return a.id;
    };
    for (int i = 0; i < 4; ++i) banks.push_back(add(1, 0));
    banks.push_back(add(2, 0));
    for (int i = 0; i < 18; ++i) {
      const uint32_t ledger = i < 14 ? 1 : 2;
      const uint16_t flags = i % 3 == 0 ? 0
                           : i % 7 == 1 ? account_credits_must_not_exceed_debits
                                        : account_debits_must_not_exceed_credits;
      add(ledger, flags);
    }
    hot = add(1, 0);
    r.accounts = accounts;
    return r;
  }

  const account& any_account() { return accounts[below(accounts.size())]; }
  const account& account_on(uint32_t ledger) {
    for (;;) {
      const account& a = any_account();
      if (a.ledger == ledger || chance(3)) return a;
    }
  }
  // Two accounts of one ledger (now and then not), different (now and then the same).
  std::pair<u128, u128> pair() {
    const account& d = chance(15) ? accounts[below(banks.size())] : any_account();
    const account& c = account_on(d.ledger);
    if (c.id == d.id && !chance(5)) return pair();
    return {d.id, c.id};
  }
  std::pair<u128, u128> pair_in_one_shard() {
    for (int tries = 0; tries < 100; ++tries) {
      auto [d, c] = pair();
      if (shard_of(d, placement_shards) == shard_of(c, placement_shards)) return {d, c};
    }
    // Any other account of the debit account's shard (of another ledger, now and then).
    const u128 d = any_account().id;
    for (const account& c : accounts) {
      if (c.id != d && shard_of(c.id, placement_shards) == shard_of(d, placement_shards)) return {d, c.id};
    }
    return {d, d};
  }
  // Two accounts of ledger 1 in the shard of `id` (of 4: the same shard of 2 and of 1).
  std::pair<u128, u128> pair_in_shard_of(u128 id) {
    std::vector<u128> there;
    for (const account& a : accounts) {
      if (a.ledger == 1 && a.id != hot && shard_of(a.id, placement_shards) == shard_of(id, placement_shards)) {
        there.push_back(a.id);
      }
    }
    if (there.size() < 2) return {0, 0};
    const u128 d = there[below(there.size())];
    u128 c = there[below(there.size())];
    if (c == d) c = there[(std::find(there.begin(), there.end(), d) - there.begin() + 1) % there.size()];
    return {d, c};
  }
  uint32_t ledger_of(u128 id) const {
    for (const account& a : accounts) if (a.id == id) return a.ledger;
    return 1;
  }

  transfer plain(u128 d, u128 c, u128 amount) {
    transfer t = make_transfer(next_id++, d, c, amount, 0, ledger_of(d));
    if (chance(10)) t.user_data_128 = rng();
    return t;
  }
  u128 amount() { return chance(10) ? 0 : 1 + below(chance(20) ? 2000 : 120); }

  // One unit: an event or a linked chain.
  void unit(std::vector<transfer>& out) {
    const uint64_t kind = below(100);
    if (kind < 30) {
      auto [d, c] = pair();
      out.push_back(plain(d, c, amount()));
    } else if (kind < 45) {
      // A chain through an account: X -> L, then L -> Y (and more), across shards.
      const size_t n = 2 + below(3);
      u128 from = chance(50) ? banks[below(banks.size() - 1)] : any_account().id;
      for (size_t k = 0; k < n; ++k) {
        u128 to = account_on(ledger_of(from)).id;
        if (to == from) to = banks[0];
        transfer t = plain(from, to, 1 + below(150));
        if (k + 1 < n) t.flags |= transfer_linked;
        out.push_back(t);
        from = to;
      }
    } else if (kind < 55) {
      auto d = any_account().id;
      out.push_back(plain(chance(20) ? hot : d, chance(20) ? d : hot, 1 + below(90)));
    } else if (kind < 63) {
      // Two-phase between any two accounts (across shards too), now and then closing one, or
      // posted or voided in the same request.
      auto [d, c] = chance(25) ? pair_in_shard_of(hot) : std::pair<u128, u128>{0, 0};
      if (d == 0) std::tie(d, c) = chance(30) ? pair_in_one_shard() : pair();
      transfer t = plain(d, c, amount());
      t.flags = transfer_pending;
      if (chance(30)) t.timeout = 3600;
      if (chance(4)) t.flags |= chance(50) ? transfer_closing_debit : transfer_closing_credit;
      pendings.push_back(t.id);
      if (chance(15)) {
        t.flags |= transfer_linked;
        out.push_back(t);
        t = make_resolve(next_id++, t.id, chance(60) ? transfer_post_pending : transfer_void_pending);
      } else if (!has(t.flags, transfer_closing_debit | transfer_closing_credit)) {
        pendings_by_hot.push_back(t.id);
      }
      out.push_back(t);
    } else if (kind < 70 && !pendings.empty()) {
      transfer t = make_resolve(next_id++, pendings[below(pendings.size())],
                                chance(70) ? transfer_post_pending : transfer_void_pending);
      if (has(t.flags, transfer_post_pending) && chance(40)) t.amount = 1 + below(100);
      if (chance(5) && !sent.empty()) t.pending_id = sent[below(sent.size())].id; // not pending
      out.push_back(t);
    } else if (kind < 75 && chance(30) && !pendings_by_hot.empty() && pair_in_shard_of(hot).first != 0) {
      // A post or void linked to a debit of the hot account: judged on everything the
      // account holds, its sub-accounts' credits too.
      // The latest pending transfer there, each once: most are still pending.
      transfer t = make_resolve(next_id++, pendings_by_hot.back(), chance(60) ? transfer_post_pending : transfer_void_pending);
      pendings_by_hot.pop_back();
      t.flags |= transfer_linked;
      out.push_back(t);
      const u128 to = pair_in_shard_of(hot).second;
      transfer d = plain(hot, to == hot ? banks[0] : to, chance(50) ? 0 : 1 + below(3000));
      d.flags = chance(70) ? transfer_balancing_debit : 0;
      if (d.amount == 0 && d.flags == 0) d.amount = 1;
      out.push_back(d);
    } else if (kind < 75) {
      // Between any two accounts (across shards too); now and then out of the hot account.
      auto [d, c] = pair();
      if (chance(20)) d = hot;
      if (c == hot && d == hot) c = banks[0];
      transfer t = plain(d, c, chance(30) ? 0 : 1 + below(500));
      t.flags = chance(50) ? transfer_balancing_debit : transfer_balancing_credit;
      if (chance(15)) { // linked to a plain transfer (across shards too)
        t.flags |= transfer_linked;
        out.push_back(t);
        auto [d2, c2] = pair();
        t = plain(d2, c2, 1 + below(100));
      }
      out.push_back(t);
    } else if (kind < 85 && !sent.empty()) {
      transfer t = sent[below(sent.size())];
      t.timestamp = 0;
      if (chance(40)) {
        switch (below(4)) {
          case 0: t.amount += 1; break;
          case 1: t.user_data_64 ^= 1; break;
          case 2: t.code += 1; break;
          default: // a new credit account keeps a two-phase or balancing transfer in its shard
            if ((t.flags & ~transfer_linked) == 0) t.credit_account_id = any_account().id;
            break;
        }
      }
      t.flags &= static_cast<uint16_t>(~transfer_linked);
      out.push_back(t);
    } else if (kind < 92) {
      auto [d, c] = pair();
      transfer t = plain(d, c, 1 + below(50));
      switch (below(7)) {
        case 0: t.id = 0; break;
        case 1: t.credit_account_id = t.debit_account_id; break;
        case 2: t.ledger = 0; break;
        case 3: t.code = 0; break;
        case 4: t.flags |= uint16_t(1u << 13); break;
        case 5: t.timeout = 5; break;
        default: t.debit_account_id = fresh_account_id(); break;
      }
      out.push_back(t);
    } else {
      // A chain whose later event spends the first's money, on a limited account.
      const account& l = account_on(1);
      const u128 y = account_on(1).id;
      transfer t1 = plain(banks[below(banks.size() - 1)], l.id, 1 + below(100));
      t1.flags |= transfer_linked;
      transfer t2 = plain(l.id, y == l.id ? banks[0] : y, t1.amount + (chance(30) ? 1 : 0));
      out.push_back(t1);
      out.push_back(t2);
    }
  }

  // More accounts: linked chains (their ids spread over the shards), now and then with an
  // account that exists, an invalid one, or a chain left open.
  request more_accounts() {
    request r;
    const size_t units = 1 + below(3);
    for (size_t u = 0; u < units; ++u) {
      const size_t n = 1 + below(3);
      for (size_t k = 0; k < n; ++k) {
        account a = make_account(fresh_account_id(), chance(80) ? 1 : 2,
                                 chance(30) ? account_debits_must_not_exceed_credits : 0);
        if (chance(8)) a = accounts[below(accounts.size())]; // exists (or differs in linked)
        if (chance(4)) a.ledger = 0;
        if (chance(3)) a.code = 0;
        if (k + 1 < n) a.flags |= account_linked;
        else a.flags &= static_cast<uint16_t>(~account_linked);
        r.accounts.push_back(a);
      }
    }
    if (chance(5)) r.accounts.back().flags |= account_linked; // left open
    for (const account& a : r.accounts) accounts.push_back(a);
    return r;
  }

  request next() {
    if (chance(2)) return more_accounts();
    request r;
    const size_t units = 1 + below(5);
    for (size_t u = 0; u < units; ++u) unit(r.transfers);
    if (chance(2)) { // a chain left open at the request's end
      auto [d, c] = pair();
      transfer t = plain(d, c, 1);
      t.flags |= transfer_linked;
      r.transfers.push_back(t);
    }
    for (const transfer& t : r.transfers) sent.push_back(t);
    return r;
  }
};

// One transfer in an account's history, as the model has it.
struct model_entry {
  u128 id = 0;
  size_t batch = 0;       // the requests sent together: kassa may order a batch's transfers
                          // of different shards either way, never across batches
  account_balance delta{}; // what it changed of the account's balances (history flag only)
};

// The model: one state machine, applying each request as one shard would.
struct model {
  state_machine sm;
  uint64_t now = 1'000'000'000;
  std::map<u128, std::vector<model_entry>> history; // account -> its transfers, in order
  std::map<u128, account_balance> balance_last;     // account -> its last snapshot
  std::vector<uint32_t> apply(const request& r, size_t batch = 0) {
    std::vector<uint32_t> codes;
    now += 1'000'000;
    if (!r.accounts.empty()) {
      for (auto c : sm.create_accounts(r.accounts.data(), r.accounts.size(), now)) codes.push_back(static_cast<uint32_t>(c));
    } else {
      for (auto c : sm.create_transfers(r.transfers.data(), r.transfers.size(), now)) codes.push_back(static_cast<uint32_t>(c));
    }
    ledger::change_set changes = sm.changes_take();
    std::map<uint64_t, std::pair<u128, size_t>> at; // timestamp -> (account, index in history)
    for (const transfer& t : changes.transfers_created) {
      for (u128 id : {t.debit_account_id, t.credit_account_id}) {
        auto& h = history[id];
        at[t.timestamp * 2 + (id == t.debit_account_id ? 0 : 1)] = {id, h.size()};
        h.push_back(model_entry{t.id, batch, {}});
      }
    }
    for (const history_entry& e : changes.history) {
      for (int side = 0; side < 2; ++side) {
        auto it = at.find(e.balance.timestamp * 2 + side);
        if (it == at.end() || it->second.first != e.account_id) continue;
        account_balance& last = balance_last[e.account_id];
        account_balance& d = history[e.account_id][it->second.second].delta;
        // Differences modulo 2^128: summed up again they give the balances exactly.
        d.debits_pending = e.balance.debits_pending - last.debits_pending;
        d.debits_posted = e.balance.debits_posted - last.debits_posted;
        d.credits_pending = e.balance.credits_pending - last.credits_pending;
        d.credits_posted = e.balance.credits_posted - last.credits_posted;
        last = e.balance;
        break;
      }
    }
    return codes;
  }
};

std::vector<uint32_t> codes_of(const create_reply& reply, size_t n) {
  std::vector<uint32_t> codes(n, 0);
  for (const auto& f : reply.failures) if (f.index < n) codes[f.index] = f.code;
  return codes;
}

std::string describe(const transfer& t) {
  std::ostringstream o;
  o << "{id " << to_string_u128(t.id) << ", " << to_string_u128(t.debit_account_id) << " -> "
    << to_string_u128(t.credit_account_id) << ", amount " << to_string_u128(t.amount) << ", flags " << t.flags
    << ", pending_id " << to_string_u128(t.pending_id) << ", ledger " << t.ledger << ", code " << t.code << "}";
  return o.str();
}

bool same_account(const account& a, const account& b) {
  return a.id == b.id && a.debits_pending == b.debits_pending && a.debits_posted == b.debits_posted &&
         a.credits_pending == b.credits_pending && a.credits_posted == b.credits_posted &&
         a.user_data_128 == b.user_data_128 && a.user_data_64 == b.user_data_64 &&
         a.user_data_32 == b.user_data_32 && a.ledger == b.ledger && a.code == b.code && a.flags == b.flags;
}

bool same_transfer(const transfer& a, const transfer& b) {
  transfer x = a, y = b;
  x.timestamp = y.timestamp = 0;
  return std::memcmp(&x, &y, sizeof x) == 0;
}

// What went differently, or empty.
struct difference {
  size_t request = 0; // index into the stream
  std::string what;
};

// Pages through an account's history in kassa as a client does (timestamp + 1, or - 1 when
// reversed, while a reply is full).
template <class Reply, class Request, class Record>
bool paged(node& nd, store::account_filter f, std::vector<Record> Reply::*records, std::vector<Record>& out) {
  for (int pages = 0; pages < 100'000; ++pages) {
    auto reply = nd.ask<Reply>(nd.directory, Request{{}, f});
    if (reply.status != outcome::ok) return false;
    const std::vector<Record>& got = reply.*records;
    out.insert(out.end(), got.begin(), got.end());
    if (got.size() < f.limit) return true;
    if (f.reversed) f.timestamp_max = got.back().timestamp - 1;
    else f.timestamp_min = got.back().timestamp + 1;
  }
  return false;
}

// An account's get_account_transfers and get_account_balances in kassa against the model's:
// the same transfers, each once and as written, in an order that keeps the batches' (kassa
// stamps a batch's transfers in different shards by each shard's clock), strictly ascending
// timestamps, forward pages the reverse of backward ones; and the balances one account would
// show after each of them, in kassa's order.
std::optional<std::string> compare_history(node& nd, const model& m, u128 id, uint32_t limit,
                                           const std::map<u128, uint64_t>& stamps,
                                           std::map<std::string, size_t>* coverage) {
  store::account_filter f;
  f.account_id = id;
  f.limit = limit;
  std::vector<transfer> forward, backward;
  if (!paged<transfers_reply, account_transfers_request>(nd, f, &transfers_reply::transfers, forward)) return "get_account_transfers failed";
  store::account_filter back = f;
  back.reversed = true;
  back.limit = limit / 2 + 1;
  if (!paged<transfers_reply, account_transfers_request>(nd, back, &transfers_reply::transfers, backward)) return "get_account_transfers (reversed) failed";
  auto it = m.history.find(id);
  static const std::vector<model_entry> none;
  const std::vector<model_entry>& want = it == m.history.end() ? none : it->second;
  if (forward.size() != want.size()) {
    return "get_account_transfers: model " + std::to_string(want.size()) + " transfers, kassa " + std::to_string(forward.size());
  }
  std::reverse(backward.begin(), backward.end());
  std::map<u128, const model_entry*> by_id;
  for (const model_entry& e : want) by_id[e.id] = &e;
  size_t batch = 0;
  for (size_t k = 0; k < forward.size(); ++k) {
    const transfer& t = forward[k];
    if (backward.size() != forward.size() || backward[k].id != t.id || backward[k].timestamp != t.timestamp) {
      return "get_account_transfers: reversed pages differ from forward ones at " + std::to_string(k);
    }
    auto e = by_id.find(t.id);
    if (e == by_id.end()) return "get_account_transfers: " + describe(t) + " is not the account's (or twice)";
    const transfer* model_t = m.sm.transfer_find(t.id);
    if (model_t == nullptr || !same_transfer(*model_t, t)) return "get_account_transfers: model " + (model_t ? describe(*model_t) : std::string("none")) + ", kassa " + describe(t);
    if (e->second->batch < batch) return "get_account_transfers: " + describe(t) + " comes before a transfer of an earlier batch";
    if (k > 0 && forward[k - 1].timestamp >= t.timestamp) return "get_account_transfers: timestamps not ascending at " + std::to_string(k);
    if (auto s = stamps.find(t.id); s != stamps.end() && s->second != t.timestamp) {
      return "get_account_transfers: " + describe(t) + " at timestamp " + std::to_string(t.timestamp) +
             ", lookup_transfers shows " + std::to_string(s->second) + " (a transfer has one timestamp)";
    }
    batch = e->second->batch;
    by_id.erase(e);
  }
  // Only one side: the same transfers, filtered.
  for (bool debits : {true, false}) {
    store::account_filter side = f;
    side.debits = debits;
    side.credits = !debits;
    std::vector<transfer> got;
    if (!paged<transfers_reply, account_transfers_request>(nd, side, &transfers_reply::transfers, got)) return "get_account_transfers (one side) failed";
    std::vector<u128> expect, seen;
    for (const transfer& t : forward) if ((debits ? t.debit_account_id : t.credit_account_id) == id) expect.push_back(t.id);
    for (const transfer& t : got) seen.push_back(t.id);
    if (seen != expect) return std::string("get_account_transfers: the ") + (debits ? "debits" : "credits") + " differ";
  }
  if (coverage != nullptr) (*coverage)["history transfers"] += forward.size();
  const account* a = m.sm.account_find(id);
  if (a == nullptr) return std::nullopt;
  std::vector<account_balance> balances, balances_back;
  if (!paged<balances_reply, account_balances_request>(nd, f, &balances_reply::balances, balances)) return "get_account_balances failed";
  if (!has(a->flags, account_history)) {
    if (!balances.empty()) return std::string("get_account_balances of an account without history is not empty");
    return std::nullopt;
  }
  if (!paged<balances_reply, account_balances_request>(nd, back, &balances_reply::balances, balances_back)) return "get_account_balances (reversed) failed";
  std::reverse(balances_back.begin(), balances_back.end());
  if (balances.size() != forward.size()) {
    return "get_account_balances: " + std::to_string(balances.size()) + " snapshots for " + std::to_string(forward.size()) + " transfers";
  }
  std::map<u128, const model_entry*> delta;
  for (const model_entry& e : want) delta[e.id] = &e;
  account_balance sum{};
  for (size_t k = 0; k < forward.size(); ++k) {
    const account_balance& d = delta[forward[k].id]->delta;
    sum.debits_pending += d.debits_pending;
    sum.debits_posted += d.debits_posted;
    sum.credits_pending += d.credits_pending;
    sum.credits_posted += d.credits_posted;
    const account_balance& b = balances[k];
    if (b.timestamp != forward[k].timestamp || balances_back.size() != balances.size() ||
        std::memcmp(&balances_back[k], &b, sizeof b) != 0) {
      return "get_account_balances: snapshot " + std::to_string(k) + " is not at its transfer, or reversed pages differ";
    }
    if (b.debits_pending != sum.debits_pending || b.debits_posted != sum.debits_posted ||
        b.credits_pending != sum.credits_pending || b.credits_posted != sum.credits_posted) {
      return "get_account_balances after " + describe(forward[k]) + ": model debits " + to_string_u128(sum.debits_posted) + "/" +
             to_string_u128(sum.debits_pending) + " credits " + to_string_u128(sum.credits_posted) + "/" +
             to_string_u128(sum.credits_pending) + ", kassa debits " + to_string_u128(b.debits_posted) + "/" +
             to_string_u128(b.debits_pending) + " credits " + to_string_u128(b.credits_posted) + "/" +
             to_string_u128(b.credits_pending);
    }
  }
  if (coverage != nullptr) (*coverage)["history balances"] += balances.size();
  return std::nullopt;
}

directory_options options_for(const topology& t, const generator& g) {
  directory_options o;
  if (t.hot_static) o.hot_static.push_back(hot_account_rule{g.hot, 4});
  if (t.hot_adaptive) {
    o.adaptive_window_ns = 60ull * 1'000'000'000;
    o.adaptive_credits_min = 8;
    o.adaptive_sub_accounts = 4;
  }
  o.sweep_interval_ns = t.sweep_interval_ns;
  return o;
}

// A request whose reply was lost (the node crashed with it in flight) is sent again, as
// docs/protocol.md tells a client to. The lost attempt may have applied some of the request's
// units (an event, or a linked chain): on one shard all of them or none; across shards, per
// round, each shard's part or not (a round with a transfer across shards whole, through its
// redo record). Units in different shards of a round without sagas share no account, so which
// of them stand does not change how the others are judged. The request sent again then
// answers as a repeat where the lost attempt applied a unit (`exists` for a single event; for
// a chain `exists` at one event and `linked_event_failed` at the others), and judges the other
// units again, now. Returns the events of the units the lost attempt applied, known by their
// repeat: ids new before the request, not named by an earlier event of it, and not applied by
// the request sent again before it (`resent`: a lost request earlier in the same batch).
std::vector<size_t> lost_applied(const model& m, const request& r, const std::vector<uint32_t>& got,
                                 const std::set<u128>& resent) {
  const auto exists = static_cast<uint32_t>(transfer_result::exists);
  const auto linked_failed = static_cast<uint32_t>(transfer_result::linked_event_failed);
  const std::vector<transfer>& events = r.transfers;
  std::set<u128> named; // ids of the request's earlier events
  std::vector<size_t> applied;
  for (size_t i = 0, j = 0; i < events.size(); i = j + 1) {
    j = i;
    while (j + 1 < events.size() && has(events[j].flags, transfer_linked)) ++j;
    bool repeat = true, fresh = true;
    size_t seen_exists = 0;
    for (size_t k = i; k <= j; ++k) {
      seen_exists += got[k] == exists ? 1 : 0;
      repeat = repeat && (got[k] == exists || (j > i && got[k] == linked_failed));
      fresh = fresh && events[k].id != 0 && named.count(events[k].id) == 0 && resent.count(events[k].id) == 0 &&
              m.sm.transfer_find(events[k].id) == nullptr;
    }
    if (repeat && fresh && seen_exists == 1) {
      for (size_t k = i; k <= j; ++k) applied.push_back(k);
    }
    for (size_t k = i; k <= j; ++k) named.insert(events[k].id);
  }
  return applied;
}

// What the model would answer to `r` now, without applying it: a state machine of its own,
// loaded with what the request names (its accounts, the transfers its ids and pending ids name,
// and their accounts), as a shard loads what a batch names before it applies it. An event is
// judged on nothing else, so the answer is the model's.
std::vector<uint32_t> probe(const model& m, const request& r) {
  state_machine scratch;
  auto load_account = [&](u128 id) {
    if (const account* a = m.sm.account_find(id)) scratch.account_load(*a);
  };
  auto load_transfer = [&](u128 id) {
    const transfer* t = m.sm.transfer_find(id);
    if (t == nullptr) return;
    scratch.transfer_load(*t, m.sm.pending_find(id));
    load_account(t->debit_account_id);
    load_account(t->credit_account_id);
  };
  for (const transfer& t : r.transfers) {
    load_account(t.debit_account_id);
    load_account(t.credit_account_id);
    load_transfer(t.id);
    load_transfer(t.pending_id);
  }
  scratch.timestamp_last_load(m.sm.timestamp_last());
  std::vector<uint32_t> codes;
  for (auto c : scratch.create_transfers(r.transfers.data(), r.transfers.size(), m.now + 1'000'000)) {
    codes.push_back(static_cast<uint32_t>(c));
  }
  return codes;
}

// A batch that concurrent clients sent (requests `first`.. of the stream, answered `got`):
// kassa took the requests in an order nobody chose, each whole. The model applies them in an
// order that explains every answer, or the batch differs. The requests that applied something
// are ordered by their timestamps (one clock, in apply order; a request's span of timestamps
// overlaps no other's). A request that applied nothing changed nothing: it goes at the first
// place in that order where the model, probed, answers it as kassa did (then it is applied
// there, and must answer the same); at no place, the batch differs.
std::optional<difference> apply_in_arrival_order(node& nd, model& m, const std::vector<request>& stream, size_t first,
                                                 const std::vector<std::vector<uint32_t>>& got, size_t batch,
                                                 std::vector<std::vector<uint32_t>>& wants, std::string& order,
                                                 std::map<std::string, size_t>* coverage) {
  const size_t n = got.size();
  std::vector<size_t> applying, idle;
  std::vector<u128> ok_ids;
  for (size_t k = 0; k < n; ++k) {
    const bool applied = std::find(got[k].begin(), got[k].end(), 0u) != got[k].end();
    (applied ? applying : idle).push_back(k);
    for (size_t e = 0; e < got[k].size(); ++e) {
      if (got[k][e] == 0) ok_ids.push_back(stream[first + k].transfers[e].id);
    }
  }
  if (applying.size() > 1) {
    auto tr = nd.ask<transfers_reply>(nd.directory, lookup_transfers_request{{}, ok_ids});
    if (tr.status != outcome::ok) return difference{first, "lookup_transfers of the batch failed"};
    std::map<u128, uint64_t> stamp;
    for (const transfer& t : tr.transfers) stamp[t.id] = t.timestamp;
    std::map<size_t, std::pair<uint64_t, uint64_t>> span; // request -> its smallest and largest timestamp
    for (size_t k : applying) {
      span[k] = {UINT64_MAX, 0};
      for (size_t e = 0; e < got[k].size(); ++e) {
        if (got[k][e] != 0) continue;
        auto s = stamp.find(stream[first + k].transfers[e].id);
        if (s == stamp.end()) {
          return difference{first + k, "event " + std::to_string(e) + " " + describe(stream[first + k].transfers[e]) +
                                           " answered ok, but lookup_transfers does not show it"};
        }
        span[k] = {std::min(span[k].first, s->second), std::max(span[k].second, s->second)};
      }
    }
    std::sort(applying.begin(), applying.end(), [&](size_t a, size_t b) { return span[a].first < span[b].first; });
    for (size_t j = 0; j + 1 < applying.size(); ++j) {
      if (span[applying[j]].second >= span[applying[j + 1]].first) {
        return difference{first + applying[j + 1], "its timestamps fall between those of request " +
                                                       std::to_string(first + applying[j]) + " of the same batch"};
      }
    }
    if (coverage != nullptr && !std::is_sorted(applying.begin(), applying.end())) {
      ++(*coverage)["requests of concurrent clients arrived out of the order sent"];
    }
  }
  std::vector<bool> placed(n, false), misfit(n, false);
  order = "a batch of concurrent clients, applied in the order";
  for (size_t next = 0;; ++next) {
    for (size_t k : idle) {
      if (placed[k]) continue;
      if (probe(m, stream[first + k]) != got[k]) {
        misfit[k] = true;
        continue;
      }
      wants[k] = m.apply(stream[first + k], batch);
      if (wants[k] != got[k]) return difference{first + k, "the model answers otherwise than its probe did"};
      placed[k] = true;
      order += " " + std::to_string(first + k) + " (applied nothing)";
      if (coverage != nullptr && misfit[k]) {
        ++(*coverage)["a request that applied nothing, answered as only a later place explains"];
      }
    }
    if (next == applying.size()) break;
    wants[applying[next]] = m.apply(stream[first + applying[next]], batch);
    order += " " + std::to_string(first + applying[next]);
  }
  for (size_t k : idle) {
    if (placed[k]) continue;
    const std::vector<uint32_t> last = probe(m, stream[first + k]);
    size_t e = 0;
    while (e + 1 < last.size() && last[e] == got[k][e]) ++e;
    const auto name_of = [](uint32_t c) { return std::string(name(static_cast<transfer_result>(c))); };
    return difference{first + k, "it applied nothing, and no place among the batch's requests explains its answer: event " +
                                     std::to_string(e) + " " + describe(stream[first + k].transfers[e]) +
                                     ": model (after the batch) " + name_of(last[e]) + ", kassa " + name_of(got[k][e])};
  }
  return std::nullopt;
}

// Runs `stream` (the first `count` requests) against a fresh node of topology `t` and the
// model; restarts the node every `restart_every` requests, and crashes it every `crash_every`
// batches of transfer requests, with the batch in flight. Returns the first difference.
std::optional<difference> run(const topology& t, const generator& g, const std::vector<request>& stream,
                              size_t count, size_t restart_every,
                              std::map<std::string, size_t>* coverage = nullptr, size_t crash_every = 0) {
  temp_dir dir;
  model m;
  // Each shard's map grows with the stream (a million requests hold a few GiB of transfers).
  const uint64_t map_bytes = std::max<uint64_t>(256ull << 20, uint64_t(count) * 8192);
  auto nd = std::make_unique<node>(dir.path, t.shards, options_for(t, g), true, 16u << 20, map_bytes);
  std::vector<u128> ids;
  size_t i = 0;
  std::mt19937_64 batch_rng(count * 7919 + t.shards);
  // Every account, and the transfers named since the last comparison plus a sample of the
  // older ones (all of them at the end).
  size_t compared = 0;
  std::unordered_set<u128, u128_hash> pending_across; // for the coverage counts
  auto compare_state = [&](size_t at, bool all) -> std::optional<difference> {
    std::vector<u128> account_ids;
    for (const account& a : g.accounts) account_ids.push_back(a.id);
    auto got = nd->ask<accounts_reply>(nd->directory, lookup_accounts_request{{}, account_ids});
    if (got.status != outcome::ok) return difference{at, "lookup_accounts failed"};
    std::map<u128, account> by_id;
    for (const account& a : got.accounts) by_id[a.id] = a;
    for (u128 id : account_ids) {
      const account* want = m.sm.account_find(id);
      auto it = by_id.find(id);
      if ((want == nullptr) != (it == by_id.end())) return difference{at, "account " + to_string_u128(id) + " exists on one side only"};
      if (want != nullptr && !same_account(*want, it->second)) {
        return difference{at, "account " + to_string_u128(id) + (id == g.hot ? " (the hot one)" : "") + ": model debits " + to_string_u128(want->debits_posted) +
                                  "/" + to_string_u128(want->debits_pending) + " credits " + to_string_u128(want->credits_posted) +
                                  "/" + to_string_u128(want->credits_pending) + ", kassa debits " +
                                  to_string_u128(it->second.debits_posted) + "/" + to_string_u128(it->second.debits_pending) +
                                  " credits " + to_string_u128(it->second.credits_posted) + "/" +
                                  to_string_u128(it->second.credits_pending)};
      }
    }
    std::vector<u128> check(ids.begin() + (all ? 0 : compared), ids.end());
    for (size_t k = 0; !all && compared > 0 && k < 500; ++k) check.push_back(ids[batch_rng() % compared]);
    compared = ids.size();
    std::map<u128, uint64_t> stamps; // every transfer's timestamp as lookup_transfers shows it (all checked)
    for (size_t from = 0; from < check.size(); from += 4000) {
      std::vector<u128> chunk(check.begin() + from, check.begin() + std::min(check.size(), from + 4000));
      auto tr = nd->ask<transfers_reply>(nd->directory, lookup_transfers_request{{}, chunk});
      if (tr.status != outcome::ok) return difference{at, "lookup_transfers failed"};
      std::map<u128, transfer> found;
      for (const transfer& x : tr.transfers) found[x.id] = x;
      if (all) for (const transfer& x : tr.transfers) stamps[x.id] = x.timestamp;
      for (u128 id : chunk) {
        const transfer* want = m.sm.transfer_find(id);
        auto it = found.find(id);
        if ((want == nullptr) != (it == found.end())) {
          return difference{at, "transfer " + to_string_u128(id) + (want ? " is missing" : " should not exist")};
        }
        if (want != nullptr && !same_transfer(*want, it->second)) {
          return difference{at, "transfer " + to_string_u128(id) + ": model " + describe(*want) + ", kassa " + describe(it->second)};
        }
      }
    }
    if (all) {
      // Histories: the hot account and a few ordinary ones (the banks' are the longest).
      std::vector<u128> accounts{g.hot};
      for (size_t k = g.banks.size(); k < g.accounts.size() && accounts.size() < 7; k += 3) accounts.push_back(g.accounts[k].id);
      for (u128 id : accounts) {
        if (auto what = compare_history(*nd, m, id, id == g.hot ? 997 : 97, stamps, coverage)) {
          return difference{at, "account " + to_string_u128(id) + (id == g.hot ? " (the hot one)" : "") + ": " + *what};
        }
      }
    }
    return std::nullopt;
  };
  size_t batch = 0;
  while (i < count) {
    if (restart_every != 0 && i != 0 && i % restart_every == 0) {
      nd.reset();
      nd = std::make_unique<node>(dir.path, t.shards, options_for(t, g), true, 16u << 20, map_bytes);
    }
    // One to three requests at once (only transfers go together).
    size_t n = stream[i].accounts.empty() ? 1 + batch_rng() % 3 : 1;
    n = std::min(n, count - i);
    for (size_t k = 1; k < n; ++k) if (!stream[i + k].accounts.empty()) n = k;
    std::vector<create_transfers_request> reqs;
    std::vector<std::vector<uint32_t>> got;
    std::vector<bool> lost(n, false); // the reply was lost in a crash; the request was sent again
    bool concurrent = false;          // sent by concurrent clients: arrived in an unknown order
    std::string order;                // ... the order the model applied them in, for a difference
    if (!stream[i].accounts.empty()) {
      got.push_back(codes_of(nd->accounts(stream[i].accounts), stream[i].accounts.size()));
    } else if (crash_every != 0 && batch % crash_every == crash_every - 1) {
      // kill -9 with the batch in flight: every actor stops between two messages (what a
      // writer committed stays, nothing else does), after none, some or all of the replies.
      // One client sends the batch, in order (see the file's head).
      for (size_t k = 0; k < n; ++k) reqs.push_back(create_transfers_request{{}, stream[i + k].transfers, {}});
      std::vector<std::optional<create_reply>> early;
      {
        kassa::test::in_flight<create_reply> f(*nd->sys, nd->directory, std::move(reqs));
        const uint64_t wait_us[] = {0, 20, 100, 400, 1500, 4000};
        std::this_thread::sleep_for(std::chrono::microseconds(batch_rng() % (wait_us[batch_rng() % 6] + 1)));
        early = f.stop();
      }
      nd.reset();
      nd = std::make_unique<node>(dir.path, t.shards, options_for(t, g), true, 16u << 20, map_bytes);
      if (coverage != nullptr) ++(*coverage)["a crash with requests in flight"];
      for (size_t k = 0; k < n; ++k) {
        if (early[k] && early[k]->status == outcome::ok) {
          got.push_back(codes_of(*early[k], stream[i + k].transfers.size()));
          continue;
        }
        lost[k] = true;
        auto again = nd->transfers(stream[i + k].transfers);
        if (again.status != outcome::ok) return difference{i + k, "the request sent again after a crash was not answered ok"};
        got.push_back(codes_of(again, stream[i + k].transfers.size()));
      }
    } else {
      // Each request from a client of its own, all at once: they race to the directory.
      for (size_t k = 0; k < n; ++k) reqs.push_back(create_transfers_request{{}, stream[i + k].transfers, {}});
      auto replies = kassa::test::ask_concurrently<create_reply>(*nd->sys, nd->directory, std::move(reqs));
      for (size_t k = 0; k < n; ++k) {
        if (!replies[k] || replies[k]->status != outcome::ok) return difference{i + k, "the request was not answered ok"};
        got.push_back(codes_of(*replies[k], stream[i + k].transfers.size()));
      }
      concurrent = n > 1;
    }
    // The model takes the batch as kassa did: requests of concurrent clients in the order they
    // arrived; the others in order, of a lost one the units its lost attempt applied; then,
    // after the restart, the lost ones again, in order.
    std::vector<std::vector<uint32_t>> wants(n);
    if (concurrent) {
      if (coverage != nullptr) ++(*coverage)["a batch of concurrent clients"];
      if (auto d = apply_in_arrival_order(*nd, m, stream, i, got, batch, wants, order, coverage)) return d;
    }
    std::set<u128> resent; // what the lost requests sent again so far applied
    for (size_t k = 0; k < n && !concurrent; ++k) {
      const request& r = stream[i + k];
      if (!lost[k]) {
        wants[k] = m.apply(r, batch);
        continue;
      }
      const std::vector<size_t> done = lost_applied(m, r, got[k], resent);
      for (size_t e = 0; e < r.transfers.size(); ++e) {
        if (got[k][e] == 0) resent.insert(r.transfers[e].id);
      }
      if (done.empty()) continue;
      request first;
      for (size_t e : done) first.transfers.push_back(r.transfers[e]);
      const auto applied = m.apply(first, batch);
      for (size_t x = 0; coverage != nullptr && x < done.size(); ++x) {
        if (applied[x] == 0 && (x == 0 || !has(first.transfers[x - 1].flags, transfer_linked))) {
          ++(*coverage)["a unit the lost attempt applied, answered as a repeat"];
        }
      }
    }
    for (size_t k = 0; k < n; ++k) {
      if (!lost[k]) continue;
      wants[k] = m.apply(stream[i + k], batch);
      if (coverage != nullptr) ++(*coverage)["a request whose reply was lost, sent again"];
    }
    for (size_t k = 0; k < n; ++k) {
      const request& r = stream[i + k];
      const std::vector<uint32_t>& want = wants[k];
      for (const transfer& t : r.transfers) ids.push_back(t.id);
      for (size_t e = 0; e < want.size(); ++e) {
        if (coverage != nullptr) {
          ++(*coverage)[r.accounts.empty() ? std::string(name(static_cast<transfer_result>(want[e])))
                                           : "account " + std::string(name(static_cast<account_result>(want[e])))];
        }
        if (want[e] == got[k][e]) continue;
        std::string event = r.accounts.empty() ? describe(r.transfers[e]) : "account " + to_string_u128(r.accounts[e].id);
        std::string w = r.accounts.empty() ? std::string(name(static_cast<transfer_result>(want[e]))) : std::string(name(static_cast<account_result>(want[e])));
        std::string k2 = r.accounts.empty() ? std::string(name(static_cast<transfer_result>(got[k][e]))) : std::string(name(static_cast<account_result>(got[k][e])));
        return difference{i + k, "event " + std::to_string(e) + " " + event + ": model " + w + ", kassa " + k2 +
                                     (concurrent ? " (" + order + ")" : std::string())};
      }
      if (coverage != nullptr) {
        // Chains that crossed shards (of 4) and applied.
        bool chain = false, crosses = false, ok = true;
        for (size_t e = 0; e < r.transfers.size(); ++e) {
          const transfer& t = r.transfers[e];
          chain = chain || has(t.flags, transfer_linked);
          crosses = crosses || (t.debit_account_id != 0 && t.credit_account_id != 0 &&
                                shard_of(t.debit_account_id, placement_shards) != shard_of(t.credit_account_id, placement_shards));
          ok = ok && want[e] == 0;
        }
        if (chain && crosses && ok) ++(*coverage)["a linked chain across shards applied"];
        bool account_chain = false, account_crosses = false;
        for (size_t e = 0; e < r.accounts.size(); ++e) {
          account_chain = account_chain || has(r.accounts[e].flags, account_linked);
          account_crosses = account_crosses || (e > 0 && has(r.accounts[e - 1].flags, account_linked) &&
                                                shard_of(r.accounts[e].id, placement_shards) !=
                                                    shard_of(r.accounts[e - 1].id, placement_shards) &&
                                                want[e] == 0);
        }
        if (account_chain && account_crosses) ++(*coverage)["a linked chain of accounts across shards applied"];
        for (size_t e = 0; e + 1 < r.transfers.size(); ++e) {
          const transfer& t = r.transfers[e];
          if (has(t.flags, transfer_linked) && has(t.flags, transfer_post_pending | transfer_void_pending) &&
              r.transfers[e + 1].debit_account_id == g.hot && want[e] == 0 && want[e + 1] == 0) {
            ++(*coverage)["a post or void chained with a debit of the hot account applied"];
          }
        }
        for (size_t e = 0; e < r.transfers.size(); ++e) {
          const transfer& t = r.transfers[e];
          const bool crosses = t.debit_account_id != 0 && t.credit_account_id != 0 &&
                               shard_of(t.debit_account_id, placement_shards) != shard_of(t.credit_account_id, placement_shards);
          if (want[e] == 0 && has(t.flags, transfer_pending) && crosses) {
            pending_across.insert(t.id);
            ++(*coverage)["a pending transfer across shards applied"];
            if (has(t.flags, transfer_closing_debit | transfer_closing_credit)) ++(*coverage)["a closing transfer across shards applied"];
          }
          if (has(t.flags, transfer_post_pending | transfer_void_pending) && pending_across.count(t.pending_id) != 0) {
            ++(*coverage)[want[e] == 0 ? "a post or void across shards applied" : "a post or void across shards refused"];
          }
          if (want[e] == 0 && has(t.flags, transfer_balancing_debit | transfer_balancing_credit) &&
              shard_of(t.debit_account_id, placement_shards) != shard_of(t.credit_account_id, placement_shards)) {
            ++(*coverage)["a balancing transfer across shards applied"];
          }
        }
      }
    }
    i += n;
    ++batch;
    if (i % 250 < n || i == count) {
      if (auto d = compare_state(i - 1, i == count)) return d;
    }
  }
  return std::nullopt;
}

// The shortest prefix of the stream that still differs (bisection on the prefix length).
size_t shrink(const topology& t, const generator& g, const std::vector<request>& stream, size_t failing,
              size_t crash_every) {
  size_t lo = 1, hi = failing + 1; // the first `hi` requests differ
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (run(t, g, stream, mid, 0, nullptr, crash_every)) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}

// Batches between two crashes: about 60 crashes per topology, at least 40 batches apart.
size_t crash_interval(size_t requests) { return std::max<size_t>(40, requests / 120); }

size_t requests_per_topology() {
  if (const char* env = std::getenv("KASSA_DIFF_REQUESTS")) return std::max<size_t>(2, std::strtoull(env, nullptr, 10));
#if defined(__SANITIZE_THREAD__)
  return 2000; // ThreadSanitizer runs it ten times slower; the plain build runs 10,000
#else
  return 10000;
#endif
}

} // namespace

TEST_CASE("every topology answers a random request stream as the single-shard model does", "[directory][differential]") {
  const uint64_t seed = kassa::test::seed("differential");
  const size_t count = requests_per_topology();
  const topology topologies[] = {
      {"1 shard", 1, false, false, 1'000'000'000},
      {"4 shards", 4, false, false, 1'000'000'000},
      {"4 shards, hot account split statically, sweeper every 5 ms", 4, true, false, 5'000'000},
      {"4 shards, hot accounts split adaptively, sweeper off", 4, false, true, 0},
      {"2 shards, hot account split statically, sweeper off", 2, true, false, 0},
  };
  generator g(seed);
  std::vector<request> stream;
  stream.push_back(g.first());
  while (stream.size() < count) stream.push_back(g.next());
  std::map<std::string, size_t> timed; // floors that depend on timing, summed over the topologies
  // KASSA_DIFF_TOPOLOGY: only the topologies whose name holds it (a replay, a long run of one).
  const char* only = std::getenv("KASSA_DIFF_TOPOLOGY");
  for (const topology& t : topologies) {
    if (only != nullptr && std::string(t.name).find(only) == std::string::npos) continue;
    std::map<std::string, size_t> coverage;
    const size_t restart_every = std::getenv("KASSA_DIFF_NO_RESTART") ? 0 : count / 3 + 1;
    const size_t crash_every = std::getenv("KASSA_DIFF_NO_RESTART") ? 0 : crash_interval(count);
    auto d = run(t, g, stream, count, restart_every, &coverage, crash_every);
    if (d) {
      const size_t prefix = shrink(t, g, stream, d->request, crash_every);
      auto again = run(t, g, stream, prefix, 0, nullptr, crash_every);
      FAIL("seed " << seed << ", topology \"" << t.name << "\": after " << (again ? again->request + 1 : prefix)
                   << " requests (shrunk from " << d->request + 1 << "): " << (again ? again->what : d->what)
                   << "\nreplay: KASSA_SEED=" << seed << " KASSA_DIFF_REQUESTS=" << prefix
                   << " KASSA_DIFF_TOPOLOGY=\"" << t.name << "\" test_actors \"[differential]\"");
    }
    std::printf("differential: %s: %zu requests equal to the model; results reached:", t.name, count);
    for (const auto& [code, n] : coverage) std::printf(" %s=%zu", code.c_str(), n);
    std::printf("\n");
    if (count >= 2000) {
      // Coverage floors: the stream reaches what it is for.
      for (const char* code : {"ok", "exists", "exceeds_credits", "exceeds_debits", "linked_event_failed",
                               "exists_with_different_amount", "pending_transfer_already_posted",
                               "pending_transfer_not_pending", "debit_account_not_found",
                               "accounts_must_be_different", "id_must_not_be_zero",
                               "linked_event_chain_open", "a linked chain across shards applied",
                               "a linked chain of accounts across shards applied",
                               "a balancing transfer across shards applied",
                               "a pending transfer across shards applied", "a closing transfer across shards applied",
                               "a post or void across shards applied", "a post or void across shards refused",
                               "history transfers", "history balances", "a crash with requests in flight"}) {
        INFO(t.name << ": " << code);
        CHECK(coverage[code] > 0);
      }
      // Whether a crash lands before or after a writer commits, and in which order concurrent
      // clients' requests arrive, is up to the scheduler, so these floors hold over all
      // topologies together, not for each one. So does a post or void chained with a debit of
      // the hot account: once a closing transfer that arrived early closes the hot account,
      // no debit of it applies for the rest of the stream (seed 12014611794295909167: in three
      // topologies of five).
      for (const char* code : {"a request whose reply was lost, sent again",
                               "a unit the lost attempt applied, answered as a repeat",
                               "requests of concurrent clients arrived out of the order sent",
                               "a post or void chained with a debit of the hot account applied"}) {
        timed[code] += coverage[code];
      }
    }
  }
  if (count >= 2000) {
    for (const auto& [code, n] : timed) {
      INFO("all topologies: " << code);
      CHECK(n > 0);
    }
  }
}
