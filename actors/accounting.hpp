#pragma once
// The accounting actor: off the core link, it tails the payments journal from its durable
// cursor and turns booking entries into general-ledger vouchers (ledger/payments/gl.hpp) in
// its own store (`<data_dir>/accounting/`); likewise the reconciliation store's resolutions,
// each `book` of a case a correction voucher. It may lag or fail without slowing a payment: no
// actor of the payment core ever waits for it, and it catches up when it can. See
// docs/accounting.md.
#include <caf/all.hpp>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/serial.hpp"
#include "actors/serial_payments.hpp"
#include "ledger/store/payments_store.hpp"
#include "ledger/store/recon_store.hpp"
#include "ledger/store/store.hpp"
#include "ledger/store/voucher_store.hpp"

namespace kassa::actors {

struct accounting_options {
  std::shared_ptr<ledger::store::payments_store> payments; // read only: journal_after, get_row
  // Read only: resolutions_after, get_case. Null when reconciliation is off: no corrections.
  std::shared_ptr<ledger::store::recon_store> recon;
  std::string path;                                        // its own LMDB environment
  ledger::store::durability durability = ledger::store::durability::fsync;
  uint64_t map_size_bytes = uint64_t{1} << 30;
  uint32_t interval_ms = 200;        // how often it reads the journal when it has caught up
  uint32_t batch_events_max = 4096;  // journal entries, and resolutions, per transaction of its store
  std::function<void(const std::string&)> log_error; // told once per new error
};

// Stops (true) or restarts (false) the tailing; what was committed stays.
struct accounting_pause {
  bool paused = false;
};
// Fault injection: while `failing`, every write of its store fails as a full disk would; it
// retries each interval and never moves its cursor on a failure.
struct accounting_fail {
  bool failing = false;
};
struct accounting_status_request {};
struct accounting_status {
  uint64_t cursor = 0;       // the last journal entry accounted for (durable)
  uint64_t journal_last = 0; // the journal's last entry now: journal_last - cursor is the lag
  uint64_t recon_cursor = 0; // the last case resolution accounted for (durable)
  uint64_t resolution_last = 0; // the reconciliation store's last resolution now (0: none or off)
  uint64_t vouchers = 0;     // written, ever
  std::string last_error;    // of the last failed read or write; empty after a success
  bool paused = false;
};
// The GL totals as committed (what `kassa gl` prints), read from its store.
struct accounting_totals_request {};
struct accounting_totals {
  ledger::store::error error;
  std::vector<ledger::store::gl_total> totals; // by account, then ledger
  uint64_t cursor = 0;
  uint64_t recon_cursor = 0;
  uint64_t vouchers = 0;
};

// Opens the store at opts.path and spawns the actor; a null handle and `err` set when the
// store cannot be opened.
caf::actor spawn_accounting(caf::actor_system& sys, accounting_options opts, ledger::store::error& err);

// ------------------------------------------------------------------ serialisation
// Each message also has an `inspect` overload (gl_total in actors/serial_payments.hpp), so
// that CAF can serialise it.

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounting_pause& x) {
  return f(caf::meta::type_name("kassa.accounting_pause"), x.paused);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounting_fail& x) {
  return f(caf::meta::type_name("kassa.accounting_fail"), x.failing);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounting_status_request&) {
  return f(caf::meta::type_name("kassa.accounting_status_request"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounting_status& x) {
  return f(caf::meta::type_name("kassa.accounting_status"), x.cursor, x.journal_last, x.recon_cursor,
           x.resolution_last, x.vouchers, x.last_error, x.paused);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounting_totals_request&) {
  return f(caf::meta::type_name("kassa.accounting_totals_request"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounting_totals& x) {
  return f(caf::meta::type_name("kassa.accounting_totals"), x.error, x.totals, x.cursor, x.recon_cursor, x.vouchers);
}

} // namespace kassa::actors
