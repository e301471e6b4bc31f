#include "perf/bench/setup.hpp"

#include <stdexcept>

#include "perf/bench/workload.hpp"

namespace kassa::bench {

void setup_accounts(const scenario& s, const std::string& host, uint16_t port, const client::options& o, bool shadow) {
  client::blocking_client c(o);
  c.connect(host, port);
  wire::context ctx;
  ctx.shadow = shadow;
  const u128 base = account_base(s);
  const u128 bank = base + s.accounts + 1;
  const u128 last = s.kind == scenario_kind::payments ? bank + 1 : bank; // payments: the merchant
  std::vector<ledger::account> accounts;
  for (u128 id = base + 1; id <= last; ++id) {
    ledger::account a{};
    a.id = id;
    a.ledger = s.ledger;
    a.code = 1;
    a.flags = id < bank ? ledger::account_debits_must_not_exceed_credits : 0;
    accounts.push_back(a);
  }
  for (const auto& f : c.create_accounts(accounts, ctx)) {
    if (f.result != ledger::account_result::exists)
      throw std::runtime_error("creating account " + to_string_u128(accounts[f.index].id) +
                               " failed: " + std::string(ledger::name(f.result)));
  }
  if (s.funding == 0) return;
  std::vector<ledger::transfer> funding;
  for (u128 id = base + 1; id < bank; ++id) {
    ledger::transfer t{};
    t.id = funding_transfer_id(id); // clear of the load's ids
    t.debit_account_id = bank;
    t.credit_account_id = id;
    t.amount = s.funding;
    t.ledger = s.ledger;
    t.code = 1;
    funding.push_back(t);
  }
  for (const auto& f : c.create_transfers(funding, ctx)) {
    if (f.result != ledger::transfer_result::exists)
      throw std::runtime_error("funding account " + to_string_u128(funding[f.index].credit_account_id) +
                               " failed: " + std::string(ledger::name(f.result)));
  }
}

} // namespace kassa::bench
