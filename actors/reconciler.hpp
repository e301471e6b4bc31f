#pragma once
// The reconciler: off the core link, it reads each provider's settlement statement through
// its channel actor and matches every line against the payments store, and it looks up in the
// ledger the bookings each payment row names; what does not match becomes a case in its own
// store (`<data_dir>/recon/`); and it scans the ledger's payments id range for bookings whose
// row does not exist. The payment core opens suspense cases itself with open_case. A
// provider that does not answer only delays its own statement, the ledger only the bookings
// side. See docs/accounting.md, "Reconciliation".
#include <caf/all.hpp>
#include <cstdint>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/serial.hpp"
#include "actors/serial_payments.hpp"
#include "ledger/payments/case_resolution.hpp"
#include "ledger/store/payments_store.hpp"
#include "ledger/store/recon_store.hpp"
#include "ledger/store/store.hpp"

namespace kassa::actors {

struct reconciler_options {
  std::shared_ptr<ledger::store::payments_store> payments; // read only
  std::string path;                                        // its own LMDB environment
  ledger::store::durability durability = ledger::store::durability::fsync;
  uint64_t map_size_bytes = uint64_t{1} << 30;
  // When set, the store it writes, opened by the caller (who may read it too: one LMDB
  // environment per process); path, durability and map size are then unused.
  std::shared_ptr<ledger::store::recon_store> store;
  std::vector<std::pair<std::string, caf::actor>> channels; // provider name -> channel actor
  uint32_t interval_ms = 1000;
  // How long a statement line may wait for its final payment to book what it shows, and how
  // long a final payment may wait for its statement line, before either becomes a case.
  uint32_t grace_ms = 600000;
  // How long a statement line waits for a payment kassa is still working on (not final: a
  // flow resumed after a restart may wait out a channel's open breaker first); at least
  // grace_ms. The payment core bounds its own steps, so a row still in flight after this is stuck.
  uint32_t inflight_grace_ms = 3600000;
  uint32_t statement_lines_max = 1000;   // per statement_request
  uint32_t statement_timeout_ms = 5000;  // per statement_request
  uint32_t journal_entries_max = 65536;  // journal entries read per round (see docs)
  // Rows <-> ledger: the directory answering lookup_transfers_request; none: that side is off.
  directory_actor ledger;
  uint32_t booking_rows_max = 256;       // rows whose bookings one round looks up
  uint32_t booking_timeout_ms = 5000;    // per lookup; a row not answered is looked up next round
  // Ledger -> rows: the transfer ids of the payments range one round reads (a page of
  // transfers_by_id_request; at most the shards' query_limit_max) to find bookings no row made.
  uint32_t booking_scan_ids_max = 4096;
  // Told of every rows <-> ledger case once it is durable: "kind=... row=... transfer=0x...
  // row_amount=... ledger_amount=..." (kassad logs it). Empty: not told.
  std::function<void(const std::string&)> log_booking_case;
  std::function<uint64_t()> clock_ns;    // unix epoch ns; empty: the system clock
  // Resolving cases: the suspense account of `ledger` in the shard of `account` (the one the
  // payment core books to); empty: `book` is refused (ledger_refused), accept still works.
  std::function<u128(u128 account, uint32_t ledger)> suspense_account;
  // Refunding a case: the provider's clearing account of `ledger` in the shard of `account`
  // (as the payment core books to it; 0 for a provider not configured), the providers that want
  // a credential on a payment call, and how long the refund call may take. Empty: refund is
  // refused (refund_not_possible).
  std::function<u128(const std::string& provider, u128 account, uint32_t ledger)> clearing_account;
  std::vector<std::string> credential_providers;
  uint32_t refund_timeout_ms = 10000;
};

// The payment core opens a suspense case: money it parked in suspense (an amount mismatch, a
// late success it could not collect). Sending the same case twice opens it once. A request
// is answered with recon_case_opened once the case is durable.
struct open_case {
  u128 payment_id = 0;
  u128 row_id = 0;
  uint32_t ledger = 0;
  u128 internal_amount = 0;
  u128 provider_amount = 0;
  std::string provider;
  u128 trace_id = 0;
};
struct recon_case_opened {
  ledger::store::error error;
  uint64_t id = 0; // 0: the same case was open already (or error)
};
// An operator settles a case: accept it, or book its correcting transfer (see
// ledger/payments/case_resolution.hpp). Answered with recon_case_resolved once the resolution
// is journaled, or refused (a result code, nothing changed; a booking already made stays and
// answers `exists` when asked again).
struct resolve_case {
  uint64_t id = 0;
  uint8_t action = uint8_t(ledger::payments::case_action::accept);
  uint8_t direction = 0; // case_direction; with amount, or both 0 to take them from the case
  u128 amount = 0;
  std::string by;        // who, as the operator named themself
  std::string note;      // why; required
  uint64_t client_id = 0;         // the authenticated client; 0: none
  std::vector<uint32_t> ledgers;  // the ledgers that client may use; empty: every ledger
};
struct recon_case_resolved {
  ledger::store::error error; // an operating failure (store, ledger unreachable): retry
  ledger::payments::case_result result = ledger::payments::case_result::ok;
  ledger::store::recon_resolution resolution; // the journal entry, when ok
  bool resolved() const { return error.ok() && result == ledger::payments::case_result::ok; }
};
struct recon_cases_request {
  bool open_only = true;
  uint64_t id_min = 0;
  size_t limit = SIZE_MAX;
};
struct recon_cases_reply {
  ledger::store::error error;
  std::vector<ledger::store::recon_case> cases;
  std::vector<ledger::store::recon_resolution> resolutions; // one per case; all zero for none
};
struct recon_status_request {};
struct recon_provider_status {
  std::string provider;
  uint64_t cursor = 0;      // the last statement line read
  uint64_t pending = 0;     // lines waiting for their payment to become final
  std::string last_error;   // of its last statement request; empty after a success
};
struct recon_status {
  uint64_t matched = 0;     // statement lines matched, ever
  uint64_t cases_open = 0;
  uint64_t cases_total = 0;
  uint64_t rounds = 0;      // rounds completed since start
  // The unmatched-row index: rows with a provider payment (or a compensating refund, or after a
  // restart maybe one) not yet shown by a statement.
  uint64_t unmatched_rows = 0;
  uint64_t booking_rows_checked = 0; // rows whose bookings were looked up in the ledger, ever
  uint64_t booking_rows_queued = 0;  // rows waiting for their bookings to be looked up
  uint64_t booking_rounds = 0;       // rows <-> ledger rounds completed since start
  std::string booking_last_error;    // of the last rows <-> ledger round; empty after a success
  uint64_t booking_scan_ids = 0;     // ledger -> rows: booking ids read since start
  uint64_t booking_scan_passes = 0;  // complete passes over the payments id range since start
  std::string booking_scan_last_error; // of the last page; empty after a success
  std::vector<recon_provider_status> providers;
  std::string last_error;   // of the last store read or write; empty after a success
};

// Opens the store at opts.path and spawns the reconciler; a null handle and `err` set when the
// store cannot be opened.
caf::actor spawn_reconciler(caf::actor_system& sys, reconciler_options opts, ledger::store::error& err);

// ------------------------------------------------------------------ serialisation
// Each message also has an `inspect` overload (the store's records in
// actors/serial_payments.hpp), so that CAF can serialise it.

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open_case& x) {
  return f(caf::meta::type_name("kassa.open_case"), serial::wide{&x.payment_id}, serial::wide{&x.row_id}, x.ledger,
           serial::wide{&x.internal_amount}, serial::wide{&x.provider_amount}, x.provider, serial::wide{&x.trace_id});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_case_opened& x) {
  return f(caf::meta::type_name("kassa.recon_case_opened"), x.error, x.id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resolve_case& x) {
  return f(caf::meta::type_name("kassa.resolve_case"), x.id, x.action, x.direction, serial::wide{&x.amount}, x.by,
           x.note, x.client_id, x.ledgers);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_case_resolved& x) {
  return f(caf::meta::type_name("kassa.recon_case_resolved"), x.error, serial::enum_of(x.result), x.resolution);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_cases_request& x) {
  return f(caf::meta::type_name("kassa.recon_cases_request"), x.open_only, x.id_min, serial::count{&x.limit});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_cases_reply& x) {
  return f(caf::meta::type_name("kassa.recon_cases_reply"), x.error, x.cases, x.resolutions);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_status_request&) {
  return f(caf::meta::type_name("kassa.recon_status_request"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_provider_status& x) {
  return f(caf::meta::type_name("kassa.recon_provider_status"), x.provider, x.cursor, x.pending, x.last_error);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_status& x) {
  return f(caf::meta::type_name("kassa.recon_status"), x.matched, x.cases_open, x.cases_total, x.rounds,
           x.unmatched_rows, x.booking_rows_checked, x.booking_rows_queued, x.booking_rounds, x.booking_last_error,
           x.booking_scan_ids, x.booking_scan_passes, x.booking_scan_last_error, x.providers, x.last_error);
}

} // namespace kassa::actors
