#include "actors/accounting.hpp"

#include <chrono>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "ledger/assert.hpp"
#include "ledger/payments/gl.hpp"
#include "ledger/store/voucher_store.hpp"

namespace kassa::actors {

namespace {

using ledger::store::journal_entry;
using ledger::store::voucher;
using ledger::store::voucher_store;

// One range of the journal for the committer, and its answer.
struct accounting_commit {
  std::vector<voucher> vouchers;
  uint64_t cursor_before = 0, cursor_after = 0;
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
        done.error = store->write(c.vouchers, c.cursor_before, c.cursor_after);
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

// Reads the next range of the journal and hands its vouchers to the committer. The reads are
// LMDB reads from the memory map: they never wait for the payments writer.
void run_once(accounting_actor* self) {
  auto& st = self->state;
  if (st.busy || st.paused) return;
  std::vector<journal_entry> entries;
  if (auto err = st.opts.payments->journal_after(st.cursor, st.opts.batch_events_max, entries); !err.ok()) {
    if (st.last_error != err.message && st.opts.log_error) st.opts.log_error(err.message);
    st.last_error = err.message;
    return;
  }
  if (entries.empty()) return;
  accounting_commit c;
  c.cursor_before = st.cursor;
  c.cursor_after = entries.back().sequence;
  c.fail = st.failing;
  std::map<u128, uint32_t> ledgers;
  for (const journal_entry& e : entries) {
    KASSA_ASSERT(e.sequence > c.cursor_before && e.sequence <= c.cursor_after);
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
    c.vouchers.push_back(v);
  }
  const bool full = entries.size() >= st.opts.batch_events_max;
  const uint64_t cursor_after = c.cursor_after;
  st.busy = true;
  self->request(st.committer, caf::infinite, std::move(c))
      .then(
          [self, full, cursor_after](accounting_committed& done) {
            auto& st = self->state;
            st.busy = false;
            if (!done.error.ok()) {
              if (st.last_error != done.error.message && st.opts.log_error) st.opts.log_error(done.error.message);
              st.last_error = done.error.message;
              return; // the cursor stays: the next tick reads the same range again
            }
            st.cursor = cursor_after;
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
        s.vouchers = st.vouchers;
        s.last_error = st.last_error;
        s.paused = st.paused;
        if (auto err = st.opts.payments->read_journal_last(s.journal_last); !err.ok() && s.last_error.empty())
          s.last_error = err.message;
        return s;
      },
      [self](const accounting_totals_request&) -> accounting_totals {
        accounting_totals t;
        t.error = self->state.store->load_totals(t.totals, &t.cursor, &t.vouchers);
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
