#include "ledger/state_machine.hpp"

#include <algorithm>

#include "ledger/system_ids.hpp"
#include "primitives/assert.hpp"

namespace kassa::ledger {

// Everything a linked chain did, so that a failing event can undo the whole chain.
struct state_machine::undo_log {
  bool active = false;
  std::vector<account> accounts_before;   // first-touch images of updated accounts
  std::vector<u128> accounts_created;
  std::vector<u128> transfers_created;
  std::vector<std::pair<u128, pending_state>> pending_before;
  size_t changes_accounts_created = 0;
  size_t changes_accounts_updated = 0;
  size_t changes_transfers_created = 0;
  size_t changes_pending_updates = 0;
  size_t changes_history = 0;

  void begin(const change_set& c) {
    active = true;
    accounts_before.clear();
    accounts_created.clear();
    transfers_created.clear();
    pending_before.clear();
    changes_accounts_created = c.accounts_created.size();
    changes_accounts_updated = c.accounts_updated.size();
    changes_transfers_created = c.transfers_created.size();
    changes_pending_updates = c.pending_updates.size();
    changes_history = c.history.size();
  }
  void end() { active = false; }
};

namespace {

// Drives a batch: stamps each event, runs linked chains all-or-nothing. `begin` opens the
// undo log of a chain, `undo` rolls the chain back, `end` closes the log outside chains.
template <class Event, class Result, class Linked, class Apply, class Prefetch, class Begin, class Undo, class End>
std::vector<Result> run_batch(const Event* events, size_t count, Linked&& is_linked,
                              Apply&& apply, Prefetch&& prefetch, Begin&& begin, Undo&& undo,
                              End&& end) {
  constexpr size_t prefetch_distance = 8;
  std::vector<Result> results(count, Result::ok);
  for (size_t i = 0; i < std::min(count, prefetch_distance); ++i) prefetch(events[i]);
  size_t chain_start = count; // == count: no chain open
  bool chain_failed = false;
  for (size_t i = 0; i < count; ++i) {
    const Event& e = events[i];
    if (i + prefetch_distance < count) prefetch(events[i + prefetch_distance]);
    const bool linked = is_linked(i);
    if (chain_start == count && linked) {
      chain_start = i;
      chain_failed = false;
      begin();
    }
    const bool in_chain = chain_start != count;
    if (!in_chain) end();

    Result r;
    if (in_chain && chain_failed) {
      r = Result::linked_event_failed;
    } else if (linked && i == count - 1) {
      r = Result::linked_event_chain_open;
    } else {
      r = apply(e);
    }
    results[i] = r;

    if (in_chain) {
      if (r != Result::ok && !chain_failed) {
        chain_failed = true;
        undo();
        for (size_t j = chain_start; j < i; ++j) results[j] = Result::linked_event_failed;
      }
      if (!linked || i == count - 1) {
        chain_start = count; // the chain ends with this event
        end();
      }
    }
  }
  return results;
}

bool sum3_overflows(u128 a, u128 b, u128 c) {
  u128 ab;
  if (!add_checked(a, b, ab)) return true;
  return add_overflows(ab, c);
}

} // namespace

void state_machine::timestamp_lanes_set(uint32_t lane, uint32_t lanes) {
  KASSA_ASSERT(lanes >= 1 && lane < lanes);
  timestamp_lane_ = lane;
  timestamp_lanes_ = lanes;
}

uint64_t state_machine::timestamp_next(uint64_t now_ns) {
  KASSA_ASSERT(timestamp_last_ < UINT64_MAX);
  uint64_t next = std::max(now_ns, timestamp_last_ + 1);
  if (timestamp_lanes_ > 1) {
    const uint64_t skip = (timestamp_lane_ + timestamp_lanes_ - next % timestamp_lanes_) % timestamp_lanes_;
    KASSA_ASSERT(next <= UINT64_MAX - skip);
    next += skip;
  }
  timestamp_last_ = next;
  changes_.timestamp_last = timestamp_last_;
  return timestamp_last_;
}

// Applies one event at the directory's stamp `given` (0: none, our own stamp), when that keeps
// timestamps increasing. A stamp at or below our latest comes with a round applied again (the
// event is here already) or with one this shard takes late: the event gets our own stamp, and
// only if it applies, so that a repeat does not move our clock past the stamps still to come.
template <class Result, class Apply>
Result state_machine::stamped(uint64_t given, uint64_t now_ns, Apply&& apply) {
  if (given == 0) return apply(timestamp_next(now_ns));
  if (given > timestamp_last_) {
    timestamp_last_ = given;
    changes_.timestamp_last = timestamp_last_;
    return apply(given);
  }
  const uint64_t last = timestamp_last_, changes_last = changes_.timestamp_last;
  const Result r = apply(timestamp_next(now_ns));
  if (r != Result::ok) {
    timestamp_last_ = last;
    changes_.timestamp_last = changes_last;
  }
  return r;
}

// ---------------------------------------------------------------------------- accounts

std::vector<account_result> state_machine::create_accounts(const account* events, size_t count,
                                                           uint64_t now_ns, const uint8_t* system,
                                                           const uint64_t* stamps) {
  undo_log undo;
  return run_batch<account, account_result>(
      events, count,
      [&](size_t i) {
        return has(events[i].flags, account_linked) && (system == nullptr || system[i] != system_unlinked);
      },
      [&](const account& a) {
        system_event_ = system != nullptr && system[&a - events] != 0;
        auto r = stamped<account_result>(stamps != nullptr ? stamps[&a - events] : 0, now_ns,
                                         [&](uint64_t stamp) { return create_account(a, stamp); });
        if (r == account_result::ok && undo.active) undo.accounts_created.push_back(a.id);
        return r;
      },
      [&](const account& a) { accounts_.prefetch(a.id); },
      [&] { undo.begin(changes_); }, [&] { rollback(undo); }, [&] { undo.end(); });
}

account_result state_machine::create_account(const account& a, uint64_t timestamp) {
  using R = account_result;
  if (a.timestamp != 0) return R::timestamp_must_be_zero;
  if (a.reserved != 0) return R::reserved_field;
  if ((a.flags & ~account_flags_known) != 0) return R::reserved_flag;
  if (a.id == 0) return R::id_must_not_be_zero;
  if (a.id == u128_max) return R::id_must_not_be_int_max;

  if (const account* e = account_find(a.id)) {
    if (a.flags != e->flags) return R::exists_with_different_flags;
    if (a.user_data_128 != e->user_data_128) return R::exists_with_different_user_data_128;
    if (a.user_data_64 != e->user_data_64) return R::exists_with_different_user_data_64;
    if (a.user_data_32 != e->user_data_32) return R::exists_with_different_user_data_32;
    if (a.ledger != e->ledger) return R::exists_with_different_ledger;
    if (a.code != e->code) return R::exists_with_different_code;
    return R::exists;
  }

  if (has(a.flags, account_debits_must_not_exceed_credits) &&
      has(a.flags, account_credits_must_not_exceed_debits)) {
    return R::flags_are_mutually_exclusive;
  }
  if (a.debits_pending != 0) return R::debits_pending_must_be_zero;
  if (a.debits_posted != 0) return R::debits_posted_must_be_zero;
  if (a.credits_pending != 0) return R::credits_pending_must_be_zero;
  if (a.credits_posted != 0) return R::credits_posted_must_be_zero;
  if (a.ledger == 0) return R::ledger_must_not_be_zero;
  if (a.code == 0) return R::code_must_not_be_zero;
  if (!system_event_ && system_ids::reserved(a.id)) return R::id_must_not_be_reserved;

  account stored = a;
  stored.timestamp = timestamp;
  accounts_.insert(account_entry{stored, false});
  changes_.accounts_created.push_back(stored);
  return R::ok;
}

// --------------------------------------------------------------------------- transfers

std::vector<transfer_result> state_machine::create_transfers(const transfer* events, size_t count,
                                                             uint64_t now_ns, const uint8_t* system,
                                                             const uint64_t* stamps) {
  undo_log undo;
  // A system event marked system_unlinked keeps the client's `linked` flag as data: it ends
  // no chain and opens none (the legs of a chain that spanned shards).
  return run_batch<transfer, transfer_result>(
      events, count,
      [&](size_t i) {
        return has(events[i].flags, transfer_linked) && (system == nullptr || system[i] != system_unlinked);
      },
      [&](const transfer& t) {
        system_event_ = system != nullptr && system[&t - events] != 0;
        decided_event_ = system != nullptr && system[&t - events] == system_unlinked;
        const bool expire = system != nullptr && system[&t - events] == system_expire;
        return stamped<transfer_result>(stamps != nullptr ? stamps[&t - events] : 0, now_ns, [&](uint64_t stamp) {
          return expire ? expire_one(t.pending_id, stamp) : create_transfer(t, stamp, undo);
        });
      },
      [&](const transfer& t) {
        transfers_.prefetch(t.id);
        transfer_ids_.prefetch(t.id);
        accounts_.prefetch(t.debit_account_id);
        accounts_.prefetch(t.credit_account_id);
      },
      [&] { undo.begin(changes_); }, [&] { rollback(undo); }, [&] { undo.end(); });
}

namespace {

int popcount16(uint16_t v) { return __builtin_popcount(v); }


} // namespace

transfer_result transfer_compare_existing(const transfer& t, const transfer& e) {
  using R = transfer_result;
  const bool resolves = has(t.flags, transfer_post_pending | transfer_void_pending);
  if (t.flags != e.flags) return R::exists_with_different_flags;
  if (t.pending_id != e.pending_id) return R::exists_with_different_pending_id;
  if (t.timeout != e.timeout) return R::exists_with_different_timeout;
  // A post or void may leave accounts, amount, ledger and code zero to inherit them from
  // the pending transfer; only what the event states is compared.
  if ((!resolves || t.debit_account_id != 0) && t.debit_account_id != e.debit_account_id) {
    return R::exists_with_different_debit_account_id;
  }
  if ((!resolves || t.credit_account_id != 0) && t.credit_account_id != e.credit_account_id) {
    return R::exists_with_different_credit_account_id;
  }
  if (has(t.flags, transfer_balancing_debit | transfer_balancing_credit)) {
    const u128 cap = t.amount == 0 ? u128_max : t.amount;
    if (cap < e.amount) return R::exists_with_different_amount;
  } else if ((!resolves || t.amount != 0) && t.amount != e.amount) {
    return R::exists_with_different_amount;
  }
  if (t.user_data_128 != e.user_data_128) return R::exists_with_different_user_data_128;
  if (t.user_data_64 != e.user_data_64) return R::exists_with_different_user_data_64;
  if (t.user_data_32 != e.user_data_32) return R::exists_with_different_user_data_32;
  if ((!resolves || t.ledger != 0) && t.ledger != e.ledger) return R::exists_with_different_ledger;
  if ((!resolves || t.code != 0) && t.code != e.code) return R::exists_with_different_code;
  return R::exists;
}

transfer_result transfer_check_head(const transfer& t) {
  using R = transfer_result;
  if (t.timestamp != 0) return R::timestamp_must_be_zero;
  if ((t.flags & ~transfer_flags_known) != 0) return R::reserved_flag;
  if (t.id == 0) return R::id_must_not_be_zero;
  if (t.id == u128_max) return R::id_must_not_be_int_max;
  return R::ok;
}

transfer_result transfer_check_resolve(const transfer& t) {
  using R = transfer_result;
  const uint16_t phase = t.flags & (transfer_pending | transfer_post_pending | transfer_void_pending);
  if (popcount16(phase) > 1) return R::flags_are_mutually_exclusive;
  if (has(t.flags, transfer_balancing_debit | transfer_balancing_credit | transfer_closing_debit |
                       transfer_closing_credit)) {
    return R::flags_are_mutually_exclusive;
  }
  if (t.pending_id == 0) return R::pending_id_must_not_be_zero;
  if (t.pending_id == u128_max) return R::pending_id_must_not_be_int_max;
  if (t.pending_id == t.id) return R::pending_id_must_be_different;
  if (t.timeout != 0) return R::timeout_reserved_for_pending_transfer;
  return R::ok;
}

transfer_result transfer_check_fields(const transfer& t) {
  using R = transfer_result;
  const bool pending = has(t.flags, transfer_pending);
  if (t.debit_account_id == 0) return R::debit_account_id_must_not_be_zero;
  if (t.debit_account_id == u128_max) return R::debit_account_id_must_not_be_int_max;
  if (t.credit_account_id == 0) return R::credit_account_id_must_not_be_zero;
  if (t.credit_account_id == u128_max) return R::credit_account_id_must_not_be_int_max;
  if (t.debit_account_id == t.credit_account_id) return R::accounts_must_be_different;
  if (t.pending_id != 0) return R::pending_id_must_be_zero;
  if (!pending && t.timeout != 0) return R::timeout_reserved_for_pending_transfer;
  if (!pending && has(t.flags, transfer_closing_debit | transfer_closing_credit)) {
    return R::closing_transfer_must_be_pending;
  }
  if (t.amount == 0 && !has(t.flags, transfer_balancing_debit | transfer_balancing_credit)) {
    return R::amount_must_not_be_zero;
  }
  if (t.ledger == 0) return R::ledger_must_not_be_zero;
  if (t.code == 0) return R::code_must_not_be_zero;
  return R::ok;
}

// Clients may not write kassa's own transfers nor touch its own accounts; kassa's own events
// (system_event_) may. Checked after every other rule, just before a transfer applies.
transfer_result state_machine::reserved_check(u128 id, u128 debit_account_id,
                                              u128 credit_account_id) const {
  if (system_event_) return transfer_result::ok;
  if (system_ids::reserved(id)) return transfer_result::id_must_not_be_reserved;
  if (system_ids::reserved(debit_account_id) || system_ids::reserved(credit_account_id)) {
    return transfer_result::accounts_must_not_be_reserved;
  }
  return transfer_result::ok;
}

transfer_result state_machine::create_transfer(const transfer& t, uint64_t timestamp,
                                               undo_log& undo) {
  using R = transfer_result;
  if (R r = transfer_check_head(t); r != R::ok) return r;
  if (const transfer* e = transfer_find(t.id)) return transfer_compare_existing(t, *e);

  if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
    if (R r = transfer_check_resolve(t); r != R::ok) return r;
    return post_or_void(t, timestamp, undo);
  }
  const uint16_t phase = t.flags & (transfer_pending | transfer_post_pending | transfer_void_pending);
  if (popcount16(phase) > 1) return R::flags_are_mutually_exclusive;

  const bool pending = has(t.flags, transfer_pending);
  if (R r = transfer_check_fields(t); r != R::ok) return r;
  const bool balancing_debit = has(t.flags, transfer_balancing_debit);
  const bool balancing_credit = has(t.flags, transfer_balancing_credit);

  account_entry* dr_entry = accounts_.find(t.debit_account_id);
  if (dr_entry == nullptr) return R::debit_account_not_found;
  account_entry* cr_entry = accounts_.find(t.credit_account_id);
  if (cr_entry == nullptr) return R::credit_account_not_found;
  account& dr = dr_entry->value;
  account& cr = cr_entry->value;
  if (dr.ledger != cr.ledger) return R::accounts_must_have_the_same_ledger;
  if (t.ledger != dr.ledger) return R::transfer_must_have_the_same_ledger_as_accounts;
  if (has(dr.flags, account_closed)) return R::debit_account_already_closed;
  if (has(cr.flags, account_closed)) return R::credit_account_already_closed;

  // Balancing transfers move at most `amount` (zero: no cap), and no more than keeps the
  // balancing side's debits within its credits (or credits within its debits).
  u128 amount = t.amount;
  transfer_result balancing_exhausted = R::ok;
  // A leg of a balancing transfer the directory decided moves the amount it decided: its
  // accounts here are one side and a clearing account, which must not clamp it again.
  if ((balancing_debit || balancing_credit) && !decided_event_) {
    u128 cap = t.amount == 0 ? u128_max : t.amount;
    if (balancing_debit) {
      u128 held = dr.debits_posted + dr.debits_pending; // cannot overflow: checked on every write
      u128 available = dr.credits_posted > held ? dr.credits_posted - held : 0;
      if (available == 0) balancing_exhausted = R::exceeds_credits;
      cap = std::min(cap, available);
    }
    if (balancing_credit) {
      u128 held = cr.credits_posted + cr.credits_pending;
      u128 available = cr.debits_posted > held ? cr.debits_posted - held : 0;
      if (available == 0 && balancing_exhausted == R::ok) balancing_exhausted = R::exceeds_debits;
      cap = std::min(cap, available);
    }
    amount = cap;
  }

  if (pending) {
    if (add_overflows(dr.debits_pending, amount)) return R::overflows_debits_pending;
    if (add_overflows(cr.credits_pending, amount)) return R::overflows_credits_pending;
  } else {
    if (add_overflows(dr.debits_posted, amount)) return R::overflows_debits_posted;
    if (add_overflows(cr.credits_posted, amount)) return R::overflows_credits_posted;
  }
  if (sum3_overflows(dr.debits_pending, dr.debits_posted, amount)) return R::overflows_debits;
  if (sum3_overflows(cr.credits_pending, cr.credits_posted, amount)) return R::overflows_credits;
  uint64_t expires_at_ns = 0;
  if (pending && t.timeout != 0) {
    const uint64_t timeout_ns = uint64_t{t.timeout} * ns_per_s; // < 2^62: cannot overflow
    if (timestamp > UINT64_MAX - timeout_ns) return R::overflows_timeout;
    expires_at_ns = timestamp + timeout_ns;
  }
  if (balancing_exhausted != R::ok) return balancing_exhausted;
  if (has(dr.flags, account_debits_must_not_exceed_credits) &&
      dr.debits_pending + dr.debits_posted + amount > dr.credits_posted) {
    return R::exceeds_credits;
  }
  if (has(cr.flags, account_credits_must_not_exceed_debits) &&
      cr.credits_pending + cr.credits_posted + amount > cr.debits_posted) {
    return R::exceeds_debits;
  }
  if (transfer_result r = reserved_check(t.id, dr.id, cr.id); r != R::ok) return r;

  // Every check passed: apply.
  account_touch(dr.id, undo.active ? &undo : nullptr);
  account_touch(cr.id, undo.active ? &undo : nullptr);
  if (pending) {
    dr.debits_pending += amount;
    cr.credits_pending += amount;
  } else {
    dr.debits_posted += amount;
    cr.credits_posted += amount;
  }
  // A leg across shards keeps the client's closing flags as data: a clearing account is
  // never closed.
  if (has(t.flags, transfer_closing_debit) && !system_ids::is_clearing(dr.id)) dr.flags |= account_closed;
  if (has(t.flags, transfer_closing_credit) && !system_ids::is_clearing(cr.id)) cr.flags |= account_closed;

  transfer stored = t;
  stored.amount = amount;
  stored.timestamp = timestamp;
  transfers_.insert(stored);
  transfer_ids_.insert(stored.id);
  changes_.transfers_created.push_back(stored);
  if (undo.active) undo.transfers_created.push_back(stored.id);
  if (pending) pending_set(stored.id, {pending_status::pending, expires_at_ns}, undo.active ? &undo : nullptr);
  history_record(dr, timestamp);
  history_record(cr, timestamp);
  return R::ok;
}

transfer_result state_machine::post_or_void(const transfer& t, uint64_t timestamp, undo_log& undo) {
  using R = transfer_result;
  const bool post = has(t.flags, transfer_post_pending);
  const transfer* p = transfer_find(t.pending_id);
  if (p == nullptr) return R::pending_transfer_not_found;
  if (!has(p->flags, transfer_pending)) return R::pending_transfer_not_pending;
  if (t.debit_account_id != 0 && t.debit_account_id != p->debit_account_id) {
    return R::pending_transfer_has_different_debit_account_id;
  }
  if (t.credit_account_id != 0 && t.credit_account_id != p->credit_account_id) {
    return R::pending_transfer_has_different_credit_account_id;
  }
  if (t.ledger != 0 && t.ledger != p->ledger) return R::pending_transfer_has_different_ledger;
  if (t.code != 0 && t.code != p->code) return R::pending_transfer_has_different_code;
  u128 amount = p->amount;
  if (post) {
    if (t.amount > p->amount) return R::exceeds_pending_transfer_amount;
    if (t.amount != 0) amount = t.amount; // zero posts the full pending amount
  } else if (t.amount != 0 && t.amount != p->amount) {
    return R::pending_transfer_has_different_amount;
  }
  const pending_state state = pending_find(p->id);
  KASSA_ASSERT(state.status != pending_status::none);
  if (state.status == pending_status::posted) return R::pending_transfer_already_posted;
  if (state.status == pending_status::voided) return R::pending_transfer_already_voided;
  if (state.status == pending_status::expired) return R::pending_transfer_expired;
  // A post or void the directory decided was judged against the deadline at its clock.
  if (state.expires_at_ns != 0 && state.expires_at_ns <= timestamp && !decided_event_) {
    return R::pending_transfer_expired;
  }

  account& dr = account_at(p->debit_account_id);
  account& cr = account_at(p->credit_account_id);
  if (post) {
    if (has(dr.flags, account_closed) && !has(p->flags, transfer_closing_debit)) {
      return R::debit_account_already_closed;
    }
    if (has(cr.flags, account_closed) && !has(p->flags, transfer_closing_credit)) {
      return R::credit_account_already_closed;
    }
    if (add_overflows(dr.debits_posted, amount)) return R::overflows_debits_posted;
    if (add_overflows(cr.credits_posted, amount)) return R::overflows_credits_posted;
  }
  KASSA_ASSERT(dr.debits_pending >= p->amount && cr.credits_pending >= p->amount);
  if (transfer_result r = reserved_check(t.id, dr.id, cr.id); r != R::ok) return r;

  const transfer pending_copy = *p; // `p` dangles once transfers_ grows
  account_touch(dr.id, undo.active ? &undo : nullptr);
  account_touch(cr.id, undo.active ? &undo : nullptr);
  dr.debits_pending -= pending_copy.amount;
  cr.credits_pending -= pending_copy.amount;
  if (post) {
    dr.debits_posted += amount;
    cr.credits_posted += amount;
  } else {
    if (has(pending_copy.flags, transfer_closing_debit)) dr.flags &= ~account_closed;
    if (has(pending_copy.flags, transfer_closing_credit)) cr.flags &= ~account_closed;
  }

  transfer stored = t;
  stored.debit_account_id = pending_copy.debit_account_id;
  stored.credit_account_id = pending_copy.credit_account_id;
  stored.ledger = pending_copy.ledger;
  stored.code = pending_copy.code;
  stored.amount = amount;
  stored.timestamp = timestamp;
  transfers_.insert(stored);
  transfer_ids_.insert(stored.id);
  changes_.transfers_created.push_back(stored);
  if (undo.active) undo.transfers_created.push_back(stored.id);
  pending_set(pending_copy.id, {post ? pending_status::posted : pending_status::voided, 0},
              undo.active ? &undo : nullptr);
  history_record(dr, timestamp);
  history_record(cr, timestamp);
  return R::ok;
}

// ----------------------------------------------------------------------------- expiry

size_t state_machine::expire_pending(uint64_t now_ns) {
  size_t expired = 0;
  while (!expiry_.empty() && expiry_.begin()->first <= now_ns) {
    const transfer* found = transfers_.find(expiry_.begin()->second);
    KASSA_ASSERT(found != nullptr);
    pending_release(*found, timestamp_next(now_ns)); // the expiry's own stamp
    ++expired;
  }
  return expired;
}

// Releases the hold of pending transfer `p` as its deadline does.
void state_machine::pending_release(const transfer& found, uint64_t timestamp) {
  const transfer p = found; // `found` may dangle once the maps change
  account& dr = account_at(p.debit_account_id);
  account& cr = account_at(p.credit_account_id);
  KASSA_ASSERT(dr.debits_pending >= p.amount && cr.credits_pending >= p.amount);
  account_touch(dr.id, nullptr);
  account_touch(cr.id, nullptr);
  dr.debits_pending -= p.amount;
  cr.credits_pending -= p.amount;
  if (has(p.flags, transfer_closing_debit)) dr.flags &= ~account_closed;
  if (has(p.flags, transfer_closing_credit)) cr.flags &= ~account_closed;
  pending_set(p.id, {pending_status::expired, 0}, nullptr); // erases the expiry entry
  history_record(dr, timestamp);
  history_record(cr, timestamp);
}

transfer_result state_machine::expire_one(u128 pending_id, uint64_t timestamp) {
  using R = transfer_result;
  const transfer* p = transfer_find(pending_id);
  if (p == nullptr) return R::pending_transfer_not_found;
  if (!has(p->flags, transfer_pending)) return R::pending_transfer_not_pending;
  const pending_state state = pending_find(pending_id);
  if (state.status == pending_status::expired) return R::ok; // applied again (recovery)
  if (state.status == pending_status::posted) return R::pending_transfer_already_posted;
  if (state.status == pending_status::voided) return R::pending_transfer_already_voided;
  pending_release(*p, timestamp);
  return R::ok;
}

std::vector<u128> state_machine::pending_due(uint64_t now_ns, size_t limit, uint64_t& next_ns) const {
  std::vector<u128> due;
  next_ns = 0;
  for (const auto& [deadline, id] : expiry_) {
    if (deadline > now_ns || due.size() == limit) {
      next_ns = deadline;
      break;
    }
    due.push_back(id);
  }
  return due;
}

uint64_t state_machine::pending_deadline_next_ns() const {
  return expiry_.empty() ? 0 : expiry_.begin()->first;
}

// ------------------------------------------------------------------------ bookkeeping

account& state_machine::account_at(u128 id) {
  account_entry* e = accounts_.find(id);
  KASSA_ASSERT(e != nullptr);
  return e->value;
}

void state_machine::account_touch(u128 id, undo_log* undo) {
  account_entry* e = accounts_.find(id);
  KASSA_ASSERT(e != nullptr);
  if (undo != nullptr) {
    bool seen = std::any_of(undo->accounts_before.begin(), undo->accounts_before.end(),
                            [&](const account& a) { return a.id == id; });
    if (!seen) undo->accounts_before.push_back(e->value);
  }
  if (!e->updated) {
    e->updated = true;
    changes_.accounts_updated.push_back(id);
  }
}

void state_machine::history_record(const account& a, uint64_t timestamp) {
  if (!has(a.flags, account_history)) return;
  changes_.history.push_back(history_entry{
      a.id, account_balance{a.debits_pending, a.debits_posted, a.credits_pending,
                            a.credits_posted, timestamp, 0}});
}

namespace {

void expiry_erase(std::multimap<uint64_t, u128>& expiry, uint64_t deadline, u128 id) {
  auto [lo, hi] = expiry.equal_range(deadline);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == id) {
      expiry.erase(it);
      return;
    }
  }
  KASSA_ASSERT(false && "expiry index lost a pending transfer");
}

} // namespace

void state_machine::pending_set(u128 id, pending_state state, undo_log* undo) {
  auto it = pending_.find(id);
  const pending_state before = it == pending_.end() ? pending_state{} : it->second;
  if (undo != nullptr) undo->pending_before.emplace_back(id, before);
  if (before.status == pending_status::pending && before.expires_at_ns != 0) {
    expiry_erase(expiry_, before.expires_at_ns, id);
  }
  state.changed_at = timestamp_last_; // the stamp of the event making this change
  pending_[id] = state;
  if (state.status == pending_status::pending && state.expires_at_ns != 0) {
    expiry_.emplace(state.expires_at_ns, id);
  }
  changes_.pending_updates.push_back(pending_update{id, state.status, state.expires_at_ns, state.changed_at});
}

void state_machine::rollback(undo_log& undo) {
  if (!undo.active) return; // nothing was applied in this chain
  for (auto it = undo.pending_before.rbegin(); it != undo.pending_before.rend(); ++it) {
    const auto& [id, before] = *it;
    const pending_state now = pending_.at(id);
    if (now.status == pending_status::pending && now.expires_at_ns != 0) {
      expiry_erase(expiry_, now.expires_at_ns, id);
    }
    if (before.status == pending_status::none) {
      pending_.erase(id);
    } else {
      pending_[id] = before;
      if (before.status == pending_status::pending && before.expires_at_ns != 0) {
        expiry_.emplace(before.expires_at_ns, id);
      }
    }
  }
  for (const account& a : undo.accounts_before) account_at(a.id) = a;
  for (u128 id : undo.accounts_created) accounts_.erase(id);
  for (u128 id : undo.transfers_created) transfers_.erase(id);
  for (size_t i = undo.changes_accounts_updated; i < changes_.accounts_updated.size(); ++i) {
    accounts_.find(changes_.accounts_updated[i])->updated = false;
  }
  changes_.accounts_created.resize(undo.changes_accounts_created);
  changes_.accounts_updated.resize(undo.changes_accounts_updated);
  changes_.transfers_created.resize(undo.changes_transfers_created);
  changes_.pending_updates.resize(undo.changes_pending_updates);
  changes_.history.resize(undo.changes_history);
  undo.active = false;
}

// ------------------------------------------------------------------------------ reads

const account* state_machine::account_find(u128 id) const {
  if (id == 0) return nullptr;
  const account_entry* e = accounts_.find(id);
  return e == nullptr ? nullptr : &e->value;
}

const transfer* state_machine::transfer_find(u128 id) const {
  return id == 0 ? nullptr : transfers_.find(id);
}

pending_state state_machine::pending_find(u128 id) const {
  auto it = pending_.find(id);
  return it == pending_.end() ? pending_state{} : it->second;
}

// ---------------------------------------------------------------------------- loading

void state_machine::account_load(const account& a) {
  KASSA_ASSERT(a.id != 0);
  accounts_.upsert(account_entry{a, false});
}

void state_machine::transfer_load(const transfer& t, pending_state state) {
  KASSA_ASSERT(t.id != 0);
  transfer_ids_.insert(t.id);
  if (!transfers_.insert(t).second) return; // resident copies are never older than disk
  if (state.status == pending_status::none) return;
  pending_[t.id] = state;
  if (state.status == pending_status::pending && state.expires_at_ns != 0) {
    expiry_.emplace(state.expires_at_ns, t.id);
  }
}

std::vector<u128> state_machine::transfer_ids_to_prefetch(const transfer* events, size_t count) const {
  std::vector<u128> ids;
  // The fingerprint table outgrows the caches as the ledger grows: start loading the slots a
  // few events ahead, so that the misses overlap instead of queueing.
  constexpr size_t ahead = 8;
  for (size_t i = 0; i < std::min(count, ahead); ++i) transfer_ids_.prefetch(events[i].id);
  for (size_t i = 0; i < count; ++i) {
    if (i + ahead < count) transfer_ids_.prefetch(events[i + ahead].id);
    const transfer& t = events[i];
    auto stored_not_resident = [&](u128 id) {
      return id != 0 && id != u128_max && transfer_ids_.maybe_contains(id) && !transfers_.contains(id);
    };
    if (stored_not_resident(t.id)) ids.push_back(t.id);
    if (has(t.flags, transfer_post_pending | transfer_void_pending) &&
        stored_not_resident(t.pending_id)) {
      ids.push_back(t.pending_id);
    }
  }
  return ids;
}

void state_machine::transfers_evict(size_t count_max, uint64_t timestamp_durable) {
  if (transfers_.size() <= count_max) return;
  // Evict a quarter more than needed, so that the scan runs once per many batches.
  transfers_.erase_while_over(count_max - count_max / 4, [&](const transfer& t) {
    if (t.timestamp > timestamp_durable) return false;
    if (!has(t.flags, transfer_pending)) return true; // only pending transfers have a state
    auto p = pending_.find(t.id);
    if (p == pending_.end()) return true;
    if (p->second.status == pending_status::pending || p->second.changed_at > timestamp_durable) {
      return false;
    }
    pending_.erase(p);
    return true;
  });
}

change_set state_machine::changes_take() {
  change_set taken = std::move(changes_);
  changes_ = change_set{};
  changes_.timestamp_last = timestamp_last_;
  taken.account_rows.reserve(taken.accounts_updated.size());
  for (u128 id : taken.accounts_updated) {
    account_entry* e = accounts_.find(id);
    e->updated = false;
    taken.account_rows.push_back(e->value);
  }
  return taken;
}

} // namespace kassa::ledger
