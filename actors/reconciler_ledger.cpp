// The reconciler's ledger side: rows <-> ledger (the bookings each payment row names, looked
// up in the ledger and judged against the row) and ledger -> rows (every booking in the
// payments id range, a page at a time, each against its row). docs/accounting.md.
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "actors/messages.hpp"
#include "actors/recon_cases.hpp"
#include "actors/reconciler_parts.hpp"
#include "ledger/payments/booking_check.hpp"
#include "ledger/payments/ids.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors::recon_parts {

namespace {

// --- rows <-> ledger -------------------------------------------------------------------------

// One row whose bookings a round looks up, and what the ledger answered.
struct booking_row {
  pay::order row;
  pay::booking_expectation expect;
  std::map<pay::leg, pay::found_booking> found;
};
struct booking_work {
  std::vector<booking_row> rows;
  std::map<uint64_t, size_t> by_sequence; // row sequence -> index in rows
  uint64_t checked = 0;                   // rows decided without a lookup (nothing to look up)
  uint64_t done_cursor = 0;               // made durable with this round; 0: none
};
using booking_work_ptr = std::shared_ptr<booking_work>;

// Once every row of the entries read so far was looked up, reads the next entries into the
// queue; `done_cursor` is then the journal sequence up to which every row was looked up.
bool refresh_booking_queue(reconciler_state& st, uint64_t& done_cursor) {
  done_cursor = 0;
  if (!st.booking_queue.empty()) return true;
  if (st.booking_journal_read > st.booking_journal_cursor) done_cursor = st.booking_journal_read;
  std::vector<ks::journal_entry> entries;
  ks::error err = st.opts.payments->journal_after(st.booking_journal_read, st.opts.journal_entries_max, entries);
  if (!err.ok()) {
    st.booking_last_error = err.message;
    return false;
  }
  for (const ks::journal_entry& e : entries)
    if (e.row_id != 0 && e.kind != uint16_t(pay::kind::create_order)) st.booking_queue.insert(e.row_id);
  if (!entries.empty()) st.booking_journal_read = entries.back().sequence;
  return true;
}

// Takes up to booking_rows_max rows off the queue with what each must (and must not) have
// booked. The row is read before its journal: a journal newer than the row only names more
// bookings, which the ledger holds already (the core notes a booking once it is accepted).
bool take_booking_rows(reconciler_state& st, booking_work& w) {
  while (!st.booking_queue.empty() && w.rows.size() < st.opts.booking_rows_max) {
    const u128 id = *st.booking_queue.begin();
    booking_row b;
    bool found = false;
    std::vector<ks::journal_entry> entries;
    ks::error err = st.opts.payments->get_row(id, b.row, found);
    if (err.ok() && found) err = st.opts.payments->journal_by_row(id, entries);
    if (!err.ok()) {
      st.booking_last_error = err.message;
      return false;
    }
    st.booking_queue.erase(st.booking_queue.begin());
    if (!found || b.row.sequence == 0) continue;
    std::vector<pay::booking_note> notes;
    for (const ks::journal_entry& e : entries) {
      pay::booking_note n;
      std::memcpy(n.step, e.step, sizeof n.step);
      n.amount = e.amount;
      notes.push_back(n);
    }
    b.expect = pay::expected_bookings(static_cast<pay::kind>(b.row.kind), static_cast<pay::order_state>(b.row.state),
                                      b.row.fee, b.row.amount_captured, notes);
    if (b.expect.bookings.empty() && b.expect.forbidden.empty() && b.expect.main_any.empty()) {
      ++w.checked; // nothing to look up
      continue;
    }
    w.by_sequence[b.row.sequence] = w.rows.size();
    w.rows.push_back(std::move(b));
  }
  return true;
}

void record_found(booking_work& w, const std::vector<ledger::transfer>& transfers) {
  for (const ledger::transfer& t : transfers) {
    auto it = w.by_sequence.find(pay::transfer_sequence(t.id));
    if (it != w.by_sequence.end()) pay::record_booking(w.rows[it->second].found, t.id, t.amount);
  }
}

std::string hex_of(u128 v) { return "0x" + to_hex_u128(v, 32); }

std::string describe_booking_case(const recon_case& c) {
  return "case=" + std::to_string(c.id) + " kind=" + std::string(ks::name(static_cast<case_kind>(c.kind))) +
         " row=" + to_string_u128(c.row_id) + " transfer=" + hex_of(c.payment_id) +
         " row_amount=" + to_string_u128(c.internal_amount) + " ledger_amount=" + to_string_u128(c.provider_amount);
}

case_kind case_kind_of(pay::booking_finding_kind k) {
  switch (k) {
    case pay::booking_finding_kind::missing_booking: return case_kind::missing_booking;
    case pay::booking_finding_kind::amount_mismatch: return case_kind::booking_amount_mismatch;
    case pay::booking_finding_kind::row_status_mismatch: return case_kind::row_status_mismatch;
  }
  return case_kind::none;
}

void booking_round_failed(reconciler_actor* self, const booking_work& w, const std::string& why) {
  auto& st = self->state;
  for (const booking_row& b : w.rows) st.booking_queue.insert(b.row.id); // looked up again next round
  st.booking_last_error = why;
  st.booking_running = false;
}

// Every difference between the rows and the ledger becomes a case; one commit.
void judge_bookings(reconciler_actor* self, booking_work_ptr w) {
  auto& st = self->state;
  recon_batch batch;
  batch.booking_rows_checked = w->checked + w->rows.size();
  batch.booking_journal_cursor = w->done_cursor;
  const uint64_t now = now_ns(st);
  for (const booking_row& b : w->rows) {
    for (const pay::booking_finding& f : pay::compare_bookings(b.row.sequence, b.expect, b.found)) {
      recon_case c;
      c.kind = static_cast<uint8_t>(case_kind_of(f.kind));
      c.opened_ns = now;
      c.payment_id = f.transfer_id;
      c.row_id = b.row.id;
      c.trace_id = b.row.trace_id;
      c.internal_amount = f.expected;
      c.provider_amount = f.found;
      c.ledger = b.row.ledger;
      std::memcpy(c.provider, b.row.provider, sizeof c.provider);
      batch.cases.push_back(c);
    }
  }
  if (batch.empty()) {
    st.booking_last_error.clear();
    st.booking_running = false;
    ++st.booking_rounds;
    return;
  }
  self->request(st.committer, caf::infinite, recon_write{std::move(batch)})
      .then(
          [self, w](recon_written& done) {
            auto& st = self->state;
            if (!done.error.ok()) return booking_round_failed(self, *w, done.error.message);
            st.counters = done.counters;
            st.booking_journal_cursor = std::max(st.booking_journal_cursor, done.counters.booking_journal_cursor);
            st.booking_last_error.clear();
            if (st.opts.log_booking_case)
              for (const recon_case& c : done.batch.cases)
                if (c.id != 0) st.opts.log_booking_case(describe_booking_case(c)); // new, not seen before
            st.booking_running = false;
            ++st.booking_rounds;
          },
          [self, w](caf::error& e) {
            booking_round_failed(self, *w, "reconciliation committer failed: " + to_string(e));
          });
}

// Asks the ledger for every booking of the round's rows; judges them once answered.
void lookup_bookings(reconciler_actor* self, booking_work_ptr w) {
  auto& st = self->state;
  std::vector<u128> ids;
  for (const booking_row& b : w->rows) {
    std::vector<u128> more = pay::booking_ids(b.row.sequence, b.expect);
    ids.insert(ids.end(), more.begin(), more.end());
  }
  if (ids.empty()) return judge_bookings(self, w);
  self->request(st.opts.ledger, std::chrono::milliseconds(st.opts.booking_timeout_ms),
                lookup_transfers_request{request_context{}, std::move(ids)})
      .then(
          [self, w](transfers_reply& r) {
            if (r.status != outcome::ok)
              return booking_round_failed(self, *w, "the ledger did not answer a lookup of bookings: outcome " +
                                                        std::to_string(static_cast<int>(r.status)));
            record_found(*w, r.transfers);
            judge_bookings(self, w);
          },
          [self, w](caf::error& e) {
            booking_round_failed(self, *w, "the ledger did not answer a lookup of bookings: " + to_string(e));
          });
}

} // namespace

void start_booking_round(reconciler_actor* self) {
  auto& st = self->state;
  if (!st.opts.ledger || st.booking_running) return;
  auto w = std::make_shared<booking_work>();
  if (!refresh_booking_queue(st, w->done_cursor) || !take_booking_rows(st, *w)) {
    for (const booking_row& b : w->rows) st.booking_queue.insert(b.row.id); // next round
    return;
  }
  st.booking_running = true;
  lookup_bookings(self, w);
}

namespace {

// --- ledger -> rows ---------------------------------------------------------------------------

void scan_failed(reconciler_actor* self, const std::string& why) {
  self->state.scan_last_error = why; // the cursor stays: the same page is read next round
  self->state.scan_running = false;
}

// A page was judged and its cases are durable: the cursor moves on, past the range's end to
// its start.
void scan_advance(reconciler_actor* self, uint64_t ids, u128 next) {
  auto& st = self->state;
  st.scan_ids += ids;
  if (next >= pay::transfer_id_end || next <= st.scan_next) {
    st.scan_next = pay::transfer_id_min;
    ++st.scan_passes;
  } else {
    st.scan_next = next;
  }
  st.scan_last_error.clear();
  st.scan_running = false;
}

// Every booking of the page whose row does not exist becomes a case. A row is durable before
// its flow books anything (the gateway and the order write it first), so no grace is needed.
void judge_scan(reconciler_actor* self, transfers_by_id_reply& page) {
  auto& st = self->state;
  recon_batch batch;
  const uint64_t now = now_ns(st);
  std::map<uint64_t, bool> has_row; // by sequence, this page
  for (const ledger::transfer& t : page.transfers) {
    if (!pay::is_row_booking(t.id)) continue;
    const uint64_t sequence = pay::transfer_sequence(t.id);
    auto it = has_row.find(sequence);
    if (it == has_row.end()) {
      pay::order row;
      bool found = false;
      if (auto err = st.opts.payments->find_sequence(sequence, row, found); !err.ok())
        return scan_failed(self, err.message);
      it = has_row.emplace(sequence, found).first;
    }
    if (it->second) continue;
    recon_case c;
    c.kind = static_cast<uint8_t>(case_kind::booking_without_row);
    c.opened_ns = now;
    c.payment_id = t.id;
    c.provider_amount = t.amount;
    c.ledger = t.ledger;
    batch.cases.push_back(c);
  }
  const uint64_t ids = page.transfers.size();
  const u128 next = page.next;
  if (batch.cases.empty()) return scan_advance(self, ids, next);
  self->request(st.committer, caf::infinite, recon_write{std::move(batch)})
      .then(
          [self, ids, next](recon_written& done) {
            auto& st = self->state;
            if (!done.error.ok()) return scan_failed(self, done.error.message);
            st.counters = done.counters;
            if (st.opts.log_booking_case)
              for (const recon_case& c : done.batch.cases)
                if (c.id != 0) st.opts.log_booking_case(describe_booking_case(c)); // new, not seen before
            scan_advance(self, ids, next);
          },
          [self](caf::error& e) { scan_failed(self, "reconciliation committer failed: " + to_string(e)); });
}

// Reads the next page of the ledger's payments id range.
} // namespace

void start_booking_scan(reconciler_actor* self) {
  auto& st = self->state;
  if (!st.opts.ledger || st.scan_running) return;
  st.scan_running = true;
  self->request(st.opts.ledger, std::chrono::milliseconds(st.opts.booking_timeout_ms),
                transfers_by_id_request{st.scan_next, pay::transfer_id_end, st.opts.booking_scan_ids_max})
      .then(
          [self](transfers_by_id_reply& r) {
            if (r.status != outcome::ok)
              return scan_failed(self, "the ledger did not answer a scan of bookings: outcome " +
                                           std::to_string(static_cast<int>(r.status)));
            judge_scan(self, r);
          },
          [self](caf::error& e) { scan_failed(self, "the ledger did not answer a scan of bookings: " + to_string(e)); });
}

} // namespace kassa::actors::recon_parts
