#include "actors/accounting.hpp"

#include <chrono>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "ledger/payments/gl.hpp"
#include "ledger/store/voucher_store.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors {

namespace {

using ledger::store::journal_entry;
using ledger::store::recon_resolution_entry;
using ledger::store::voucher;
using ledger::store::voucher_store;

// One range of the journal and one of the resolutions for the committer, and its answer.
struct accounting_commit {
  ledger::store::voucher_batch batch;
  bool fail = false; // accounting_fail: fail as the disk would, write nothing
};
struct accounting_committed {
  ledger::store::error error;
  uint64_t vouchers = 0; // in the store after the write
};

} // namespace
} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::accounting_commit)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::accounting_committed)

namespace kassa::actors {

namespace {

using tick_atom = caf::atom_constant<caf::atom("acc_tick")>;

// Runs detached: a commit of the voucher store blocks on fsync.
caf::behavior committer(caf::event_based_actor*, std::shared_ptr<voucher_store> store) {
  return {
      [store](accounting_commit& c) -> accounting_committed {
        if (c.fail)
          return {{ledger::store::errc::io, "accounting store write failed (injected by accounting_fail)"},
                  store->vouchers()};
        accounting_committed done;
        done.error = store->write(c.batch);
        done.vouchers = store->vouchers();
        return done;
      },
  };
}

struct accounting_state {
  accounting_options opts;
  std::shared_ptr<voucher_store> store; // reads here; writes go through the committer
  caf::actor committer;
  uint64_t cursor = 0;
  uint64_t recon_cursor = 0;
  uint64_t vouchers = 0;
  std::string last_error;
  bool paused = false;
  bool failing = false;
  bool busy = false; // a commit is running
};

using accounting_actor = caf::stateful_actor<accounting_state>;

// The ledger of a payment row: pay and refund rows may leave it to their order.
uint32_t ledger_of(const ledger::store::payments_store& payments, u128 row_id, std::map<u128, uint32_t>& cache) {
  if (auto it = cache.find(row_id); it != cache.end()) return it->second;
  ledger::payments::order row;
  bool found = false;
  uint32_t ledger = 0;
  if (payments.get_row(row_id, row, found).ok() && found) {
    ledger = row.ledger;
    if (ledger == 0 && row.parent_id != 0 && payments.get_row(row.parent_id, row, found).ok() && found)
      ledger = row.ledger;
  }
  cache[row_id] = ledger;
  return ledger;
}

void note_error(accounting_state& st, const std::string& message) {
  if (st.last_error != message && st.opts.log_error) st.opts.log_error(message);
  st.last_error = message;
}

// The vouchers of the next range of the journal into c.batch; false on a read error.
bool read_journal(accounting_state& st, accounting_commit& c, bool& full) {
  std::vector<journal_entry> entries;
  if (auto err = st.opts.payments->journal_after(st.cursor, st.opts.batch_events_max, entries); !err.ok())
    return note_error(st, err.message), false;
  ledger::store::voucher_batch& b = c.batch;
  b.cursor_before = b.cursor_after = st.cursor;
  if (entries.empty()) return true;
  b.cursor_after = entries.back().sequence;
  full = full || entries.size() >= st.opts.batch_events_max;
  std::map<u128, uint32_t> ledgers;
  for (const journal_entry& e : entries) {
    KASSA_ASSERT(e.sequence > b.cursor_before && e.sequence <= b.cursor_after);
    const ledger::payments::gl_rule* rule = ledger::payments::gl_rule_for(e.step, e.kind);
    if (rule == nullptr) continue;
    voucher v;
    v.journal_sequence = e.sequence;
    v.timestamp_ns = e.timestamp_ns;
    v.trace_id = e.trace_id;
    v.business_id = e.business_id;
    v.row_id = e.row_id;
    v.amount = e.amount;
    v.ledger = e.row_id != 0 ? ledger_of(*st.opts.payments, e.row_id, ledgers) : 0;
    v.debit_account = static_cast<uint16_t>(rule->debit);
    v.credit_account = static_cast<uint16_t>(rule->credit);
    v.kind = e.kind;
    std::memcpy(v.step, e.step, sizeof v.step);
    b.vouchers.push_back(v);
  }
  return true;
}

// The corrections of the next range of the case resolutions into c.batch; false on a read error.
bool read_resolutions(accounting_state& st, accounting_commit& c, bool& full) {
  ledger::store::voucher_batch& b = c.batch;
  b.recon_cursor_before = b.recon_cursor_after = st.recon_cursor;
  if (st.opts.recon == nullptr) return true;
  std::vector<recon_resolution_entry> entries;
  if (auto err = st.opts.recon->resolutions_after(st.recon_cursor, st.opts.batch_events_max, entries); !err.ok())
    return note_error(st, err.message), false;
  if (entries.empty()) return true;
  b.recon_cursor_after = entries.back().sequence;
  full = full || entries.size() >= st.opts.batch_events_max;
  for (const recon_resolution_entry& e : entries) {
    KASSA_ASSERT(e.sequence > b.recon_cursor_before && e.sequence <= b.recon_cursor_after);
    const ledger::store::recon_resolution& r = e.resolution;
    const ledger::payments::gl_case_rule* rule = ledger::payments::gl_rule_for_case(r.action, r.direction);
    if (rule == nullptr || r.amount == 0) continue; // an accept: nothing was booked
    ledger::store::recon_case rc;
    bool found = false;
    if (auto err = st.opts.recon->get_case(r.case_id, rc, found); !err.ok()) return note_error(st, err.message), false;
    voucher v;
    v.journal_sequence = e.sequence;
    v.timestamp_ns = r.resolved_ns;
    v.business_id = r.case_id;
    if (found) v.trace_id = rc.trace_id, v.row_id = rc.row_id, v.ledger = rc.ledger;
    v.amount = r.amount;
    v.debit_account = static_cast<uint16_t>(rule->debit);
    v.credit_account = static_cast<uint16_t>(rule->credit);
    std::memcpy(v.step, rule->step.data(), rule->step.size());
    b.corrections.push_back(v);
  }
  return true;
}

// Reads the next range of the journal and of the resolutions and hands their vouchers to the
// committer. The reads are LMDB reads from the memory map: they never wait for a writer.
void run_once(accounting_actor* self) {
  auto& st = self->state;
  if (st.busy || st.paused) return;
  accounting_commit c;
  bool full = false;
  if (!read_journal(st, c, full) || !read_resolutions(st, c, full)) return;
  const ledger::store::voucher_batch& b = c.batch;
  if (b.cursor_after == b.cursor_before && b.recon_cursor_after == b.recon_cursor_before) return;
  c.fail = st.failing;
  const uint64_t cursor_after = b.cursor_after, recon_cursor_after = b.recon_cursor_after;
  st.busy = true;
  self->request(st.committer, caf::infinite, std::move(c))
      .then(
          [self, full, cursor_after, recon_cursor_after](accounting_committed& done) {
            auto& st = self->state;
            st.busy = false;
            if (!done.error.ok()) {
              note_error(st, done.error.message);
              return; // the cursors stay: the next tick reads the same ranges again
            }
            st.cursor = cursor_after;
            st.recon_cursor = recon_cursor_after;
            st.vouchers = done.vouchers;
            st.last_error.clear();
            if (full) run_once(self); // behind: go on without waiting for the next tick
          },
          [self](caf::error& e) {
            self->state.busy = false;
            self->state.last_error = "accounting committer failed: " + to_string(e);
          });
}

caf::behavior accounting(accounting_actor* self, accounting_options opts, std::shared_ptr<voucher_store> store) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.cursor = store->cursor();
  st.recon_cursor = store->recon_cursor();
  st.vouchers = store->vouchers();
  st.store = store;
  st.committer = self->system().spawn<caf::detached>(committer, std::move(store));
  self->link_to(st.committer);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        run_once(self);
        self->delayed_send(self, std::chrono::milliseconds(self->state.opts.interval_ms), tick_atom::value);
      },
      [self](const accounting_pause& p) {
        self->state.paused = p.paused;
        if (!p.paused) run_once(self);
      },
      [self](const accounting_fail& f) { self->state.failing = f.failing; },
      [self](const accounting_status_request&) -> accounting_status {
        auto& st = self->state;
        accounting_status s;
        s.cursor = st.cursor;
        s.recon_cursor = st.recon_cursor;
        s.vouchers = st.vouchers;
        s.last_error = st.last_error;
        s.paused = st.paused;
        if (auto err = st.opts.payments->read_journal_last(s.journal_last); !err.ok() && s.last_error.empty())
          s.last_error = err.message;
        if (st.opts.recon != nullptr) {
          ledger::store::recon_counters counters;
          if (auto err = st.opts.recon->read_counters(counters); err.ok())
            s.resolution_last = counters.resolution_sequence_last;
          else if (s.last_error.empty())
            s.last_error = err.message;
        }
        return s;
      },
      [self](const accounting_totals_request&) -> accounting_totals {
        accounting_totals t;
        t.error = self->state.store->load_totals(t.totals, &t.cursor, &t.vouchers, &t.recon_cursor);
        return t;
      },
  };
}

} // namespace

caf::actor spawn_accounting(caf::actor_system& sys, accounting_options opts, ledger::store::error& err) {
  err = {};
  KASSA_ASSERT(opts.payments != nullptr);
  KASSA_ASSERT(opts.interval_ms > 0 && opts.batch_events_max > 0);
  std::shared_ptr<voucher_store> store(voucher_store::open(opts.path, opts.durability, opts.map_size_bytes, err));
  if (!store) return {};
  return sys.spawn(accounting, std::move(opts), std::move(store));
}

} // namespace kassa::actors
