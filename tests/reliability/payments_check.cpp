// payments_check: checks a running kassad with the payment core against the payment lines of
// kassa-bench's --acked-log files (docs/performance.md#--acked-log) and against
// kassa-channel-sim's statements. tests/reliability/crash_payments.sh runs it after each crash.
//
// usage: payments_check --address 127.0.0.1:PORT --data DIR --sim PORT --providers A,B,...
//                       [--shards N] [--settle-s N] [--provider-faults] [--resend LOG]... [LOG]...
//
// 1. Waits (--settle-s, default 60) until every payment row of the store (DIR/payments, read
//    only) is final; an order (create_order) waits for nothing. A row still running is a
//    violation.
// 2. Every command answered ok or in_progress: its key is stored with the fields sent, and its
//    row (lookup_orders) has the kind, key, amount and order sent; one answered completed is
//    still completed (or refunded since), one answered failed still failed. A command refused
//    before it is accepted (its form, its order, busy, store_unavailable) stored nothing. The
//    stored commands of the logs named by --resend are sent again: each must answer `exists`.
// 3. The money, over every row the store holds (commands in flight at a crash included):
//    each user (accounts 1..N of the log header in its ledger) holds the funding plus what its
//    completed top-ups, withdrawals and transfers and its pay items from balance (less their
//    refunds) add up to, nothing pending, not overdrawn; the merchant (N+2) what the orders
//    captured less what was refunded; each order's pay items add up to its captured amount
//    and its completed refunds to its refunded amount, never beyond what was captured; every
//    shard's escrow account is empty; each provider's clearing accounts (one per shard;
//    --shards, default 1, is kassad's store.shards) add up to the provider's statement
//    (charges - payouts - refunds); over these accounts, the bank (N+1) and the chart of
//    accounts of every shard, debits equal credits (a booking across shards is a saga through
//    the directory's own clearing accounts, whose two legs move the same amount, so once
//    every saga is resolved the sum over the accounts above balances without them).
// 4. The general ledger (DIR/accounting, read only), once it has read the whole journal and
//    every case resolution: provider_receivable, suspense and fee_income hold what the
//    ledger's clearing, suspense and fee accounts hold (over every provider and shard).
// --provider-faults: the simulator injects provider faults (crash_payments.sh FAULTS=1), so a
// payment answered failed may complete by a late success, a charge of another amount ends
// in_review with all of it in suspense, a payout of another amount or a partial one in_review
// with the difference in suspense (the user holds what its booking took), and the statements
// hold discrepancies on purpose (reconciliation is to find each of them), so the clearing
// accounts are not compared with them.
// Prints one summary line; exit 0 when there is no violation, 1 when there is, 2 bad usage,
// 3 when kassad, the simulator or the store cannot be read.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "channels/http_client.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/payments/rules.hpp"
#include "ledger/payments/gl.hpp"
#include "ledger/store/payments_store.hpp"
#include "ledger/store/recon_store.hpp"
#include "ledger/store/voucher_store.hpp"
#include "runtime/client/client.hpp"
#include "tests/payments_money.hpp"
#include "tests/reliability/acked_log.hpp"

using namespace kassa;
namespace lp = kassa::ledger::payments;
namespace ks = kassa::ledger::store;

namespace {

constexpr size_t chunk_commands_max = 500;  // per lookup or resend request
constexpr size_t problems_printed_max = 20; // detail lines; the counts say the rest
constexpr uint64_t settle_s_default = 60;
constexpr uint32_t shards_max = 256; // store.shards' limit
constexpr uint32_t http_timeout_ms = 10'000;

struct unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "payments_check: %s\nsee the comment at the top of tests/reliability/payments_check.cpp\n",
               why.c_str());
  std::exit(2);
}

size_t problems_printed = 0;
uint64_t violations = 0;
std::vector<std::string>* held = nullptr; // set: violations are collected here, not yet counted
void violation(const std::string& what) {
  if (held != nullptr) {
    held->push_back(what);
    return;
  }
  ++violations;
  if (problems_printed++ < problems_printed_max) std::fprintf(stderr, "payments_check: violation: %s\n", what.c_str());
}

std::string text(u128 v) { return to_string_u128(v); }
std::string text(__int128 v) { return v < 0 ? "-" + to_string_u128(u128(-v)) : to_string_u128(u128(v)); }

struct log_header {
  uint64_t accounts = 0;
  uint32_t ledger = 0;
  u128 funding = 0;
};

struct logged_command {
  lp::payment_command command{};
  lp::payment_result result = lp::payment_result::ok;
  lp::order_state state = lp::order_state::none;
  bool resend = false;
  std::string where;
};

template <class E, size_t N>
void by_name(const std::string& word, E& out, const char* what, const std::string& where) {
  for (size_t i = 0; i <= N; ++i) {
    if (word == lp::name(E(i))) {
      out = E(i);
      return;
    }
  }
  usage(where + ": unknown " + what + " '" + word + "'");
}

std::string field(const std::string& header, const std::string& key) { return test::log_field(header, key, usage); }

// Reads the payment lines of one --acked-log (transfer lines are acked_check's).
log_header read_log(const std::string& path, bool resend, std::vector<logged_command>& out) {
  log_header h;
  auto header = [&](const std::string& line, const std::string& where) {
    if (field(line, "mix") != "payments") usage(where + ": not a payments scenario's log");
    u128 accounts = 0, ledger = 0;
    if (!parse_u128(field(line, "accounts"), accounts) || !parse_u128(field(line, "ledger"), ledger) ||
        !parse_u128(field(line, "funding"), h.funding) || accounts < 2 || accounts > (u128{1} << 40) || ledger == 0 ||
        ledger > UINT32_MAX) {
      usage(where + ": bad header");
    }
    h.accounts = uint64_t(accounts);
    h.ledger = uint32_t(ledger);
  };
  test::read_acked_log(path, usage, header, [&](const std::string& line, const std::string& where) {
    if (h.accounts == 0) usage(where + ": a command before the header");
    std::istringstream words(line);
    std::string kind, key, order_id, account, counterparty, amount, provider, result, state;
    uint64_t ledger = 0, source = 0, user_data_64 = 0;
    logged_command c;
    c.resend = resend;
    c.where = where;
    auto& p = c.command;
    if (!(words >> kind >> key >> order_id >> account >> counterparty >> amount >> ledger >> source >> provider >>
          user_data_64 >> result >> state) ||
        !parse_u128(key, p.key) || !parse_u128(order_id, p.order_id) || !parse_u128(account, p.account_id) ||
        !parse_u128(counterparty, p.counterparty_id) || !parse_u128(amount, p.amount) || ledger > UINT32_MAX ||
        source > UINT16_MAX || provider.size() > lp::provider_name_bytes) {
      usage(where + ": expected '<kind> <key> <order_id> <account_id> <counterparty_id> <amount> <ledger> <source> "
                    "<provider or -> <user_data_64> <result> <state>', got '" + line + "'");
    }
    lp::kind k{};
    by_name<lp::kind, lp::kind_max>(kind, k, "kind", where);
    by_name<lp::payment_result, size_t(lp::payment_result_max)>(result, c.result, "result", where);
    by_name<lp::order_state, lp::order_state_max>(state, c.state, "state", where);
    p.kind = uint16_t(k);
    p.ledger = uint32_t(ledger);
    p.source = uint16_t(source);
    p.user_data_64 = user_data_64;
    if (provider != "-") std::memcpy(p.provider, provider.data(), provider.size());
    out.push_back(c);
  });
  if (h.accounts == 0) usage(path + ": no header (is it a payments --acked-log of kassa-bench?)");
  return h;
}

bool accepted(lp::payment_result r) { return r == lp::payment_result::ok || r == lp::payment_result::in_progress; }

// Refused before the key was stored (docs/payments.md, Idempotency): nothing may be stored.
bool refused_before_accepting(lp::payment_result r) {
  using R = lp::payment_result;
  return (r >= R::reserved_field && r <= R::provider_unknown) || (r >= R::order_exists && r <= R::order_not_refundable) ||
         r == R::amount_exceeds_order_remaining || r == R::refund_exceeds_captured || r == R::busy ||
         r == R::store_unavailable;
}

// The row a command creates: orders, top-ups, withdrawals and transfers under their order id,
// pay items and refunds under their key.
u128 row_id(const lp::payment_command& c) {
  const auto k = lp::kind(c.kind);
  return k == lp::kind::pay || k == lp::kind::refund ? c.key : c.order_id;
}

bool settled(const lp::order& row) {
  return row.kind == uint16_t(lp::kind::create_order) || lp::final_state(lp::order_state(row.state));
}

std::vector<lp::order> scan(const ks::payments_store& store) {
  std::vector<lp::order> rows;
  const ks::error err = store.scan_rows([&rows](const lp::order& row) {
    rows.push_back(row);
    return true;
  });
  if (!err.ok()) throw unavailable("reading the payments store: " + err.message);
  return rows;
}

bool same_rows(const std::vector<lp::order>& a, const std::vector<lp::order>& b) {
  static_assert(std::is_trivially_copyable_v<lp::order>);
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(lp::order)) == 0);
}

// Step 1: waits until no row is running; returns the rows.
std::vector<lp::order> wait_settled(const ks::payments_store& store, uint64_t settle_s, uint64_t& unsettled) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(settle_s);
  for (;;) {
    auto rows = scan(store);
    unsettled = uint64_t(std::count_if(rows.begin(), rows.end(), [](const lp::order& r) { return !settled(r); }));
    if (unsettled == 0 || std::chrono::steady_clock::now() >= until) return rows;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

struct counts {
  uint64_t acked = 0, accepted = 0, refused = 0, resent = 0, rows = 0, unsettled = 0;
};

// Step 2.
void check_commands(client::blocking_client& kassad, const ks::payments_store& store, bool provider_faults,
                    const std::vector<logged_command>& logged, counts& c) {
  std::vector<const logged_command*> stored; // to look up and, with resend, send again
  for (const auto& l : logged) {
    c.acked++;
    lp::payment_command key_command{};
    bool found = false;
    const ks::error err = store.get_key(l.command.key, key_command, found);
    if (!err.ok()) throw unavailable("reading the payments store: " + err.message);
    const std::string what = std::string(lp::name(lp::kind(l.command.kind))) + " key " + text(l.command.key) + " (" +
                             l.where + ", answered " + std::string(lp::name(l.result)) + ")";
    if (accepted(l.result)) {
      c.accepted++;
      if (!found) {
        violation("acknowledged " + what + " is not stored");
        continue;
      }
    } else {
      c.refused++;
      if (found && refused_before_accepting(l.result)) violation(what + " was refused before accepting, yet its key is stored");
      if (!found) continue;
    }
    if (!lp::same_fields(key_command, l.command)) violation(what + " is stored with other fields");
    stored.push_back(&l);
  }
  for (size_t begin = 0; begin < stored.size(); begin += chunk_commands_max) {
    const size_t end = std::min(stored.size(), begin + chunk_commands_max);
    std::vector<u128> ids;
    for (size_t i = begin; i < end; ++i) ids.push_back(row_id(stored[i]->command));
    std::map<u128, lp::order> rows;
    for (const auto& r : kassad.lookup_orders(ids)) rows[r.id] = r;
    std::vector<lp::payment_command> again;
    for (size_t i = begin; i < end; ++i) {
      const logged_command& l = *stored[i];
      const lp::payment_command& p = l.command;
      const std::string what = std::string(lp::name(lp::kind(p.kind))) + " key " + text(p.key) + " (" + l.where + ")";
      const auto it = rows.find(row_id(p));
      if (it == rows.end()) {
        violation(what + ": its row " + text(row_id(p)) + " is missing");
        continue;
      }
      const lp::order& row = it->second;
      const bool child = lp::kind(p.kind) == lp::kind::pay || lp::kind(p.kind) == lp::kind::refund;
      if (row.key != p.key || row.kind != p.kind || row.amount != p.amount || (child && row.parent_id != p.order_id))
        violation(what + ": its row holds another kind, key, amount or order");
      const auto now = lp::order_state(row.state);
      if (l.result == lp::payment_result::ok && l.state == lp::order_state::completed &&
          now != lp::order_state::completed && now != lp::order_state::partially_refunded && now != lp::order_state::refunded)
        violation(what + ": answered completed, now " + std::string(lp::name(now)));
      if (l.state == lp::order_state::failed && now != lp::order_state::failed &&
          !(provider_faults && now == lp::order_state::completed))
        violation(what + ": answered failed, now " + std::string(lp::name(now)));
      if (l.resend) again.push_back(p);
    }
    if (again.empty()) continue;
    // Every command sent again must answer exists; anything else may have done it twice.
    const auto replies = kassad.submit_payments(again);
    c.resent += again.size();
    if (replies.size() != again.size()) violation("a resend of " + std::to_string(again.size()) + " commands got " +
                                                  std::to_string(replies.size()) + " replies");
    for (const auto& r : replies) {
      if (r.index < again.size() && r.result != uint32_t(lp::payment_result::exists))
        violation("resent key " + text(again[r.index].key) + " answered " +
                  std::string(r.result <= lp::payment_result_max ? lp::name(lp::payment_result(r.result))
                                                                                       : "unknown"));
    }
  }
}

class simulator {
public:
  explicit simulator(uint16_t port) {
    channels::http_client_options o;
    o.port = port;
    o.connections_max = 2;
    http_ = std::make_unique<channels::http_client>(o);
  }
  nlohmann::json get(const std::string& target) {
    std::promise<channels::http_result> p;
    auto f = p.get_future();
    http_->request(false, target, {}, http_timeout_ms, [&p](channels::http_result r) { p.set_value(std::move(r)); });
    const auto r = f.get();
    if (r.error != channels::http_error::none || r.status != 200)
      throw unavailable("kassa-channel-sim " + target + ": " + r.detail + " HTTP " + std::to_string(r.status));
    return nlohmann::json::parse(r.body);
  }

private:
  std::unique_ptr<channels::http_client> http_;
};

std::map<u128, ledger::account> lookup_accounts(client::blocking_client& kassad, const std::vector<u128>& ids) {
  std::map<u128, ledger::account> out;
  for (size_t begin = 0; begin < ids.size(); begin += chunk_commands_max) {
    const std::vector<u128> chunk(ids.begin() + begin, ids.begin() + std::min(ids.size(), begin + chunk_commands_max));
    for (const auto& a : kassad.lookup_accounts(chunk)) out[a.id] = a;
  }
  return out;
}

__int128 balance(const ledger::account& a) {
  return static_cast<__int128>(a.credits_posted) - static_cast<__int128>(a.debits_posted);
}

// Step 3.
void check_money(client::blocking_client& kassad, simulator& sim, const std::vector<std::string>& providers, bool provider_faults,
                 uint32_t shards, const std::vector<lp::order>& rows, const log_header& h, uint64_t settle_s) {
  const u128 base = h.ledger == 1 ? 0 : u128{h.ledger} << 64; // kassa-bench's account_base
  const u128 bank = base + h.accounts + 1, merchant = base + h.accounts + 2;
  std::map<u128, __int128> expected; // users
  for (u128 u = base + 1; u < bank; ++u) expected[u] = static_cast<__int128>(h.funding);
  __int128 merchant_expected = 0;
  struct order_sums {
    __int128 captured = 0, refunded = 0;
  };
  std::map<u128, order_sums> items; // by order: its pay items' captured, its refunds' amounts
  auto user = [&](u128 id, const lp::order& row) -> __int128* {
    const auto it = expected.find(id);
    if (it != expected.end()) return &it->second;
    violation("row " + text(row.id) + " names account " + text(id) + ", not a user of the load");
    return nullptr;
  };
  for (const auto& row : rows) {
    if (row.ledger != 0 && row.ledger != h.ledger) continue; // another load's
    const auto k = lp::kind(row.kind);
    const auto s = lp::order_state(row.state);
    const __int128 captured = static_cast<__int128>(row.amount_captured), fee = static_cast<__int128>(row.fee);
    if (provider_faults && s == lp::order_state::in_review && k == lp::kind::withdrawal) {
      if (auto* u = user(row.account_id, row)) *u -= captured + fee; // booked; the rest is in suspense
      continue;
    }
    if (provider_faults && s == lp::order_state::in_review && (k == lp::kind::topup || k == lp::kind::pay))
      continue; // a charge of another amount: all of it in suspense, nothing captured
    if (s == lp::order_state::in_review || (k != lp::kind::create_order && !lp::final_state(s))) {
      violation("row " + text(row.id) + " (" + std::string(lp::name(k)) + ") is " + std::string(lp::name(s)));
      continue;
    }
    if (row.amount_refunded + row.amount_refund_pending > row.amount_captured || row.amount_refund_pending != 0)
      violation("row " + text(row.id) + ": refunded " + text(row.amount_refunded) + " + pending " +
                text(row.amount_refund_pending) + " against captured " + text(row.amount_captured));
    if (k == lp::kind::create_order) {
      merchant_expected += captured - static_cast<__int128>(row.amount_refunded);
      continue;
    }
    const bool moved = s == lp::order_state::completed || s == lp::order_state::partially_refunded || s == lp::order_state::refunded;
    if (k == lp::kind::pay && moved) items[row.parent_id].captured += captured;
    if (k == lp::kind::refund && moved) items[row.parent_id].refunded += captured;
    if (!moved) continue;
    const bool from_balance = row.source == uint16_t(lp::source::balance);
    if (k == lp::kind::pay && from_balance) { // the payer paid what reached the merchant
      if (auto* u = user(row.account_id, row)) *u -= captured;
    } else if (k == lp::kind::refund && from_balance) { // the merchant gave it back to the payer
      if (auto* u = user(row.account_id, row)) *u += captured;
    } else if (k == lp::kind::topup) {
      if (auto* u = user(row.account_id, row)) *u += captured - fee;
    } else if (k == lp::kind::withdrawal) {
      if (auto* u = user(row.account_id, row)) *u -= captured + fee;
    } else if (k == lp::kind::transfer) {
      if (auto* u = user(row.account_id, row)) *u -= captured + fee;
      if (auto* u = user(row.counterparty_id, row)) *u += captured;
    }
  }
  for (const auto& row : rows) {
    if (row.kind != uint16_t(lp::kind::create_order)) continue;
    const order_sums sums = items[row.id];
    if (sums.captured != static_cast<__int128>(row.amount_captured) || sums.refunded != static_cast<__int128>(row.amount_refunded))
      violation("order " + text(row.id) + ": captured " + text(row.amount_captured) + ", refunded " +
                text(row.amount_refunded) + ", its items captured " + text(sums.captured) + " and refunded " +
                text(sums.refunded));
  }

  // The providers' clearing accounts against their statements: a provider has one clearing
  // account per shard (bookings stay in the payer's shard), and together they hold what it
  // owes. The last callbacks may still be on the way, so look again until they agree or the
  // time is up.
  std::vector<u128> clearing; // provider i's account of shard s at i * shards + s
  for (size_t i = 0; i < providers.size(); ++i)
    for (uint32_t s = 0; s < shards; ++s) clearing.push_back(lp::account_id(lp::role::provider_clearing, uint32_t(i), s, h.ledger));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(settle_s);
  std::vector<__int128> books(providers.size()), statement(providers.size());
  std::vector<std::string> per_shard(providers.size());
  while (!provider_faults) {
    const auto found = lookup_accounts(kassad, clearing);
    bool agree = true;
    for (size_t i = 0; i < providers.size(); ++i) {
      books[i] = 0;
      per_shard[i].clear();
      for (uint32_t s = 0; s < shards; ++s) {
        const auto it = found.find(clearing[i * shards + s]);
        const __int128 net = it == found.end() ? 0 : test::clearing_net(it->second);
        books[i] += net;
        per_shard[i] += (s == 0 ? "" : " + ") + text(net);
      }
      statement[i] = test::statement_net([&sim](const std::string& t) { return sim.get(t); }, providers[i]);
      agree = agree && books[i] == statement[i];
    }
    if (agree || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (size_t i = 0; !provider_faults && i < providers.size(); ++i) {
    if (books[i] != statement[i])
      violation("provider " + providers[i] + ": clearing accounts " + text(books[i]) +
                (shards > 1 ? " (shards: " + per_shard[i] + ")" : "") + ", its statement " + text(statement[i]));
  }

  std::vector<u128> ids;
  for (u128 id = base + 1; id <= merchant; ++id) ids.push_back(id);
  ids.insert(ids.end(), clearing.begin(), clearing.end());
  for (uint32_t s = 0; s < shards; ++s)
    for (auto r : {lp::role::fees, lp::role::suspense, lp::role::escrow}) ids.push_back(lp::account_id(r, 0, s, h.ledger));
  const auto accounts = lookup_accounts(kassad, ids);
  u128 debits_posted = 0, credits_posted = 0, debits_pending = 0, credits_pending = 0;
  for (const auto& [id, a] : accounts) {
    debits_posted += a.debits_posted;
    credits_posted += a.credits_posted;
    debits_pending += a.debits_pending;
    credits_pending += a.credits_pending;
  }
  for (const auto& [id, want] : expected) {
    const auto it = accounts.find(id);
    if (it == accounts.end()) {
      violation("user account " + text(id) + " is missing");
      continue;
    }
    const ledger::account& a = it->second;
    if (balance(a) != want || a.debits_pending != 0)
      violation("user " + text(id) + " holds " + text(balance(a)) + " (pending debits " + text(a.debits_pending) +
                "), its payments add up to " + text(want));
    if (a.debits_posted + a.debits_pending > a.credits_posted) violation("user " + text(id) + " is overdrawn");
  }
  const auto m = accounts.find(merchant);
  if (m == accounts.end() || balance(m->second) != merchant_expected || m->second.debits_pending != 0)
    violation("the merchant " + text(merchant) + " holds " + (m == accounts.end() ? "nothing" : text(balance(m->second))) +
              ", its orders add up to " + text(merchant_expected));
  const auto b = accounts.find(bank);
  if (b == accounts.end() || b->second.debits_posted != h.funding * h.accounts || b->second.credits_posted != 0)
    violation("the bank " + text(bank) + " moved more than the funding");
  // Escrow holds a pay-from-balance item's money only between its hold and the forward to the
  // merchant (or back to the payer, or into suspense): with every row final, each shard's is empty.
  for (uint32_t s = 0; s < shards; ++s) {
    const u128 id = lp::account_id(lp::role::escrow, 0, s, h.ledger);
    const auto e = accounts.find(id);
    if (e != accounts.end() && (balance(e->second) != 0 || e->second.debits_pending != 0 || e->second.credits_pending != 0))
      violation("the escrow account of shard " + std::to_string(s) + " holds " + text(balance(e->second)) +
                " (pending credits " + text(e->second.credits_pending) + "), with every row final");
  }
  if (debits_posted != credits_posted || debits_pending != credits_pending)
    violation("debits posted " + text(debits_posted) + " != credits posted " + text(credits_posted) + " or debits pending " +
              text(debits_pending) + " != credits pending " + text(credits_pending));
}

// Step 4: the general ledger against the ledger. Once the accounting actor has read the whole
// payments journal and every case resolution, each chart account's GL balance equals, in the
// load's ledger, what the ledger's accounts of that role hold over every provider and shard:
// provider_receivable the providers' clearing accounts (debit balance), suspense and
// fee_income the suspense and fee accounts (credit balance).
void check_gl(client::blocking_client& kassad, const ks::payments_store& payments, const std::string& data_dir,
              const std::vector<std::string>& providers, uint32_t shards, uint32_t ledger_id, uint64_t settle_s) {
  ks::error err;
  const auto vouchers = ks::voucher_store::open_read_only(data_dir + "/accounting", err);
  if (!vouchers) throw unavailable("the accounting store: " + err.message);
  const auto recon = ks::recon_store::open_read_only(data_dir + "/recon", err); // none: reconciliation off
  std::vector<ks::gl_total> totals;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(settle_s);
  for (;;) {
    uint64_t cursor = 0, recon_cursor = 0, resolutions_last = 0;
    totals.clear();
    if (!(err = vouchers->load_totals(totals, &cursor, nullptr, &recon_cursor)).ok()) throw unavailable(err.message);
    ks::recon_counters counters;
    if (recon && !(err = recon->read_counters(counters)).ok()) throw unavailable(err.message);
    resolutions_last = counters.resolution_sequence_last;
    uint64_t journal_last = 0; // read now: journal_last() is the store's as it was opened
    if (!(err = payments.read_journal_last(journal_last)).ok()) throw unavailable(err.message);
    const bool caught_up = cursor >= journal_last && recon_cursor >= resolutions_last;
    if (caught_up) break;
    if (std::chrono::steady_clock::now() >= until) {
      violation("the general ledger is behind after " + std::to_string(settle_s) + " s: journal " + std::to_string(cursor) +
                " of " + std::to_string(journal_last) + ", resolutions " + std::to_string(recon_cursor) + " of " +
                std::to_string(resolutions_last));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  auto gl = [&](lp::gl_account a) -> __int128 { // debit balance
    for (const auto& t : totals)
      if (t.account == uint16_t(a) && t.ledger == ledger_id) return static_cast<__int128>(t.debits) - static_cast<__int128>(t.credits);
    return 0;
  };
  std::vector<u128> ids;
  for (uint32_t s = 0; s < shards; ++s) {
    for (size_t i = 0; i < providers.size(); ++i) ids.push_back(lp::account_id(lp::role::provider_clearing, uint32_t(i), s, ledger_id));
    ids.push_back(lp::account_id(lp::role::suspense, 0, s, ledger_id));
    ids.push_back(lp::account_id(lp::role::fees, 0, s, ledger_id));
  }
  const auto accounts = lookup_accounts(kassad, ids);
  auto held = [&](lp::role r) -> __int128 { // debit balance over providers and shards
    __int128 sum = 0;
    for (const auto& [id, a] : accounts)
      if (lp::account_role(id) == r)
        sum += static_cast<__int128>(a.debits_posted) - static_cast<__int128>(a.credits_posted);
    return sum;
  };
  const std::pair<lp::gl_account, lp::role> pairs[] = {{lp::gl_account::provider_receivable, lp::role::provider_clearing},
                                                       {lp::gl_account::suspense, lp::role::suspense},
                                                       {lp::gl_account::fee_income, lp::role::fees}};
  for (const auto& [a, r] : pairs)
    if (gl(a) != held(r))
      violation("general ledger account " + std::to_string(uint16_t(a)) + " holds " + text(gl(a)) +
                " (debit balance), the ledger's accounts of its role " + text(held(r)));
}

uint16_t port_of(const std::string& flag, const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos || std::stoul(text) > 65535)
    usage(flag + " needs a port, got '" + text + "'");
  return uint16_t(std::stoul(text));
}

} // namespace

int main(int argc, char** argv) {
  std::string host, data_dir;
  uint16_t port = 0, sim_port = 0;
  uint64_t settle_s = settle_s_default;
  uint32_t shards = 1;
  bool provider_faults = false;
  std::vector<std::string> providers;
  std::vector<std::pair<std::string, bool>> logs; // path, resend
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--address" && has_value) {
      const std::string v = argv[++i];
      const size_t colon = v.rfind(':');
      if (colon == std::string::npos) usage("--address is HOST:PORT");
      host = v.substr(0, colon);
      port = port_of(a, v.substr(colon + 1));
    } else if (a == "--data" && has_value) {
      data_dir = argv[++i];
    } else if (a == "--sim" && has_value) {
      sim_port = port_of(a, argv[++i]);
    } else if (a == "--providers" && has_value) {
      std::istringstream list(argv[++i]);
      for (std::string p; std::getline(list, p, ',');) providers.push_back(p);
    } else if (a == "--shards" && has_value) {
      const std::string v = argv[++i];
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos || std::stoul(v) < 1 ||
          std::stoul(v) > shards_max)
        usage("--shards is kassad's store.shards, 1.." + std::to_string(shards_max));
      shards = uint32_t(std::stoul(v));
    } else if (a == "--settle-s" && has_value) {
      const std::string v = argv[++i];
      if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos) usage("--settle-s is seconds");
      settle_s = std::stoull(v);
    } else if (a == "--provider-faults") {
      provider_faults = true;
    } else if (a == "--resend" && has_value) {
      logs.emplace_back(argv[++i], true);
    } else if (!a.empty() && a[0] != '-') {
      logs.emplace_back(a, false);
    } else {
      usage("unknown argument " + a);
    }
  }
  if (host.empty() || data_dir.empty() || sim_port == 0 || providers.empty() || logs.empty())
    usage("needs --address, --data, --sim, --providers and at least one log");
  if (host != "127.0.0.1" && host != "localhost" && host != "::1") usage("loopback only");

  std::vector<logged_command> logged;
  log_header h;
  for (const auto& [path, resend] : logs) {
    const log_header next = read_log(path, resend, logged);
    if (h.accounts != 0 && (h.accounts != next.accounts || h.ledger != next.ledger || h.funding != next.funding))
      usage("the logs name different accounts, ledgers or funding");
    h = next;
  }

  counts c;
  try {
    ks::error err;
    const auto store = ks::payments_store::open_read_only(data_dir + "/payments", err);
    if (!store) throw unavailable(err.message);
    client::blocking_client kassad;
    kassad.connect(host, port);
    simulator sim(sim_port);
    wait_settled(*store, settle_s, c.unsettled);
    if (c.unsettled != 0) violation(std::to_string(c.unsettled) + " payments still running after " + std::to_string(settle_s) + " s");
    check_commands(kassad, *store, provider_faults, logged, c);
    // After the resends: what they changed, if anything, shows here. The money check reads
    // the rows, then the ledger: a late success (provider faults) may turn a failed row
    // completed in between, its booking already in the ledger. So the check is taken again on
    // the rows read anew until they stand still across it (or settle_s is up); only the last
    // take counts.
    auto rows = scan(*store);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(settle_s);
    for (;;) {
      std::vector<std::string> found;
      held = &found;
      check_money(kassad, sim, providers, provider_faults, shards, rows, h, settle_s);
      held = nullptr;
      auto again = scan(*store);
      if (same_rows(rows, again) || std::chrono::steady_clock::now() >= until) {
        for (const std::string& v : found) violation(v);
        break;
      }
      rows = std::move(again);
    }
    c.rows = rows.size();
    check_gl(kassad, *store, data_dir, providers, shards, h.ledger, settle_s);
  } catch (const client::error& e) {
    std::fprintf(stderr, "payments_check: kassad at %s:%u: %s\n", host.c_str(), unsigned(port), e.what());
    return 3;
  } catch (const unavailable& e) {
    std::fprintf(stderr, "payments_check: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) { // a statement or log the simulator sent that we cannot read
    std::fprintf(stderr, "payments_check: %s\n", e.what());
    return 3;
  }
  std::printf("payments_check: logs=%zu acked=%llu accepted=%llu refused=%llu resent=%llu rows=%llu unsettled=%llu "
              "violations=%llu\n",
              logs.size(), (unsigned long long)c.acked, (unsigned long long)c.accepted, (unsigned long long)c.refused,
              (unsigned long long)c.resent, (unsigned long long)c.rows, (unsigned long long)c.unsettled,
              (unsigned long long)violations);
  return violations == 0 ? 0 : 1;
}
