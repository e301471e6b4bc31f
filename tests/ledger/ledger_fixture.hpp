#pragma once
// Small builders for ledger tests: readable accounts and transfers.
#include <vector>

#include "ledger/state_machine.hpp"

namespace kassa::test {

using namespace kassa::ledger;

inline account make_account(u128 id, uint32_t ledger = 1, uint16_t flags = 0, uint16_t code = 10) {
  account a{};
  a.id = id;
  a.ledger = ledger;
  a.code = code;
  a.flags = flags;
  return a;
}

inline transfer make_transfer(u128 id, u128 debit, u128 credit, u128 amount, uint16_t flags = 0,
                              uint32_t ledger = 1) {
  transfer t{};
  t.id = id;
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount = amount;
  t.ledger = ledger;
  t.code = 1;
  t.flags = flags;
  return t;
}

inline transfer make_resolve(u128 id, u128 pending_id, uint16_t flag, u128 amount = 0) {
  transfer t{};
  t.id = id;
  t.pending_id = pending_id;
  t.flags = flag;
  t.amount = amount;
  return t;
}

inline account_result create_one(state_machine& sm, const account& a, uint64_t now = 1000) {
  return sm.create_accounts(&a, 1, now).at(0);
}

inline transfer_result transfer_one(state_machine& sm, const transfer& t, uint64_t now = 1000) {
  return sm.create_transfers(&t, 1, now).at(0);
}

} // namespace kassa::test
