// The round planner (ledger/planner.hpp): pure code, no CAF, no I/O, no clock.
#include "ledger/planner.hpp"

#include <algorithm>

#include "ledger/system_ids.hpp"
#include "primitives/assert.hpp"

namespace kassa::ledger {

namespace sid = system_ids;

uint32_t shard_of(u128 account_id, uint32_t shards) {
  if (shards <= 1) return 0;
  if (sid::is_clearing(account_id)) return sid::clearing_from(account_id) % shards;
  // The payment core's accounts name their shard (ledger/payments/ids.hpp).
  if (sid::kind_of(account_id) == sid::kind::payment_account)
    return static_cast<uint32_t>((u128_lo(account_id) >> 32) & 0xFFFF) % shards;
  // The high bits of the hash: the shard's own tables index by the low bits, and a shard that
  // only ever saw ids with the same low bit would use half of its table.
  return static_cast<uint32_t>((id_hash(account_id) >> 40) % shards);
}

namespace planner {

uint64_t system_sequence_next(state& st, uint64_t now_ns) {
  st.system_sequence = std::max(now_ns, st.system_sequence + 1);
  return st.system_sequence;
}

namespace {

bool is_clearing(u128 id) { return sid::is_clearing(id); }

} // namespace

// The account a client named: a sub-account stands for the split account it belongs to.
u128 as_written(const state& st, u128 account_id) {
  auto it = st.sub_parent.find(account_id);
  return it == st.sub_parent.end() ? account_id : it->second;
}

bool view_of(const state& st, const held& h, view& out) {
  const probe_entry* debit_leg = nullptr;
  const probe_entry* credit_leg = nullptr;
  const probe_entry* local = nullptr;
  for (const auto& [shard, e] : h.entries) {
    if (is_clearing(e.transfer.credit_account_id)) debit_leg = &e;
    else if (is_clearing(e.transfer.debit_account_id)) credit_leg = &e;
    else local = &e;
  }
  if (debit_leg != nullptr || credit_leg != nullptr) {
    if (debit_leg == nullptr || credit_leg == nullptr) return false;
    out.t = debit_leg->transfer;
    out.t.credit_account_id = credit_leg->transfer.credit_account_id;
    out.two_phase = sid::is_two_phase_clearing(debit_leg->transfer.credit_account_id);
    // Pending legs through the plain clearing pair (written before format version 2 of the
    // saga log) carry the saga's flags (pending, linked within their shard), not the
    // client's; every other leg carries the client's.
    if (!out.two_phase && has(out.t.flags, transfer_pending)) {
      out.t.flags &= static_cast<uint16_t>(~(transfer_pending | transfer_linked));
    }
    out.status = debit_leg->status;
    out.expires_at_ns = debit_leg->expires_at_ns;
    // The directory expires both legs one after the other: one expired leg is enough.
    if (out.two_phase && credit_leg->status == pending_status::expired) out.status = pending_status::expired;
    out.saga = true;
  } else if (local != nullptr) {
    out.t = local->transfer;
    out.status = local->status;
    out.expires_at_ns = local->expires_at_ns;
    out.saga = false;
  } else {
    return false;
  }
  out.t.credit_account_id = as_written(st, out.t.credit_account_id);
  return true;
}

// A transfer across shards exists for clients once both legs stand: posted legs (since format
// version 2 of the saga log), or pending legs that their saga posted (before it).
bool visible(const view& v) {
  return !v.saga || v.two_phase || v.status == pending_status::posted || v.status == pending_status::none;
}

// What an event whose id the shards already hold returns.
uint32_t existing_result(const transfer& event, const view& v) {
  using R = transfer_result;
  if (v.two_phase) return static_cast<uint32_t>(transfer_compare_existing(event, v.t));
  if (v.saga) {
    // The legs were pending and then posted, or voided when the saga aborted.
    if (v.status == pending_status::voided || v.status == pending_status::expired) {
      return static_cast<uint32_t>(R::id_already_failed);
    }
    transfer stored = v.t;
    if (v.status != pending_status::none) { // pending legs kept no `linked` of the client's
      stored.flags = static_cast<uint16_t>((stored.flags & ~transfer_linked) | (event.flags & transfer_linked));
    }
    return static_cast<uint32_t>(transfer_compare_existing(event, stored));
  }
  R r = transfer_compare_existing(event, v.t);
  // A member of a linked chain that spanned shards is stored pending (and posted by its saga).
  if (r == R::exists_with_different_flags && has(v.t.flags, transfer_pending) &&
      !has(event.flags, transfer_pending) &&
      ((v.t.flags ^ event.flags) & ~(transfer_pending | transfer_linked)) == 0 &&
      v.status != pending_status::pending) {
    if (v.status != pending_status::posted) return static_cast<uint32_t>(R::id_already_failed);
    transfer stored = v.t;
    stored.flags = event.flags;
    r = transfer_compare_existing(event, stored);
  }
  return static_cast<uint32_t>(r);
}

namespace {

// The checks of a plain transfer that need no account, in the state machine's order (a plain
// transfer has no phase flags to check between the two).
transfer_result fields_check(const transfer& t) {
  if (transfer_result r = transfer_check_head(t); r != transfer_result::ok) return r;
  return transfer_check_fields(t);
}

void fail_chain(request& w, uint32_t first, uint32_t last, uint32_t failed_at, uint32_t code) {
  for (uint32_t i = first; i <= last; ++i) {
    w.results[i] = i == failed_at ? code : static_cast<uint32_t>(transfer_result::linked_event_failed);
  }
}

const account* account_in(const round& r, u128 id) {
  auto it = r.accounts.find(id);
  return it == r.accounts.end() ? nullptr : &it->second;
}

} // namespace

// A sub-account as kassa creates it.
account sub_account_row(u128 parent, uint32_t index, uint32_t ledger, bool history) {
  account a{};
  a.id = sid::sub(parent, index);
  a.user_data_128 = parent;
  a.user_data_32 = index;
  a.ledger = ledger;
  a.code = sid::sub_code;
  a.flags = account_debits_must_not_exceed_credits; // a sweep can never overdraw it
  // A split account's balance history adds up its sub-accounts' (docs/sharding.md).
  if (history) a.flags |= account_history;
  return a;
}

namespace {

// The sub-account a plain credit to a split hot account lands on, or 0 when it lands on the
// account itself.
u128 hot_target(state& st, round& r, const transfer& t) {
  auto it = st.hot.find(t.credit_account_id);
  if (it == st.hot.end() || it->second.sub_accounts == 0) return 0;
  hot_state& h = it->second;
  // The account as the round left it so far (an earlier event may have closed or opened it).
  const account* parent = r.model->account_find(t.credit_account_id);
  if (parent == nullptr || has(parent->flags, account_credits_must_not_exceed_debits | account_closed)) {
    return 0; // a limit on credits can only be checked on one account
  }
  // A sub-account in the debit side's shard keeps the transfer inside one shard (no saga);
  // among those (or among all, when none is there) the transfer id picks one.
  const uint32_t n = st.shards;
  if (h.by_shard.size() != n) {
    h.by_shard.assign(n, {});
    for (uint32_t i = 0; i < h.sub_accounts; ++i) {
      h.by_shard[shard_of(sid::sub(t.credit_account_id, i), n)].push_back(i);
    }
  }
  const std::vector<uint32_t>& local = h.by_shard[shard_of(t.debit_account_id, n)];
  const uint64_t pick = id_hash(t.id) >> 16;
  const uint32_t index = !local.empty() ? local[pick % local.size()] : static_cast<uint32_t>(pick % h.sub_accounts);
  if (h.created.size() < h.sub_accounts) h.created.resize(h.sub_accounts, false);
  if (h.confirmed.size() < h.sub_accounts) h.confirmed.resize(h.sub_accounts, false);
  h.ledger = parent->ledger;
  h.history = has(parent->flags, account_history);
  const u128 sub = sid::sub(t.credit_account_id, index);
  if (!h.confirmed[index] && r.subs_planned.insert(sub).second) {
    h.created[index] = true; // created in this round, before the transfers of its shard
    r.subs_to_create.emplace_back(t.credit_account_id, index);
  }
  // The round's model knows every sub-account a credit may land on: the probe read those
  // that exist; one created in this round starts empty.
  if (r.model->account_find(sub) == nullptr) r.model->account_load(sub_account_row(t.credit_account_id, index, h.ledger, h.history));
  return sub;
}

void count_credit(state& st, round& r, u128 account_id) {
  if (st.adaptive_window_ns == 0 || st.adaptive_credits_min == 0) return;
  const uint64_t now = r.now;
  if (now - st.window_start_ns > st.adaptive_window_ns || st.credits_seen.size() > (1u << 20)) {
    st.credits_seen.clear();
    st.window_start_ns = now;
  }
  uint32_t& n = st.credits_seen[account_id];
  if (++n != st.adaptive_credits_min) return;
  hot_state& h = st.hot[account_id];
  if (h.sub_accounts != 0) return;
  h.sub_accounts = std::max<uint32_t>(2, std::min<uint32_t>(256, st.adaptive_sub_accounts));
  r.notes.push_back({false, "hot account split",
                     "account=" + to_string_u128(account_id) + " sub_accounts=" + std::to_string(h.sub_accounts)});
}

// `system`: 0 for a client's event, else system_own or system_unlinked (state_machine.hpp).
void add_transfer(round& r, uint32_t shard, const transfer& t, uint8_t system, origin o) {
  shard_batch& b = r.batches[shard];
  b.transfers.push_back(t);
  b.transfers_system.push_back(system);
  b.transfers_origin.push_back(o);
  // The legs of one transfer are added one after the other, each to its own shard: they share
  // its place, and so its timestamp (a transfer across shards has one). Anything else is an
  // event of its own: a shard never gets one stamp twice.
  const bool leg = r.events_planned != 0 && t.id == r.last_id && t.pending_id == r.last_pending_id &&
                   std::find(r.last_shards.begin(), r.last_shards.end(), shard) == r.last_shards.end();
  if (!leg) {
    ++r.events_planned;
    r.last_id = t.id;
    r.last_pending_id = t.pending_id;
    r.last_shards.clear();
  }
  r.last_shards.push_back(shard);
  b.transfers_stamp.push_back(r.events_planned);
}

void add_account(round& r, uint32_t shard, const account& a, uint8_t system, origin o) {
  shard_batch& b = r.batches[shard];
  b.accounts.push_back(a);
  b.accounts_system.push_back(system);
  b.accounts_origin.push_back(o);
}

// One clock for every shard: the round's events are stamped above every timestamp a shard
// holds, accounts first (each shard takes its accounts before its transfers), then the
// transfers in the order they were planned; the legs of a transfer across shards share one
// stamp. A shard keeps the stamps as long as they are above its own latest
// (state_machine::create_transfers).
void stamp_round(state& st, round& r, uint64_t clock_ns) {
  uint64_t next = std::max(clock_ns, st.stamp_last + 1);
  for (shard_batch& b : r.batches) {
    b.accounts_stamp.clear();
    for (size_t k = 0; k < b.accounts.size(); ++k) b.accounts_stamp.push_back(next++);
  }
  const uint64_t base = next - 1;
  for (shard_batch& b : r.batches) {
    for (uint64_t& stamp : b.transfers_stamp) stamp += base;
  }
  st.stamp_last = base + r.events_planned;
}


void ensure_clearing(state& st, round& r, uint32_t from, uint32_t to, uint32_t ledger,
                     bool two_phase) {
  const u128 id = sid::clearing(from, to, ledger, two_phase);
  if (st.clearing_known.count(id) != 0) return;
  st.clearing_known.insert(id); // forgotten again if the round fails
  account a{};
  a.id = id;
  a.ledger = ledger;
  a.code = sid::clearing_code;
  add_account(r, from, a, system_own, origin{nullptr, 0});
}

// Adds a decided transfer to the round: to its shard, or, across shards (debit side in shard
// `a`, credit side in `b`), as two legs through the clearing accounts of the pair (one in each
// shard, both with the transfer's id). A pending transfer's legs, and its post's or void's,
// go through the pair of two-phase clearing accounts. Returns whether it crossed shards.
bool add_decided(state& st, round& r, const transfer& t, uint8_t mark, origin o, uint32_t a,
                 uint32_t b) {
  if (a == b) {
    add_transfer(r, a, t, mark, o);
    return false;
  }
  transfer debit_leg = t;
  transfer credit_leg = t;
  uint32_t ledger = t.ledger;
  bool two_phase = has(t.flags, transfer_pending);
  if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
    // Each leg resolves its own pending leg: it names that leg's accounts.
    const transfer* p = r.model->transfer_find(t.pending_id);
    KASSA_ASSERT(p != nullptr);
    ledger = p->ledger;
    two_phase = true;
    debit_leg.debit_account_id = p->debit_account_id;
    credit_leg.credit_account_id = p->credit_account_id;
  }
  ensure_clearing(st, r, a, b, ledger, two_phase);
  ensure_clearing(st, r, b, a, ledger, two_phase);
  debit_leg.credit_account_id = sid::clearing(a, b, ledger, two_phase);
  credit_leg.debit_account_id = sid::clearing(b, a, ledger, two_phase);
  add_transfer(r, a, debit_leg, mark, o);
  add_transfer(r, b, credit_leg, mark, o);
  return true;
}

} // namespace

// What the shards hold of a pending id the round probed, or null.
const held* pending_held(const round& r, u128 pending_id) {
  auto it = pending_id != 0 ? r.probed.find(pending_id) : r.probed.end();
  return it == r.probed.end() || !it->second.found() ? nullptr : &it->second;
}

namespace {

// The shards of a transfer across shards: its debit leg's and its credit leg's.
void leg_shards(const held& h, uint32_t& debit_shard, uint32_t& credit_shard) {
  for (const auto& [shard, e] : h.entries) {
    if (is_clearing(e.transfer.credit_account_id)) debit_shard = shard;
    else if (is_clearing(e.transfer.debit_account_id)) credit_shard = shard;
  }
}

// The round's model learns a transfer a post, void or expiry names, as a client sees it, with
// its pending status and deadline (once per round: what the round did to it since stays).
// Its accounts were read with the round's (round_start asks for them).
void model_learn_pending(round& r, const view& v) {
  if (r.model->transfer_find(v.t.id) != nullptr) return;
  if (r.model->account_find(v.t.debit_account_id) == nullptr || r.model->account_find(v.t.credit_account_id) == nullptr) {
    return; // not read: the model answers as if it did not exist (never the case, see round_start)
  }
  r.model->transfer_load(v.t, pending_state{v.status, v.status == pending_status::pending ? v.expires_at_ns : 0, 0});
}

// Before a split account is debited, what its sub-accounts hold moves into it (kassa's own
// transfers, as the sweeper writes them), so that its balance limit is judged on all it
// holds, as for one account. `event` is the client event that needs it.
void gather(state& st, round& r, request& w, uint32_t event, u128 parent) {
  const hot_state& h = st.hot[parent];
  // A closed account takes no credit, and its sub-accounts hold nothing: they were gathered
  // before it closed (see plan_transfers). It may reopen later in the round (a void), and is
  // gathered then.
  if (const account* p = r.model->account_find(parent); p == nullptr || has(p->flags, account_closed)) return;
  r.gathered.insert(parent);
  for (uint32_t x = 0; x < h.created.size(); ++x) {
    if (!h.created[x]) continue;
    const account* a = r.model->account_find(sid::sub(parent, x));
    if (a == nullptr) continue;
    const u128 held = a->debits_posted + a->debits_pending; // cannot overflow: checked on write
    if (a->credits_posted <= held) continue;
    transfer t{};
    t.id = sid::transfer(system_sequence_next(st, r.now));
    t.debit_account_id = a->id;
    t.credit_account_id = parent;
    t.amount = a->credits_posted - held;
    t.ledger = a->ledger;
    t.code = sid::sub_code;
    const uint8_t own = system_own;
    const transfer_result result = r.model->create_transfers(&t, 1, r.now, &own).at(0);
    if (result != transfer_result::ok) {
      r.notes.push_back({true, "a sub-account could not be gathered into its account",
                         "sub=" + to_string_u128(a->id) + " code=" + std::string(name(result))});
      continue;
    }
    const int saga_index = static_cast<int>(r.sagas.size());
    const uint32_t n = st.shards;
    if (add_decided(st, r, t, own, origin{&w, event, saga_index}, shard_of(t.debit_account_id, n),
                    shard_of(t.credit_account_id, n))) {
      r.sagas.push_back(saga_plan{&w, event, event});
    }
  }
}

} // namespace

// The last event of the unit (an account or a linked chain) that starts at `i`.
size_t account_unit_end(const std::vector<account>& ev, size_t i) {
  size_t j = i;
  while (j + 1 < ev.size() && has(ev[j].flags, account_linked)) ++j;
  return j;
}

bool account_unit_spans(const std::vector<account>& ev, size_t i, size_t j, uint32_t shards) {
  for (size_t k = i + 1; k <= j; ++k) {
    if (shard_of(ev[k].id, shards) != shard_of(ev[i].id, shards)) return true;
  }
  return false;
}


namespace {

// Plans the account events of `w` from its cursor. A unit within one shard goes to it as it
// came, and the shard decides it. A linked chain whose accounts live in different shards is
// decided by the round's model as one shard would decide it (all or nothing, with its codes):
// a refused chain is written nowhere; an applied one goes to the shards account by account,
// `linked` kept as data (system_unlinked), from the round's redo record like a saga. Such a
// chain waits for the next round when an account of it is created earlier in this round.
void plan_accounts(state& st, round& r, request& w) {
  const uint32_t n = st.shards;
  const auto& ev = w.account_events;
  size_t i = w.cursor;
  std::vector<uint8_t> marks;
  while (i < ev.size()) {
    const size_t j = account_unit_end(ev, i);
    if (!account_unit_spans(ev, i, j, n)) {
      for (size_t k = i; k <= j; ++k) {
        add_account(r, shard_of(ev[i].id, n), ev[k], !w.system.empty() && w.system[k] != 0 ? system_own : 0,
                    origin{&w, static_cast<uint32_t>(k)});
        r.accounts_created.insert(ev[k].id);
      }
      i = j + 1;
      continue;
    }
    bool again = false;
    for (size_t k = i; k <= j; ++k) again = again || r.accounts_created.count(ev[k].id) != 0;
    if (again) break; // never the round's first unit: something before it was planned
    marks.assign(j - i + 1, 0);
    for (size_t k = i; k <= j; ++k) marks[k - i] = !w.system.empty() && w.system[k] != 0 ? system_own : 0;
    const auto decided = r.model->create_accounts(&ev[i], j - i + 1, r.now, marks.data());
    bool accepted = true;
    for (size_t k = i; k <= j; ++k) {
      w.results[k] = static_cast<uint32_t>(decided[k - i]);
      accepted = accepted && decided[k - i] == account_result::ok;
      r.accounts_created.insert(ev[k].id);
    }
    if (accepted) {
      const int saga_index = static_cast<int>(r.sagas.size());
      r.sagas.push_back(saga_plan{&w, static_cast<uint32_t>(i), static_cast<uint32_t>(j)});
      for (size_t k = i; k <= j; ++k) {
        add_account(r, shard_of(ev[k].id, n), ev[k], system_unlinked, origin{&w, static_cast<uint32_t>(k), saga_index});
      }
    }
    i = j + 1;
  }
  w.cursor = i;
}


void plan_expiry(state& st, round& r, request& w, uint32_t event);

// One unit of a request's transfer events (an event, or a linked chain ev[i..j]) as the
// planner works on it: each event as it will be applied, whether it is kassa's own, its
// shards. Reused from unit to unit.
struct unit_scratch {
  std::vector<transfer> eff;
  std::vector<uint8_t> sys;
  std::vector<uint32_t> dr_shard, cr_shard;
  std::vector<u128> debited_split;  // split accounts the unit judges (see unit_effective)
  std::vector<u128> closed_by_unit; // accounts a closing transfer of the unit closes
  bool resolves = false;            // the unit posts or voids
  bool spans = false;               // its events apply in more than one shard
};

// An id planned twice in one round: the later unit waits for the next round, where it sees
// what the earlier one did. So does a unit naming an account created earlier in the round
// that is not in the round's plan as an account yet.
bool unit_again(const round& r, const std::vector<transfer>& ev, size_t i, size_t j) {
  for (size_t k = i; k <= j; ++k) {
    if (r.seen.count(ev[k].id) != 0 || (ev[k].pending_id != 0 && r.seen.count(ev[k].pending_id) != 0)) return true;
    for (u128 a : {ev[k].debit_account_id, ev[k].credit_account_id}) {
      if (r.accounts_created.count(a) != 0 && account_in(r, a) == nullptr) return true;
    }
  }
  return false;
}

// Each event of the unit as it will be applied: kassa's own events as they are; a client's
// plain credit to a split hot account lands on one of its sub-accounts (an account may become
// split by this unit's credits: they are counted first).
void unit_effective(state& st, round& r, const request& w, size_t i, size_t j, unit_scratch& u) {
  using R = transfer_result;
  const auto& ev = w.transfer_events;
  u.eff.assign(ev.begin() + i, ev.begin() + j + 1);
  u.sys.assign(u.eff.size(), 0);
  for (size_t k = 0; k < u.eff.size(); ++k) {
    const transfer& t = ev[i + k];
    u.sys[k] = !w.system.empty() && w.system[i + k] != 0;
    if (u.sys[k] || (t.flags & ~plain_flags) != 0 || fields_check(t) != R::ok || sid::reserved(t.id) ||
        sid::reserved(t.debit_account_id) || sid::reserved(t.credit_account_id)) {
      continue;
    }
    count_credit(st, r, t.credit_account_id);
    u.eff[k].credit_account_id = 0; // marks a credit that may land on a sub-account
  }
  // Split accounts whose balance the unit judges: those it debits (not by a post or void,
  // whose hold is in the account's own row), those a balancing credit fills up, and those
  // a closing credit closes (a closed account holds everything itself, so that it holds it
  // when a void reopens it). They are gathered before the unit, and its credits to them
  // land on them directly.
  u.debited_split.clear();
  auto judged = [&](u128 id) {
    auto h = st.hot.find(id);
    if (h != st.hot.end() && h->second.sub_accounts != 0 && r.gathered.count(id) == 0 &&
        std::find(u.debited_split.begin(), u.debited_split.end(), id) == u.debited_split.end()) {
      u.debited_split.push_back(id);
    }
  };
  for (size_t k = i; k <= j; ++k) {
    const transfer& t = ev[k];
    if ((!w.system.empty() && w.system[k] != 0) || has(t.flags, transfer_post_pending | transfer_void_pending)) continue;
    judged(t.debit_account_id);
    if (has(t.flags, transfer_balancing_credit | transfer_closing_credit)) judged(t.credit_account_id);
  }
  // A unit with a post or void keeps its credits on the accounts themselves, never on a
  // sub-account elsewhere (it stays in its pending transfer's shards).
  bool unit_resolves = false;
  for (size_t k = i; k <= j; ++k) unit_resolves = unit_resolves || has(ev[k].flags, transfer_post_pending | transfer_void_pending);
  // Nor on a sub-account of an account the unit closes: a later credit of the unit must find
  // it closed, as on one shard.
  u.closed_by_unit.clear();
  for (size_t k = i; k <= j; ++k) {
    if (has(ev[k].flags, transfer_closing_debit)) u.closed_by_unit.push_back(ev[k].debit_account_id);
    if (has(ev[k].flags, transfer_closing_credit)) u.closed_by_unit.push_back(ev[k].credit_account_id);
  }
  auto in = [](const std::vector<u128>& ids, u128 id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); };
  for (size_t k = 0; k < u.eff.size(); ++k) {
    if (u.eff[k].credit_account_id != 0) continue;
    const transfer& t = ev[i + k];
    u.eff[k].credit_account_id = t.credit_account_id;
    if (unit_resolves || r.gathered.count(t.credit_account_id) != 0 || in(u.closed_by_unit, t.credit_account_id) ||
        in(u.debited_split, t.credit_account_id)) {
      continue;
    }
    if (u128 target = hot_target(st, r, t); target != 0) {
      u.eff[k].credit_account_id = target;
      u.sys[k] = 1;
    }
  }
}

// Ids the shards already hold: the answer comes from what they hold (after the checks a shard
// makes before it looks an id up: an event that fails them never gets that far). Returns the
// unit's first event whose id the shards hold (or the last event of a chain the request
// leaves open, which a shard never applies), with its code, or -1.
int unit_existing(const state& st, const round& r, const request& w, size_t i, size_t j, const unit_scratch& u,
                  uint32_t& code) {
  using R = transfer_result;
  const auto& ev = w.transfer_events;
  const bool open = has(ev[j].flags, transfer_linked);
  for (size_t k = 0; k + (open ? 1 : 0) < u.eff.size(); ++k) {
    if (transfer_check_head(ev[i + k]) != R::ok) continue;
    auto it = r.probed.find(ev[i + k].id);
    if (it == r.probed.end() || !it->second.found()) continue;
    view v;
    if (!view_of(st, it->second, v)) {
      code = static_cast<uint32_t>(R::id_already_failed);
      return static_cast<int>(k);
    }
    code = existing_result(ev[i + k], v); // the view names the parent, not a sub-account
    return static_cast<int>(k);
  }
  if (open) {
    code = static_cast<uint32_t>(R::linked_event_chain_open);
    return static_cast<int>(u.eff.size() - 1);
  }
  return -1;
}

// Where each event applies: the shards of its pending transfer (post, void), or of its debit
// and credit accounts. The round's model learns every pending transfer the unit resolves as
// the shards hold it (with its deadline), and so decides posts and voids as one shard would,
// at the directory's clock, which judges every deadline.
void unit_shards(const state& st, round& r, unit_scratch& u) {
  const uint32_t n = st.shards;
  u.dr_shard.assign(u.eff.size(), 0);
  u.cr_shard.assign(u.eff.size(), 0);
  u.resolves = false;
  for (size_t k = 0; k < u.eff.size(); ++k) {
    const transfer& t = u.eff[k];
    if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
      u.resolves = true;
      const held* h = pending_held(r, t.pending_id);
      view v;
      if (h != nullptr && view_of(st, *h, v) && visible(v)) {
        model_learn_pending(r, v);
        u.dr_shard[k] = h->entries.front().first;
        u.cr_shard[k] = u.dr_shard[k];
        if (v.two_phase) leg_shards(*h, u.dr_shard[k], u.cr_shard[k]);
      } else {
        // A pending transfer of the unit itself (a chain holds and posts): its shards.
        // Otherwise the model refuses the event, and it goes nowhere.
        u.dr_shard[k] = u.cr_shard[k] = UINT32_MAX;
        for (size_t p = 0; p < k; ++p) {
          if (u.eff[p].id != t.pending_id || !has(u.eff[p].flags, transfer_pending)) continue;
          u.dr_shard[k] = u.dr_shard[p];
          u.cr_shard[k] = u.cr_shard[p];
        }
      }
    } else {
      u.dr_shard[k] = t.debit_account_id != 0 && t.debit_account_id != u128_max ? shard_of(t.debit_account_id, n) : 0;
      u.cr_shard[k] = t.credit_account_id != 0 && t.credit_account_id != u128_max ? shard_of(t.credit_account_id, n) : u.dr_shard[k];
    }
  }
  u.spans = false;
  for (size_t k = 0; k < u.eff.size(); ++k) {
    u.spans = u.spans || u.dr_shard[k] != u.dr_shard[0] || u.cr_shard[k] != u.dr_shard[0];
  }
}

// A later event of a chain names an id the shards hold (or ends a chain left open): the chain
// fails there, unless an event before it fails first. The model decides the events before it
// and an event that fails for sure, as one shard would, answers the first that fails, and
// undoes the chain.
void fail_at_existing(round& r, request& w, size_t i, size_t j, const unit_scratch& u, int existing,
                      uint32_t existing_code) {
  using R = transfer_result;
  const size_t before = static_cast<size_t>(existing);
  std::vector<transfer> prefix(u.eff.begin(), u.eff.begin() + existing);
  std::vector<uint8_t> prefix_sys(u.sys.begin(), u.sys.begin() + existing);
  prefix.push_back(transfer{}); // id_must_not_be_zero
  prefix_sys.push_back(0);
  const auto decided = r.model->create_transfers(prefix.data(), prefix.size(), r.now, prefix_sys.data());
  size_t failed_at = before;
  for (size_t k = 0; k < before; ++k) {
    if (decided[k] != R::linked_event_failed) {
      failed_at = k;
      break;
    }
  }
  const uint32_t code = failed_at < before ? static_cast<uint32_t>(decided[failed_at]) : existing_code;
  fail_chain(w, static_cast<uint32_t>(i), static_cast<uint32_t>(j), static_cast<uint32_t>(i + failed_at), code);
}

// A unit the model applied goes to its shards. Within one shard and without a post or void,
// as it came (the shard decides it again, the same way). Otherwise decided whole: each event
// applies as the model applied it. One across shards becomes two legs through the clearing
// accounts of the pair, one in each shard, with the client's id (a saga); one within a shard
// applies there. A balancing event carries the amount the model decided (its flags kept as
// data), as one shard stores it; a post or void, whose deadline the model judged, is not
// judged again by its shard.
void add_unit(state& st, round& r, request& w, size_t i, size_t j, unit_scratch& u) {
  for (const transfer& t : u.eff) {
    if (!has(t.flags, transfer_pending) || t.timeout == 0) continue;
    const uint64_t at = r.now + uint64_t{t.timeout} * 1'000'000'000ull; // the shard stamps it later
    if (r.deadline_min_ns == 0 || at < r.deadline_min_ns) r.deadline_min_ns = at;
  }
  for (size_t k = 0; k < u.eff.size(); ++k) KASSA_ASSERT(u.dr_shard[k] != UINT32_MAX && u.cr_shard[k] != UINT32_MAX);
  if (!u.spans && !u.resolves) {
    for (size_t k = 0; k < u.eff.size(); ++k) {
      add_transfer(r, u.dr_shard[0], u.eff[k], u.sys[k] != 0, origin{&w, static_cast<uint32_t>(i + k)});
    }
    return;
  }
  for (transfer& t : u.eff) {
    if (!has(t.flags, transfer_balancing_debit | transfer_balancing_credit)) continue;
    const transfer* stored = r.model->transfer_find(t.id);
    KASSA_ASSERT(stored != nullptr && stored->amount != 0);
    t.amount = stored->amount;
  }
  const int saga_index = u.spans ? static_cast<int>(r.sagas.size()) : -1;
  if (u.spans) r.sagas.push_back(saga_plan{&w, static_cast<uint32_t>(i), static_cast<uint32_t>(j)});
  // Each keeps the client's flags, `linked` too, as data (system_unlinked): the unit was
  // decided whole, so no shard needs to chain it.
  for (size_t k = 0; k < u.eff.size(); ++k) {
    add_decided(st, r, u.eff[k], system_unlinked, origin{&w, static_cast<uint32_t>(i + k), saga_index},
                u.dr_shard[k], u.cr_shard[k]);
  }
}

// Plans the transfer events of `w` from its cursor; stops (leaving the rest for the next
// round) at a unit that names an id this round already planned.
void plan_transfers(state& st, round& r, request& w) {
  using R = transfer_result;
  auto& ev = w.transfer_events;
  unit_scratch u;
  size_t i = w.cursor;
  while (i < ev.size()) {
    size_t j = i;
    while (j + 1 < ev.size() && has(ev[j].flags, transfer_linked)) ++j;
    const bool chain = j > i || has(ev[i].flags, transfer_linked);
    if (!w.system.empty() && w.system[i] == system_expire) {
      if (r.seen.count(ev[i].pending_id) != 0) break; // resolved earlier in the round: next round
      r.seen.insert(ev[i].pending_id);
      plan_expiry(st, r, w, static_cast<uint32_t>(i));
      i = j + 1;
      continue;
    }
    if (unit_again(r, ev, i, j)) break; // never the round's first unit: something before it was planned
    for (size_t k = i; k <= j; ++k) r.seen.insert(ev[k].id);
    unit_effective(st, r, w, i, j, u);
    uint32_t existing_code = 0;
    const int existing = unit_existing(st, r, w, i, j, u, existing_code);
    if (existing == 0) {
      if (!chain) w.results[i] = existing_code;
      else fail_chain(w, static_cast<uint32_t>(i), static_cast<uint32_t>(j), static_cast<uint32_t>(i), existing_code);
      i = j + 1;
      continue;
    }
    unit_shards(st, r, u);
    for (u128 parent : u.debited_split) gather(st, r, w, static_cast<uint32_t>(i), parent);
    if (existing > 0) {
      fail_at_existing(r, w, i, j, u, existing, existing_code);
      i = j + 1;
      continue;
    }
    // The model decides the unit exactly as one shard would, after everything the round
    // planned before it. A refused unit is answered here and written nowhere.
    const auto decided = r.model->create_transfers(u.eff.data(), u.eff.size(), r.now, u.sys.data());
    bool accepted = true;
    for (size_t k = 0; k < decided.size(); ++k) {
      w.results[i + k] = static_cast<uint32_t>(decided[k]);
      accepted = accepted && decided[k] == R::ok;
    }
    if (accepted) add_unit(st, r, w, i, j, u);
    i = j + 1;
  }
  w.cursor = i;
}

// An expiry the directory's poll found due: a pending transfer whose deadline has passed at
// the directory's clock expires in every shard that holds a leg of it still pending (a
// transfer across shards: as a saga, so that recovery finishes it); one no longer pending,
// or not yet due, is left as it is.
void plan_expiry(state& st, round& r, request& w, uint32_t event) {
  transfer t = w.transfer_events[event];
  const held* h = pending_held(r, t.pending_id);
  view v;
  if (h == nullptr || !view_of(st, *h, v) || !visible(v)) return;
  const bool due = v.status == pending_status::expired ||
                   (v.status == pending_status::pending && v.expires_at_ns != 0 && v.expires_at_ns <= r.now);
  if (!due) return;
  model_learn_pending(r, v);
  const uint8_t mark = system_expire;
  if (v.status == pending_status::pending && r.model->create_transfers(&t, 1, r.now, &mark).at(0) != transfer_result::ok) {
    return;
  }
  std::vector<uint32_t> shards;
  for (const auto& [shard, e] : h->entries) {
    if (e.status == pending_status::pending) shards.push_back(shard);
  }
  const int saga_index = shards.size() > 1 ? static_cast<int>(r.sagas.size()) : -1;
  if (saga_index >= 0) r.sagas.push_back(saga_plan{&w, event, event});
  for (uint32_t shard : shards) add_transfer(r, shard, t, system_expire, origin{&w, event, saga_index});
}

// Sub-accounts of split hot accounts first seen in this round are created before the
// transfers of their shards (create_accounts reaches a shard before create_transfers).
void plan_sub_accounts(state& st, round& r) {
  for (const auto& [parent, index] : r.subs_to_create) {
    const hot_state& h = st.hot[parent];
    const account a = sub_account_row(parent, index, h.ledger, h.history);
    st.sub_parent[a.id] = parent;
    add_account(r, shard_of(a.id, st.shards), a, system_own, origin{nullptr, 0});
  }
}

} // namespace

void plan_round(state& st, round& r, const std::vector<request*>& requests, const std::vector<bool>& skip,
                uint64_t clock_ns) {
  r.batches.assign(st.shards, shard_batch{});
  r.model = std::make_unique<state_machine>();
  for (const auto& [id, a] : r.accounts) r.model->account_load(a);
  bool transfers_planned = false;
  for (size_t k = 0; k < requests.size(); ++k) {
    request& w = *requests[k];
    if (w.accounts && transfers_planned) break;
    if (k < skip.size() && skip[k]) continue;
    if (w.accounts) {
      plan_accounts(st, r, w);
    } else {
      plan_transfers(st, r, w);
      transfers_planned = true;
    }
    if (w.cursor < w.size()) break;
  }
  plan_sub_accounts(st, r);
  r.model.reset();
  stamp_round(st, r, clock_ns);
}

} // namespace planner
} // namespace kassa::ledger
