// Property test: seeded random event streams go through the state machine and through a
// small reference model written here from the documented rules (docs/ledger.md). Every
// result, every account and every transfer must agree, and the books must balance after
// every batch. The model is deliberately built differently: it copies its whole state to
// undo a failed chain, and does overflow arithmetic in 256 bits.
#include <catch2/catch.hpp>

#include <boost/multiprecision/cpp_int.hpp>
#include <map>
#include <random>

#include "tests/ledger/ledger_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
using R = transfer_result;
using AR = account_result;
using big = boost::multiprecision::uint256_t;

namespace {

const big limit = big(1) << 128; // first value that does not fit an amount

big B(u128 v) { return (big(u128_hi(v)) << 64) | big(u128_lo(v)); }

struct model {
  std::map<u128, account> accounts;
  std::map<u128, transfer> transfers;
  std::map<u128, pending_state> pending;
  uint64_t ts = 0;

  uint64_t next(uint64_t now) { ts = std::max(now, ts + 1); return ts; }

  AR create_account(const account& a, uint64_t t) {
    if (a.timestamp) return AR::timestamp_must_be_zero;
    if (a.reserved) return AR::reserved_field;
    if (a.flags >= (1u << 5)) return AR::reserved_flag;
    if (a.id == 0) return AR::id_must_not_be_zero;
    if (a.id == u128_max) return AR::id_must_not_be_int_max;
    auto it = accounts.find(a.id);
    if (it != accounts.end()) {
      const account& e = it->second;
      if (e.flags != a.flags) return AR::exists_with_different_flags;
      if (e.user_data_128 != a.user_data_128) return AR::exists_with_different_user_data_128;
      if (e.user_data_64 != a.user_data_64) return AR::exists_with_different_user_data_64;
      if (e.user_data_32 != a.user_data_32) return AR::exists_with_different_user_data_32;
      if (e.ledger != a.ledger) return AR::exists_with_different_ledger;
      if (e.code != a.code) return AR::exists_with_different_code;
      return AR::exists;
    }
    if ((a.flags & 6) == 6) return AR::flags_are_mutually_exclusive;
    if (a.debits_pending) return AR::debits_pending_must_be_zero;
    if (a.debits_posted) return AR::debits_posted_must_be_zero;
    if (a.credits_pending) return AR::credits_pending_must_be_zero;
    if (a.credits_posted) return AR::credits_posted_must_be_zero;
    if (!a.ledger) return AR::ledger_must_not_be_zero;
    if (!a.code) return AR::code_must_not_be_zero;
    account s = a;
    s.timestamp = t;
    accounts[a.id] = s;
    return AR::ok;
  }

  R exists(const transfer& t, const transfer& e) {
    bool inherit = t.flags & (transfer_post_pending | transfer_void_pending);
    auto differs = [&](u128 mine, u128 theirs) { return inherit ? (mine != 0 && mine != theirs) : mine != theirs; };
    if (t.flags != e.flags) return R::exists_with_different_flags;
    if (t.pending_id != e.pending_id) return R::exists_with_different_pending_id;
    if (t.timeout != e.timeout) return R::exists_with_different_timeout;
    if (differs(t.debit_account_id, e.debit_account_id)) return R::exists_with_different_debit_account_id;
    if (differs(t.credit_account_id, e.credit_account_id)) return R::exists_with_different_credit_account_id;
    if (t.flags & (transfer_balancing_debit | transfer_balancing_credit)) {
      if ((t.amount == 0 ? limit : B(t.amount)) < B(e.amount)) return R::exists_with_different_amount;
    } else if (differs(t.amount, e.amount)) {
      return R::exists_with_different_amount;
    }
    if (t.user_data_128 != e.user_data_128) return R::exists_with_different_user_data_128;
    if (t.user_data_64 != e.user_data_64) return R::exists_with_different_user_data_64;
    if (t.user_data_32 != e.user_data_32) return R::exists_with_different_user_data_32;
    if (differs(t.ledger, e.ledger)) return R::exists_with_different_ledger;
    if (differs(t.code, e.code)) return R::exists_with_different_code;
    return R::exists;
  }

  R create_transfer(const transfer& t, uint64_t now) {
    if (t.timestamp) return R::timestamp_must_be_zero;
    if (t.flags >= (1u << 8)) return R::reserved_flag;
    if (t.id == 0) return R::id_must_not_be_zero;
    if (t.id == u128_max) return R::id_must_not_be_int_max;
    if (transfers.count(t.id)) return exists(t, transfers.at(t.id));
    const bool p = t.flags & transfer_pending, post = t.flags & transfer_post_pending,
               voi = t.flags & transfer_void_pending;
    const bool bd = t.flags & transfer_balancing_debit, bc = t.flags & transfer_balancing_credit;
    const bool cd = t.flags & transfer_closing_debit, cc = t.flags & transfer_closing_credit;
    if (int(p) + int(post) + int(voi) > 1) return R::flags_are_mutually_exclusive;
    if ((post || voi) && (bd || bc || cd || cc)) return R::flags_are_mutually_exclusive;
    if (post || voi) return resolve(t, now, post);
    if (t.debit_account_id == 0) return R::debit_account_id_must_not_be_zero;
    if (t.debit_account_id == u128_max) return R::debit_account_id_must_not_be_int_max;
    if (t.credit_account_id == 0) return R::credit_account_id_must_not_be_zero;
    if (t.credit_account_id == u128_max) return R::credit_account_id_must_not_be_int_max;
    if (t.debit_account_id == t.credit_account_id) return R::accounts_must_be_different;
    if (t.pending_id) return R::pending_id_must_be_zero;
    if (!p && t.timeout) return R::timeout_reserved_for_pending_transfer;
    if (!p && (cd || cc)) return R::closing_transfer_must_be_pending;
    if (t.amount == 0 && !bd && !bc) return R::amount_must_not_be_zero;
    if (!t.ledger) return R::ledger_must_not_be_zero;
    if (!t.code) return R::code_must_not_be_zero;
    if (!accounts.count(t.debit_account_id)) return R::debit_account_not_found;
    if (!accounts.count(t.credit_account_id)) return R::credit_account_not_found;
    account& dr = accounts.at(t.debit_account_id);
    account& cr = accounts.at(t.credit_account_id);
    if (dr.ledger != cr.ledger) return R::accounts_must_have_the_same_ledger;
    if (t.ledger != dr.ledger) return R::transfer_must_have_the_same_ledger_as_accounts;
    if (dr.flags & account_closed) return R::debit_account_already_closed;
    if (cr.flags & account_closed) return R::credit_account_already_closed;
    big amount = t.amount;
    R exhausted = R::ok;
    if (bd || bc) {
      big cap = t.amount == 0 ? limit - 1 : B(t.amount);
      if (bd) {
        big used = B(dr.debits_posted) + B(dr.debits_pending);
        big avail = B(dr.credits_posted) > used ? B(dr.credits_posted) - used : big(0);
        if (avail == 0) exhausted = R::exceeds_credits;
        cap = std::min(cap, avail);
      }
      if (bc) {
        big used = B(cr.credits_posted) + B(cr.credits_pending);
        big avail = B(cr.debits_posted) > used ? B(cr.debits_posted) - used : big(0);
        if (avail == 0 && exhausted == R::ok) exhausted = R::exceeds_debits;
        cap = std::min(cap, avail);
      }
      amount = cap;
    }
    if (p) {
      if (B(dr.debits_pending) + amount >= limit) return R::overflows_debits_pending;
      if (B(cr.credits_pending) + amount >= limit) return R::overflows_credits_pending;
    } else {
      if (B(dr.debits_posted) + amount >= limit) return R::overflows_debits_posted;
      if (B(cr.credits_posted) + amount >= limit) return R::overflows_credits_posted;
    }
    if (B(dr.debits_pending) + B(dr.debits_posted) + amount >= limit) return R::overflows_debits;
    if (B(cr.credits_pending) + B(cr.credits_posted) + amount >= limit) return R::overflows_credits;
    big expires = 0;
    if (p && t.timeout) {
      expires = big(now) + big(t.timeout) * big(ns_per_s);
      if (expires > big(UINT64_MAX)) return R::overflows_timeout;
    }
    if (exhausted != R::ok) return exhausted;
    if ((dr.flags & account_debits_must_not_exceed_credits) &&
        B(dr.debits_pending) + B(dr.debits_posted) + amount > B(dr.credits_posted)) return R::exceeds_credits;
    if ((cr.flags & account_credits_must_not_exceed_debits) &&
        B(cr.credits_pending) + B(cr.credits_posted) + amount > B(cr.debits_posted)) return R::exceeds_debits;
    const u128 a = static_cast<u128>(amount);
    if (p) { dr.debits_pending += a; cr.credits_pending += a; }
    else { dr.debits_posted += a; cr.credits_posted += a; }
    if (cd) dr.flags |= account_closed;
    if (cc) cr.flags |= account_closed;
    transfer s = t;
    s.amount = a;
    s.timestamp = now;
    transfers[t.id] = s;
    if (p) pending[t.id] = {pending_status::pending, static_cast<uint64_t>(expires)};
    return R::ok;
  }

  R resolve(const transfer& t, uint64_t now, bool post) {
    if (t.pending_id == 0) return R::pending_id_must_not_be_zero;
    if (t.pending_id == u128_max) return R::pending_id_must_not_be_int_max;
    if (t.pending_id == t.id) return R::pending_id_must_be_different;
    if (t.timeout) return R::timeout_reserved_for_pending_transfer;
    if (!transfers.count(t.pending_id)) return R::pending_transfer_not_found;
    const transfer pt = transfers.at(t.pending_id);
    if (!(pt.flags & transfer_pending)) return R::pending_transfer_not_pending;
    if (t.debit_account_id && t.debit_account_id != pt.debit_account_id) return R::pending_transfer_has_different_debit_account_id;
    if (t.credit_account_id && t.credit_account_id != pt.credit_account_id) return R::pending_transfer_has_different_credit_account_id;
    if (t.ledger && t.ledger != pt.ledger) return R::pending_transfer_has_different_ledger;
    if (t.code && t.code != pt.code) return R::pending_transfer_has_different_code;
    if (post && B(t.amount) > B(pt.amount)) return R::exceeds_pending_transfer_amount;
    if (!post && t.amount && t.amount != pt.amount) return R::pending_transfer_has_different_amount;
    const pending_state st = pending.at(pt.id);
    if (st.status == pending_status::posted) return R::pending_transfer_already_posted;
    if (st.status == pending_status::voided) return R::pending_transfer_already_voided;
    if (st.status == pending_status::expired) return R::pending_transfer_expired;
    if (st.expires_at_ns && st.expires_at_ns <= now) return R::pending_transfer_expired;
    account& dr = accounts.at(pt.debit_account_id);
    account& cr = accounts.at(pt.credit_account_id);
    const u128 amount = post && t.amount ? t.amount : pt.amount;
    if (post) {
      if ((dr.flags & account_closed) && !(pt.flags & transfer_closing_debit)) return R::debit_account_already_closed;
      if ((cr.flags & account_closed) && !(pt.flags & transfer_closing_credit)) return R::credit_account_already_closed;
      if (B(dr.debits_posted) + B(amount) >= limit) return R::overflows_debits_posted;
      if (B(cr.credits_posted) + B(amount) >= limit) return R::overflows_credits_posted;
    }
    dr.debits_pending -= pt.amount;
    cr.credits_pending -= pt.amount;
    if (post) { dr.debits_posted += amount; cr.credits_posted += amount; }
    else {
      if (pt.flags & transfer_closing_debit) dr.flags &= ~account_closed;
      if (pt.flags & transfer_closing_credit) cr.flags &= ~account_closed;
    }
    transfer s = t;
    s.debit_account_id = pt.debit_account_id;
    s.credit_account_id = pt.credit_account_id;
    s.ledger = pt.ledger;
    s.code = pt.code;
    s.amount = amount;
    s.timestamp = now;
    transfers[t.id] = s;
    pending[pt.id] = {post ? pending_status::posted : pending_status::voided, 0};
    return R::ok;
  }

  void expire(uint64_t now) {
    for (auto& [id, st] : pending) {
      if (st.status != pending_status::pending || st.expires_at_ns == 0 || st.expires_at_ns > now) continue;
      const transfer& pt = transfers.at(id);
      account& dr = accounts.at(pt.debit_account_id);
      account& cr = accounts.at(pt.credit_account_id);
      dr.debits_pending -= pt.amount;
      cr.credits_pending -= pt.amount;
      if (pt.flags & transfer_closing_debit) dr.flags &= ~account_closed;
      if (pt.flags & transfer_closing_credit) cr.flags &= ~account_closed;
      st = {pending_status::expired, 0};
      next(now);
    }
  }

  // Linked chains: copy everything, and put the copy back when the chain fails.
  template <class E, class Res, class F>
  std::vector<Res> batch(const std::vector<E>& es, uint16_t linked, uint64_t now, F apply) {
    std::vector<Res> out(es.size(), Res::ok);
    size_t i = 0;
    while (i < es.size()) {
      size_t end = i;
      while (end < es.size() - 1 && (es[end].flags & linked)) ++end;
      if (!(es[i].flags & linked)) {
        out[i] = apply(es[i], next(now));
        ++i;
        continue;
      }
      auto saved_accounts = accounts; auto saved_transfers = transfers; auto saved_pending = pending;
      for (size_t j = i; j <= end; ++j) {
        Res r = (j == es.size() - 1 && (es[j].flags & linked)) ? Res::linked_event_chain_open
                                                              : apply(es[j], next(now));
        if (r != Res::ok) {
          accounts = saved_accounts; transfers = saved_transfers; pending = saved_pending;
          for (size_t k = i; k <= end; ++k) out[k] = Res::linked_event_failed;
          out[j] = r;
          break;
        }
      }
      i = end + 1;
    }
    return out;
  }
};

struct generator {
  std::mt19937_64 rng;
  std::vector<transfer> sent;
  explicit generator(uint64_t seed) : rng(seed) {}

  uint64_t below(uint64_t n) { return rng() % n; }
  bool chance(int percent) { return below(100) < uint64_t(percent); }

  u128 account_id() {
    if (chance(2)) return chance(50) ? 0 : u128_max;
    return 1 + below(14); // 1..12 exist (mostly), 13..14 never do
  }

  u128 amount() {
    if (chance(4)) return 0;
    if (chance(3)) return u128_max - below(3);
    if (chance(3)) return u128{1} << 127;
    return 1 + below(1000);
  }

  account random_account() {
    account a = make_account(1 + below(14), chance(85) ? 1 : 2);
    if (chance(20)) a.flags |= account_debits_must_not_exceed_credits;
    if (chance(10)) a.flags |= account_credits_must_not_exceed_debits;
    if (chance(10)) a.flags |= account_history;
    if (chance(10)) a.flags |= account_linked;
    if (chance(2)) a.flags |= 1u << 9;
    if (chance(3)) a.timestamp = 1;
    if (chance(3)) a.reserved = 1;
    if (chance(3)) a.debits_posted = 1;
    if (chance(3)) a.ledger = 0;
    if (chance(3)) a.code = 0;
    if (chance(5)) a.user_data_64 = below(3);
    return a;
  }

  transfer random_transfer(const model& m) {
    if (!sent.empty() && chance(10)) { // a retry, sometimes with one field changed
      transfer t = sent[below(sent.size())];
      if (chance(40)) {
        switch (below(5)) {
          case 0: t.amount = amount(); break;
          case 1: t.user_data_32 ^= 1; break;
          case 2: t.credit_account_id = account_id(); break;
          case 3: t.flags ^= transfer_pending; break;
          default: t.code ^= 1; break;
        }
      }
      return t;
    }
    transfer t = make_transfer(1 + below(400), account_id(), account_id(), amount());
    t.ledger = chance(95) ? 1 : below(3);
    if (chance(2)) t.code = 0;
    t.user_data_32 = static_cast<uint32_t>(below(2));
    const uint64_t kind = below(100);
    if (kind < 25) {
      t.flags |= transfer_pending;
      if (chance(40)) t.timeout = static_cast<uint32_t>(1 + below(3));
      if (chance(5)) t.flags |= chance(50) ? transfer_closing_debit : transfer_closing_credit;
    } else if (kind < 45) {
      t.flags |= chance(60) ? transfer_post_pending : transfer_void_pending;
      // Mostly name a transfer that is pending; zero the inherited fields most of the time.
      std::vector<u128> pendings;
      for (auto& [id, st] : m.pending) pendings.push_back(id);
      t.pending_id = !pendings.empty() && chance(85) ? pendings[below(pendings.size())] : 1 + below(400);
      if (chance(70)) t.debit_account_id = 0;
      if (chance(70)) t.credit_account_id = 0;
      if (chance(70)) t.ledger = 0;
      if (chance(70)) t.code = 0;
      if (chance(50)) t.amount = 0;
      else if (chance(50)) t.amount = 1 + below(500);
    } else if (kind < 52) {
      t.flags |= chance(50) ? transfer_balancing_debit : transfer_balancing_credit;
    }
    if (chance(2)) t.timeout = 1;
    if (chance(2)) t.flags |= 1u << 10;
    if (chance(1)) t.timestamp = 5;
    if (chance(15)) t.flags |= transfer_linked;
    sent.push_back(t);
    return t;
  }
};

void check_same(const state_machine& sm, const model& m) {
  REQUIRE(sm.account_count() == m.accounts.size());
  std::map<uint32_t, std::pair<big, big>> posted, pending;
  for (auto& [id, a] : m.accounts) {
    const account* s = sm.account_find(id);
    REQUIRE(s != nullptr);
    REQUIRE(std::memcmp(s, &a, sizeof a) == 0);
    posted[a.ledger].first += B(a.debits_posted);
    posted[a.ledger].second += B(a.credits_posted);
    pending[a.ledger].first += B(a.debits_pending);
    pending[a.ledger].second += B(a.credits_pending);
  }
  for (auto& [ledger, sums] : posted) REQUIRE(sums.first == sums.second);
  for (auto& [ledger, sums] : pending) REQUIRE(sums.first == sums.second);
  for (auto& [id, st] : m.pending) {
    if (sm.transfer_find(id) == nullptr) continue; // evicted: checked against the disk
    REQUIRE(sm.pending_find(id).status == st.status);
  }
}

} // namespace

TEST_CASE("random event streams agree with the reference model and keep the books balanced",
          "[ledger][property]") {
  const uint64_t seed = kassa::test::seed("ledger property");
  const int rounds = 40, batches = 150;
  std::map<std::string_view, int> seen; // how often each transfer code came up
  for (int round = 0; round < rounds; ++round) {
    generator gen(seed + round);
    state_machine sm;
    model m;
    // Committed transfers live on a stand-in "disk"; the state machine evicts and prefetches.
    std::map<u128, transfer> disk;
    std::map<u128, pending_state> disk_pending;
    uint64_t now = 1'000'000;
    INFO("seed " << seed << " round " << round);
    for (int b = 0; b < batches; ++b) {
      now += gen.below(ns_per_s * 3 / 2);
      sm.expire_pending(now);
      m.expire(now);
      if (gen.chance(20)) {
        std::vector<account> as;
        for (uint64_t i = 0, n = 1 + gen.below(6); i < n; ++i) as.push_back(gen.random_account());
        auto got = sm.create_accounts(as.data(), as.size(), now);
        auto want = m.batch<account, AR>(as, account_linked, now,
                                         [&](const account& a, uint64_t t) { return m.create_account(a, t); });
        for (size_t i = 0; i < as.size(); ++i) {
          INFO("batch " << b << " account event " << i);
          REQUIRE(name(got[i]) == name(want[i]));
        }
      } else {
        std::vector<transfer> ts;
        for (uint64_t i = 0, n = 1 + gen.below(16); i < n; ++i) ts.push_back(gen.random_transfer(m));
        for (u128 id : sm.transfer_ids_to_prefetch(ts.data(), ts.size())) {
          auto it = disk.find(id);
          if (it != disk.end()) sm.transfer_load(it->second, disk_pending.count(id) ? disk_pending.at(id) : pending_state{});
        }
        auto got = sm.create_transfers(ts.data(), ts.size(), now);
        auto want = m.batch<transfer, R>(ts, transfer_linked, now,
                                         [&](const transfer& t, uint64_t ts_) { return m.create_transfer(t, ts_); });
        for (size_t i = 0; i < ts.size(); ++i) {
          INFO("batch " << b << " transfer event " << i);
          REQUIRE(name(got[i]) == name(want[i]));
          seen[name(got[i])]++;
        }
      }
      REQUIRE(sm.timestamp_last() == m.ts);
      check_same(sm, m);
      change_set changes = sm.changes_take();
      for (const transfer& t : changes.transfers_created) disk[t.id] = t;
      for (const pending_update& u : changes.pending_updates) disk_pending[u.id] = {u.status, u.expires_at_ns};
      for (auto& [id, st] : m.pending) REQUIRE(disk_pending.at(id).status == st.status);
      for (auto& [id, t] : m.transfers) {
        const transfer* s = sm.transfer_find(id);
        const transfer* stored = s ? s : &disk.at(id);
        REQUIRE(std::memcmp(stored, &t, sizeof t) == 0);
      }
      if (gen.chance(30)) sm.transfers_evict(gen.below(50), sm.timestamp_last());
    }
  }
  // The generator must reach most rules, or agreement would prove little.
  std::string histogram;
  for (auto& [code, n] : seen) histogram += std::string(code) + "=" + std::to_string(n) + " ";
  INFO("codes seen: " << histogram);
  WARN("codes seen: " << histogram);
  CHECK(seen.size() >= 45);
  CHECK(seen["ok"] > 1000);
}
