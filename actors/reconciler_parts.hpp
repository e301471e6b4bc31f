#pragma once
// What the parts of the reconciler (reconciler.cpp: statements <-> rows and the behavior;
// reconciler_ledger.cpp: rows <-> ledger and ledger -> rows) share: its state and the
// functions one part calls in the other. Internal to actors/.
#include <caf/all.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/channel.hpp"
#include "actors/reconciler.hpp"
#include "ledger/payments/records.hpp"

namespace kassa::actors::recon_parts {

namespace ks = ledger::store;
namespace pay = ledger::payments;
using ks::case_kind;
using ks::recon_batch;
using ks::recon_case;
using ks::recon_pending;
using ks::recon_store;

struct provider_state {
  std::string name;
  caf::actor channel;
  uint64_t cursor = 0;
  std::vector<recon_pending> pending;        // lines waiting for a final payment row
  std::optional<statement_reply> reply;      // of this round's request
  std::string last_error;
};

struct reconciler_state {
  reconciler_options opts;
  std::shared_ptr<recon_store> store; // reads here; writes go through the committer
  caf::actor committer;
  std::vector<provider_state> providers;
  // Rows that may still need a statement line: the unmatched-row index (docs/accounting.md).
  std::set<u128> candidates;
  // Part of the index: rows whose journal named a `compensated` step, until a statement shows
  // their compensating refund or a case covers it; and, after a rescan, rows that may have
  // one whose journal is still to be read (compensation_journals_page a round).
  std::set<u128> compensations;
  std::set<u128> compensations_unread;
  uint64_t journal_cursor = 0; // the payments journal read into `candidates` up to here
  bool rescan = true;          // rebuild `candidates` from every row (at start, after a failure)
  bool round_running = false;
  size_t replies_outstanding = 0;
  uint64_t rounds = 0;
  // Rows <-> ledger: rows whose bookings are to be looked up, named by the payments journal
  // after the durable cursor up to `booking_journal_read`. The next entries are read once the
  // queue is empty; the round after that makes the cursor durable.
  std::set<u128> booking_queue;
  uint64_t booking_journal_cursor = 0; // as the recon store holds it
  uint64_t booking_journal_read = 0;
  bool booking_running = false;
  uint64_t booking_rounds = 0;
  std::string booking_last_error; // of the last rows <-> ledger round; empty after a success
  // Ledger -> rows: the next page of the payments id range starts here (in memory: a restart
  // scans from the start again; the cases it finds again are the same cases).
  u128 scan_next = pay::transfer_id_min;
  bool scan_running = false;
  uint64_t scan_ids = 0;
  uint64_t scan_passes = 0;
  std::string scan_last_error;
  ks::recon_counters counters;
  std::string last_error;
  // Suspense cases whose compensating refund a statement showed late: being settled, or
  // refused for good (the line then takes its ordinary course). In memory: after a restart
  // the line asks again, and a settled case answers from its journal.
  std::set<uint64_t> late_refunds_running, late_refunds_refused;
};

using reconciler_actor = caf::stateful_actor<reconciler_state>;

inline uint64_t now_ns(const reconciler_state& st) {
  if (st.opts.clock_ns) return st.opts.clock_ns();
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

// reconciler_ledger.cpp: a round of rows <-> ledger (the bookings each row names), and a page
// of ledger -> rows (the bookings in the payments id range, each against its row).
void start_booking_round(reconciler_actor* self);
void start_booking_scan(reconciler_actor* self);

} // namespace kassa::actors::recon_parts
