#include "actors/reconciler.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "actors/channel.hpp"
#include "actors/messages.hpp"
#include "actors/recon_cases.hpp"
#include "actors/reconciler_parts.hpp"
#include "ledger/payments/booking_check.hpp"
#include "ledger/payments/gl.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors {

using namespace recon_parts;

namespace {

using tick_atom = caf::atom_constant<caf::atom("rec_tick")>;

// Runs detached: a commit of the reconciliation store blocks on fsync.
caf::behavior committer(caf::event_based_actor*, std::shared_ptr<recon_store> store) {
  return {
      [store](recon_write& w) -> recon_written {
        recon_written done;
        done.error = store->write(w.batch);
        if (done.error.ok()) done.error = store->read_counters(done.counters);
        done.batch = std::move(w.batch);
        return done;
      },
  };
}

bool is_final(uint16_t state) {
  using s = pay::order_state;
  switch (static_cast<s>(state)) {
    case s::completed:
    case s::failed:
    case s::partially_paid:
    case s::partially_refunded:
    case s::refunded:
    case s::in_review: return true;
    default: return false;
  }
}

// A charge that took money and may have given it back with a compensating refund: the flow
// fails (provider_refund), or goes to review or is refunded after refund_from_suspense
// (actors/steps/provider.cpp, booking.cpp, late.cpp); a hold that expires does so from
// partially_paid, and a row in flight may have journaled one already.
bool may_have_compensation(const pay::order& row) {
  if (row.provider[0] == 0 || row.provider_amount == 0) return false;
  if (row.kind != uint16_t(pay::kind::topup) && row.kind != uint16_t(pay::kind::pay)) return false;
  using s = pay::order_state;
  switch (static_cast<s>(row.state)) {
    case s::completed:
    case s::partially_refunded: return false;
    default: return true;
  }
}

bool names_compensation(const std::vector<ks::journal_entry>& entries) {
  for (const ks::journal_entry& e : entries)
    if (pay::step_is(e.step, "compensated")) return true;
  return false;
}

// What the row's compensating refunds gave back, as journaled once the provider confirmed
// (saturating: a sum past u128 cannot be money and will match no line).
u128 compensated_sum(const std::vector<ks::journal_entry>& entries) {
  u128 sum = 0;
  for (const ks::journal_entry& e : entries)
    if (pay::step_is(e.step, "compensated") && !add_checked(sum, e.amount, sum)) return u128_max;
  return sum;
}

// Rows of `compensations_unread` whose journal one round reads.
constexpr size_t compensation_journals_page = 256;

template <size_t N>
std::string name_of(const char (&field)[N]) {
  return std::string(field, strnlen(field, sizeof field));
}

// What a round decided so far: the batch to commit and what it knows of payment ids that the
// store does not know yet.
struct round_work {
  recon_batch batch;
  std::map<u128, uint8_t> seen; // payment id -> seen_* / case_kind, this round
  uint64_t now = 0;
  std::vector<std::pair<recon_case, u128>> late_refunds; // suspense case, what the statement shows
};

// The newest suspense case the payment core opened for `row_id` (a scan of the cases, a page
// at a time: only a compensating refund's line without a compensation journaled asks).
bool suspense_case_of(reconciler_state& st, u128 row_id, recon_case& out, bool& found) {
  found = false;
  constexpr size_t page = 1024;
  std::vector<recon_case> cases;
  for (uint64_t next = 1;;) {
    cases.clear();
    if (auto err = st.store->load_cases(false, next, page, cases); !err.ok()) {
      st.last_error = err.message;
      return false;
    }
    for (const recon_case& c : cases) {
      if (c.row_id != row_id || c.kind != uint8_t(case_kind::suspense)) continue;
      out = c;
      found = true;
    }
    if (cases.size() < page) return true;
    next = cases.back().id + 1;
  }
}

enum class verdict { pending, matched, opened, failed };

// A line of a case's refund (the sequence field is the case id): against the case's journaled
// refund resolution, which is made once the provider confirmed; until then the line waits the grace.
template <class Open>
verdict match_case_refund(reconciler_state& st, const recon_pending& line, uint64_t case_id, recon_case& c,
                          round_work& w, Open open) {
  recon_case rc;
  ks::recon_resolution res;
  bool found = false, resolved = false;
  ks::error err = st.store->get_case(case_id, rc, found);
  if (err.ok() && found) err = st.store->get_resolution(case_id, res, resolved);
  if (!err.ok()) {
    st.last_error = err.message;
    return verdict::failed;
  }
  if (!found) return open(case_kind::missing_internal);
  c.row_id = rc.row_id;
  c.trace_id = rc.trace_id;
  if (rc.ledger != 0) c.ledger = rc.ledger;
  if (!resolved || res.action != uint8_t(pay::case_action::refund)) {
    if (w.now - std::min(w.now, line.first_seen_ns) < uint64_t(st.opts.grace_ms) * 1000000u) return verdict::pending;
    return open(case_kind::missing_internal);
  }
  c.internal_amount = res.amount;
  if (res.amount != line.amount) return open(case_kind::amount_mismatch);
  w.seen[line.payment_id] = ks::seen_matched;
  ++w.batch.matched;
  return verdict::matched;
}

// Matches one statement line of `provider` against the payments store.
verdict match_line(reconciler_state& st, const std::string& provider, const recon_pending& line, round_work& w) {
  const uint64_t grace_ns = uint64_t(st.opts.grace_ms) * 1000000u;
  recon_case c;
  c.opened_ns = w.now;
  c.statement_sequence = line.sequence;
  c.payment_id = line.payment_id;
  c.provider_amount = line.amount;
  c.ledger = line.ledger;
  copy_text(c.provider, provider);
  auto open = [&](case_kind k) {
    c.kind = static_cast<uint8_t>(k);
    w.batch.cases.push_back(c);
    w.seen[line.payment_id] = static_cast<uint8_t>(k);
    return verdict::opened;
  };

  // A second line for a payment id the statements showed already: money moved twice.
  int known = -1;
  if (auto it = w.seen.find(line.payment_id); it != w.seen.end()) {
    known = it->second;
  } else {
    std::vector<int> values;
    if (auto err = st.store->seen({line.payment_id}, values); !err.ok()) {
      st.last_error = err.message;
      return verdict::failed;
    }
    known = values[0];
  }
  if (known >= 0 && known != ks::seen_only_missing_case) return open(case_kind::missing_internal);

  // Only an id this data directory sends names one of its rows: another installation's (or an
  // earlier run's of a restored copy) with the same sequence is money kassa has no row for.
  uint64_t sequence = 0;
  pay::call_role role = pay::call_role::main;
  if (!st.opts.payments->ids().decode(line.payment_id, sequence, role)) return open(case_kind::missing_internal);
  if (role == pay::call_role::case_refund) return match_case_refund(st, line, sequence, c, w, open);
  pay::order row;
  bool found = false;
  if (auto err = st.opts.payments->find_sequence(sequence, row, found); !err.ok()) {
    st.last_error = err.message;
    return verdict::failed;
  }
  if (!found) return open(case_kind::missing_internal);
  c.row_id = row.id;
  c.trace_id = row.trace_id;
  if (row.ledger != 0) c.ledger = row.ledger;
  if (!is_final(row.state)) {
    const uint64_t inflight_ns = std::max<uint64_t>(grace_ns, uint64_t(st.opts.inflight_grace_ms) * 1000000u);
    if (w.now - std::min(w.now, line.first_seen_ns) < inflight_ns) return verdict::pending;
    c.internal_amount = row.provider_amount;
    return open(case_kind::missing_internal);
  }
  u128 internal = 0;
  if (role == pay::call_role::main) {
    internal = row.provider_amount;
  } else {
    std::vector<ks::journal_entry> entries;
    if (auto err = st.opts.payments->journal_by_row(row.id, entries); !err.ok()) {
      st.last_error = err.message;
      return verdict::failed;
    }
    internal = compensated_sum(entries);
  }
  if (internal == 0 && role == pay::call_role::compensation) {
    // The payment core gave up on its compensating refund and parked the money with a suspense
    // case; the statement shows the provider made it after all. kassa books it out of suspense
    // and resolves the case itself (settle_late_refund); the line then matches that resolution.
    recon_case parked;
    bool has_case = false;
    if (!suspense_case_of(st, row.id, parked, has_case)) return verdict::failed;
    if (has_case && parked.status == uint8_t(ks::case_status::open) && st.late_refunds_refused.count(parked.id) == 0) {
      if (line.amount > parked.provider_amount) { // more came back than was parked
        c.internal_amount = parked.provider_amount;
        return open(case_kind::amount_mismatch);
      }
      w.late_refunds.emplace_back(parked, line.amount);
      return verdict::pending;
    }
    ks::recon_resolution res;
    bool resolved = false;
    if (has_case && parked.status == uint8_t(ks::case_status::resolved)) {
      if (auto err = st.store->get_resolution(parked.id, res, resolved); !err.ok()) {
        st.last_error = err.message;
        return verdict::failed;
      }
    }
    if (resolved && res.action == uint8_t(pay::case_action::refund) && name_of(res.by) == resolved_by_kassa &&
        res.transfer_id == pay::case_transfer_id(parked.id))
      internal = res.amount;
  }
  c.internal_amount = internal;
  // A final row that moved nothing may still learn of this money: a late success books a
  // failed payment after all, and a compensation is journaled once its refund is confirmed,
  // which the statement can show first. So the line waits the grace like one of a row in flight.
  if (internal == 0 && w.now - std::min(w.now, line.first_seen_ns) < grace_ns) return verdict::pending;
  if (internal == 0) return open(case_kind::missing_internal);
  if (internal != line.amount) return open(case_kind::amount_mismatch);
  w.seen[line.payment_id] = ks::seen_matched;
  ++w.batch.matched;
  return verdict::matched;
}

// Brings the unmatched-row index forward: every row the journal names since the last round
// (or every row, after a restart) is a candidate until a statement shows it or a case covers it;
// a row whose journal names a `compensated` step is one for its compensating refund too.
bool refresh_candidates(reconciler_state& st) {
  if (st.rescan) {
    uint64_t journal_last = 0;
    // The journal's end first: rows changed while scanning come in again through the journal.
    ks::error err = st.opts.payments->read_journal_last(journal_last);
    std::set<u128> rows, compensations;
    if (err.ok())
      err = st.opts.payments->scan_rows([&](const pay::order& row) {
        if (row.provider[0] != 0) rows.insert(row.id);
        if (may_have_compensation(row)) compensations.insert(row.id);
        return true;
      });
    if (!err.ok()) {
      st.last_error = err.message;
      return false;
    }
    st.candidates = std::move(rows);
    st.compensations.clear();
    st.compensations_unread = std::move(compensations); // their journals: a page a round
    st.journal_cursor = journal_last;
    st.rescan = false;
    return true;
  }
  std::vector<ks::journal_entry> entries;
  if (auto err = st.opts.payments->journal_after(st.journal_cursor, st.opts.journal_entries_max, entries); !err.ok()) {
    st.last_error = err.message;
    return false;
  }
  for (const ks::journal_entry& e : entries) {
    if (e.row_id == 0) continue;
    st.candidates.insert(e.row_id);
    if (pay::step_is(e.step, "compensated")) st.compensations.insert(e.row_id);
  }
  if (!entries.empty()) st.journal_cursor = entries.back().sequence;
  return true;
}

// Reads the journals of up to a page of the rows a rescan found that may have a compensating
// refund; those that name a `compensated` step join `compensations`.
bool read_rescanned_journals(reconciler_state& st) {
  std::vector<ks::journal_entry> entries;
  for (size_t n = 0; n < compensation_journals_page && !st.compensations_unread.empty(); ++n) {
    const u128 id = *st.compensations_unread.begin();
    entries.clear();
    if (auto err = st.opts.payments->journal_by_row(id, entries); !err.ok()) {
      st.last_error = err.message;
      return false;
    }
    st.compensations_unread.erase(st.compensations_unread.begin());
    if (names_compensation(entries)) st.compensations.insert(id);
  }
  return true;
}

// The rows of `ids` that still name a provider payment; the others go to `drop`.
bool rows_with_provider(reconciler_state& st, const std::set<u128>& ids, std::vector<pay::order>& rows,
                        std::vector<u128>& drop) {
  for (const u128& id : ids) {
    pay::order row;
    bool found = false;
    if (auto err = st.opts.payments->get_row(id, row, found); !err.ok()) {
      st.last_error = err.message;
      return false;
    }
    if (!found || row.provider[0] == 0 || row.sequence == 0) drop.push_back(id);
    else rows.push_back(row);
  }
  return true;
}

// For each payment id: whether a statement line showed it or a case covers it, in an earlier
// round (the store) or in this one.
bool known_ids(reconciler_state& st, const round_work& w, const std::vector<u128>& pids, std::vector<bool>& known) {
  std::vector<int> stored;
  if (auto err = st.store->seen(pids, stored); !err.ok()) {
    st.last_error = err.message;
    return false;
  }
  known.resize(pids.size());
  for (size_t i = 0; i < pids.size(); ++i) known[i] = stored[i] >= 0 || w.seen.count(pids[i]) != 0;
  return true;
}

// A final row's provider money that no statement line showed, under `payment_id`.
recon_case missing_provider_case(const pay::order& row, u128 payment_id, u128 amount, uint64_t now) {
  recon_case c;
  c.kind = static_cast<uint8_t>(case_kind::missing_provider);
  c.opened_ns = now;
  c.payment_id = payment_id;
  c.row_id = row.id;
  c.trace_id = row.trace_id;
  c.internal_amount = amount;
  c.ledger = row.ledger;
  std::memcpy(c.provider, row.provider, sizeof c.provider);
  return c;
}

void open_missing_provider(round_work& w, const pay::order& row, u128 payment_id, u128 amount) {
  w.batch.cases.push_back(missing_provider_case(row, payment_id, amount, w.now));
  w.batch.seen.emplace_back(payment_id, ks::seen_only_missing_case); // not opened twice
}

// The rows of one part of the unmatched-row index that still name a provider payment, the
// payment id of each under `role`, and whether a statement showed it or a case covers it;
// `drop`: the rows that need nothing more.
struct index_rows {
  std::vector<pay::order> rows;
  std::vector<u128> pids, drop;
  std::vector<bool> known;
};
bool read_index(reconciler_state& st, const round_work& w, const std::set<u128>& ids, pay::call_role role,
                index_rows& out) {
  if (!rows_with_provider(st, ids, out.rows, out.drop)) return false;
  for (const pay::order& row : out.rows) out.pids.push_back(st.opts.payments->ids().id(row.sequence, role));
  return known_ids(st, w, out.pids, out.known);
}

// Opens missing_provider cases for final rows whose provider money no statement showed within
// the grace period; drops rows from the index that need nothing more.
bool check_missing_provider(reconciler_state& st, round_work& w) {
  const uint64_t grace_ns = uint64_t(st.opts.grace_ms) * 1000000u;
  index_rows x;
  if (!read_index(st, w, st.candidates, pay::call_role::main, x)) return false;
  for (size_t i = 0; i < x.rows.size(); ++i) {
    const pay::order& row = x.rows[i];
    if (x.known[i]) {
      x.drop.push_back(row.id); // a statement showed it, or a case covers it
      continue;
    }
    if (!is_final(row.state)) continue;
    if (row.provider_amount == 0) {
      x.drop.push_back(row.id); // nothing moved; a later change comes back through the journal
      continue;
    }
    if (w.now - std::min(w.now, row.updated_ns) < grace_ns) continue;
    open_missing_provider(w, row, x.pids[i], row.provider_amount);
    x.drop.push_back(row.id);
  }
  for (const u128& id : x.drop) st.candidates.erase(id);
  return true;
}

// The same for the compensating refunds (role compensation) of the rows in `compensations`,
// for what their `compensated` entries sum to. A row whose compensation the payment core gave
// up on has none: its money waits in suspense with a case of its own (match_line).
bool check_missing_compensation(reconciler_state& st, round_work& w) {
  const uint64_t grace_ns = uint64_t(st.opts.grace_ms) * 1000000u;
  index_rows x;
  if (!read_index(st, w, st.compensations, pay::call_role::compensation, x)) return false;
  std::vector<ks::journal_entry> entries;
  for (size_t i = 0; i < x.rows.size(); ++i) {
    const pay::order& row = x.rows[i];
    if (x.known[i]) {
      x.drop.push_back(row.id);
      continue;
    }
    if (!is_final(row.state) || w.now - std::min(w.now, row.updated_ns) < grace_ns) continue;
    entries.clear();
    if (auto err = st.opts.payments->journal_by_row(row.id, entries); !err.ok()) {
      st.last_error = err.message;
      return false;
    }
    const u128 given_back = compensated_sum(entries);
    if (given_back > 0) open_missing_provider(w, row, x.pids[i], given_back);
    x.drop.push_back(row.id); // a later compensation comes back through the journal
  }
  for (const u128& id : x.drop) st.compensations.erase(id);
  return true;
}

// What resolving a case needs of the reconciler.
case_desk desk_of(reconciler_actor* self) {
  auto& st = self->state;
  case_desk desk;
  desk.store = st.store;
  desk.payments = st.opts.payments;
  desk.committer = st.committer;
  desk.ledger = st.opts.ledger;
  desk.suspense_account = st.opts.suspense_account;
  desk.now_ns = now_ns(st);
  desk.written = [self](const recon_written& done) {
    if (done.error.ok()) self->state.counters = done.counters;
    else self->state.last_error = done.error.message;
  };
  desk.channels = st.opts.channels;
  desk.clearing_account = st.opts.clearing_account;
  desk.credential_providers = st.opts.credential_providers;
  desk.refund_timeout_ms = st.opts.refund_timeout_ms;
  return desk;
}

// Settles the suspense cases whose compensating refund a statement showed late (one at a time
// per case); a refusal other than a failure to write lets the line take its ordinary course.
void settle_late_refunds(reconciler_actor* self, const std::vector<std::pair<recon_case, u128>>& late) {
  auto& st = self->state;
  for (const auto& [parked, amount] : late) {
    if (!st.late_refunds_running.insert(parked.id).second) continue;
    const uint64_t id = parked.id;
    settle_late_refund(self, desk_of(self), parked, amount, [self, id](const recon_case_resolved& r) {
      auto& st = self->state;
      st.late_refunds_running.erase(id);
      if (!r.error.ok()) {
        st.last_error = r.error.message; // asked again next round
        return;
      }
      if (r.result != pay::case_result::ok && r.result != pay::case_result::case_resolved) {
        st.late_refunds_refused.insert(id);
        st.last_error = "case " + std::to_string(id) + ": a late compensating refund could not be booked (" +
                        std::string(pay::name(r.result)) + ")";
      }
    });
  }
}

void finish_round(reconciler_actor* self) {
  auto& st = self->state;
  round_work w;
  w.now = now_ns(st);
  bool ok = true;
  // What the providers' state becomes once the batch is durable.
  std::vector<std::vector<recon_pending>> pending_next(st.providers.size());
  std::vector<uint64_t> cursor_next(st.providers.size());
  for (size_t i = 0; ok && i < st.providers.size(); ++i) {
    provider_state& p = st.providers[i];
    cursor_next[i] = p.cursor;
    // Lines from earlier rounds first: their rows may have become final.
    for (const recon_pending& line : p.pending) {
      const verdict v = match_line(st, p.name, line, w);
      if (v == verdict::failed) ok = false;
      if (v == verdict::pending) pending_next[i].push_back(line);
      else w.batch.pending_remove.push_back(line);
    }
    if (!ok || !p.reply || !p.reply->ok) continue;
    std::vector<statement_entry> entries = std::move(p.reply->entries);
    std::sort(entries.begin(), entries.end(),
              [](const statement_entry& a, const statement_entry& b) { return a.sequence < b.sequence; });
    for (const statement_entry& e : entries) {
      if (e.sequence <= cursor_next[i]) continue; // a provider that repeats itself
      recon_pending line;
      copy_text(line.provider, p.name);
      line.sequence = e.sequence;
      line.first_seen_ns = w.now;
      line.payment_id = e.payment_id;
      line.amount = e.amount;
      line.ledger = e.ledger;
      line.kind = static_cast<uint8_t>(e.kind);
      line.status = static_cast<uint8_t>(e.status);
      const verdict v = match_line(st, p.name, line, w);
      if (v == verdict::failed) {
        ok = false;
        break;
      }
      if (v == verdict::pending) {
        pending_next[i].push_back(line);
        w.batch.pending_add.push_back(line);
      }
      cursor_next[i] = e.sequence;
    }
    if (cursor_next[i] != p.cursor) w.batch.cursors.emplace_back(p.name, cursor_next[i]);
  }
  for (const auto& [pid, what] : w.seen) w.batch.seen.emplace_back(pid, what);
  if (ok)
    ok = refresh_candidates(st) && read_rescanned_journals(st) && check_missing_provider(st, w) &&
         check_missing_compensation(st, w);
  settle_late_refunds(self, w.late_refunds);
  for (provider_state& p : st.providers) p.reply.reset();
  if (!ok) {
    st.rescan = true; // the index may have lost rows this round decided nothing about
    st.round_running = false;
    return;
  }
  if (w.batch.empty()) {
    st.last_error.clear();
    st.round_running = false;
    ++st.rounds;
    return;
  }
  self->request(st.committer, caf::infinite, recon_write{std::move(w.batch)})
      .then(
          [self, pending_next = std::move(pending_next), cursor_next](recon_written& done) mutable {
            auto& st = self->state;
            st.round_running = false;
            if (!done.error.ok()) {
              st.last_error = done.error.message;
              st.rescan = true;
              return; // cursors and pending lines stay: the next round reads the same lines
            }
            for (size_t i = 0; i < st.providers.size(); ++i) {
              st.providers[i].cursor = cursor_next[i];
              st.providers[i].pending = std::move(pending_next[i]);
            }
            st.counters = done.counters;
            st.last_error.clear();
            ++st.rounds;
          },
          [self](caf::error& e) {
            self->state.round_running = false;
            self->state.rescan = true;
            self->state.last_error = "reconciliation committer failed: " + to_string(e);
          });
}

void start_round(reconciler_actor* self) {
  auto& st = self->state;
  if (st.round_running) return;
  st.round_running = true;
  st.replies_outstanding = st.providers.size();
  if (st.providers.empty()) return finish_round(self);
  for (size_t i = 0; i < st.providers.size(); ++i) {
    provider_state& p = st.providers[i];
    auto answered = [self]() {
      KASSA_ASSERT(self->state.replies_outstanding > 0);
      if (--self->state.replies_outstanding == 0) finish_round(self);
    };
    self->request(p.channel, std::chrono::milliseconds(st.opts.statement_timeout_ms),
                  statement_request{p.cursor, st.opts.statement_lines_max})
        .then(
            [self, i, answered](statement_reply& reply) {
              provider_state& p = self->state.providers[i];
              if (reply.ok) p.last_error.clear();
              else p.last_error = "statement request failed: " + reply.detail;
              p.reply = std::move(reply);
              answered();
            },
            [self, i, answered](caf::error& e) {
              self->state.providers[i].last_error = "statement request failed: " + to_string(e);
              answered();
            });
  }
}

caf::behavior reconciler(reconciler_actor* self, reconciler_options opts, std::shared_ptr<recon_store> store,
                         std::map<std::string, uint64_t> cursors, std::vector<recon_pending> pending,
                         ks::recon_counters counters) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.store = store;
  st.counters = counters;
  st.booking_journal_cursor = st.booking_journal_read = counters.booking_journal_cursor;
  for (auto& [name, channel] : st.opts.channels) {
    provider_state p;
    p.name = name;
    p.channel = channel;
    p.cursor = cursors[name];
    for (const recon_pending& line : pending)
      if (name_of(line.provider) == name) p.pending.push_back(line);
    st.providers.push_back(std::move(p));
  }
  st.committer = self->system().spawn<caf::detached>(committer, std::move(store));
  self->link_to(st.committer);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        start_round(self);
        start_booking_round(self);
        start_booking_scan(self);
        self->delayed_send(self, std::chrono::milliseconds(self->state.opts.interval_ms), tick_atom::value);
      },
      [self](open_case& oc) {
        auto& st = self->state;
        recon_case c;
        c.kind = static_cast<uint8_t>(case_kind::suspense);
        c.opened_ns = now_ns(st);
        c.payment_id = oc.payment_id;
        c.row_id = oc.row_id;
        c.trace_id = oc.trace_id;
        c.ledger = oc.ledger;
        c.internal_amount = oc.internal_amount;
        c.provider_amount = oc.provider_amount;
        copy_text(c.provider, oc.provider);
        recon_batch b;
        b.cases.push_back(c);
        auto rp = self->make_response_promise();
        self->request(st.committer, caf::infinite, recon_write{std::move(b)})
            .then(
                [self, rp](recon_written& done) mutable {
                  if (done.error.ok()) self->state.counters = done.counters;
                  else self->state.last_error = done.error.message;
                  if (!rp.async())
                    rp.deliver(recon_case_opened{done.error, done.batch.cases.empty() ? 0 : done.batch.cases[0].id});
                },
                [self, rp](caf::error& e) mutable {
                  ks::error err{ks::errc::io, "reconciliation committer failed: " + to_string(e)};
                  self->state.last_error = err.message;
                  if (!rp.async()) rp.deliver(recon_case_opened{err, 0});
                });
        return rp;
      },
      [self](resolve_case& r) {
        auto rp = self->make_response_promise();
        resolve(self, desk_of(self), std::move(r), rp);
        return rp;
      },
      [self](const recon_cases_request& r) -> recon_cases_reply { return list_cases(*self->state.store, r); },
      [self](const recon_status_request&) -> recon_status {
        auto& st = self->state;
        recon_status s;
        s.matched = st.counters.matched;
        s.cases_open = st.counters.cases_open;
        s.cases_total = st.counters.cases_total;
        s.rounds = st.rounds;
        s.unmatched_rows = st.candidates.size() + st.compensations.size() + st.compensations_unread.size();
        s.booking_rows_checked = st.counters.booking_rows_checked;
        s.booking_rows_queued = st.booking_queue.size();
        s.booking_rounds = st.booking_rounds;
        s.booking_last_error = st.booking_last_error;
        s.booking_scan_ids = st.scan_ids;
        s.booking_scan_passes = st.scan_passes;
        s.booking_scan_last_error = st.scan_last_error;
        s.last_error = st.last_error;
        for (const provider_state& p : st.providers)
          s.providers.push_back({p.name, p.cursor, p.pending.size(), p.last_error});
        return s;
      },
  };
}

} // namespace

caf::actor spawn_reconciler(caf::actor_system& sys, reconciler_options opts, ks::error& err) {
  err = {};
  KASSA_ASSERT(opts.payments != nullptr);
  KASSA_ASSERT(opts.interval_ms > 0 && opts.statement_lines_max > 0 && opts.journal_entries_max > 0);
  KASSA_ASSERT(opts.booking_rows_max > 0 && opts.booking_timeout_ms > 0 && opts.booking_scan_ids_max > 0);
  std::shared_ptr<recon_store> store = opts.store;
  if (!store) store.reset(recon_store::open(opts.path, opts.durability, opts.map_size_bytes, err).release());
  if (!store) return {};
  std::map<std::string, uint64_t> cursors;
  std::vector<recon_pending> pending;
  ks::recon_counters counters;
  if ((err = store->load_cursors(cursors)).ok() && (err = store->load_pending(pending)).ok())
    err = store->read_counters(counters);
  if (!err.ok()) return {};
  return sys.spawn(reconciler, std::move(opts), std::move(store), std::move(cursors), std::move(pending), counters);
}

} // namespace kassa::actors
