#pragma once
// Reconciliation's own LMDB environment (`<data_dir>/recon/`): the cases it opened, each
// provider's statement cursor, the statement lines waiting for their payment to become final,
// and the payment ids the statements already showed, and the journal of how each case was
// resolved, numbered in the order they were made. Cursor, cases and seen ids change in one
// transaction, so a restart neither re-opens a case nor forgets one. One writer (the
// reconciler's committer); any thread or process may read. See docs/accounting.md.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/payments/case_resolution.hpp"
#include "ledger/store/error.hpp"
#include "ledger/store/store.hpp"
#include "primitives/u128.hpp"

struct MDB_env;

namespace kassa::ledger::store {

enum class case_kind : uint8_t {
  none = 0,
  missing_internal = 1, // the statement shows money kassa has no (or no final, or zero) record of
  missing_provider = 2, // kassa recorded provider money the statement never showed
  amount_mismatch = 3,  // both know the payment, with different amounts
  suspense = 4,         // the payment core parked money in suspense (opened by the core)
  // rows <-> ledger: the payment row against the bookings it names (payments/booking_check.hpp)
  missing_booking = 5,         // the row booked (its journal says so, or it completed) but the ledger has no such booking
  booking_amount_mismatch = 6, // the booking is there with another amount than the row noted
  row_status_mismatch = 7,     // the row failed, yet the ledger holds a booking that moved its money
  // ledger -> rows: a payment-core booking (payments::transfer_id) whose row does not exist
  booking_without_row = 8,
};
enum class case_status : uint8_t { open = 1, resolved = 2 };

std::string_view name(case_kind k);
std::string_view name(case_status s);

constexpr size_t provider_bytes = 16; // a provider name, zero-padded (payments::provider_name_bytes)

// One reconciliation case (144 bytes).
struct recon_case {
  uint64_t id = 0;                 // assigned by recon_store::write, increasing from 1
  uint64_t opened_ns = 0;
  uint64_t resolved_ns = 0;        // 0 while open
  uint64_t statement_sequence = 0; // the statement line it comes from; 0 for none
  u128 payment_id = 0;             // the provider payment id (payments::payment_id); for a
                                   // rows <-> ledger case the ledger transfer id (0: none known)
  u128 row_id = 0;                 // the payment row; 0 when kassa has none
  u128 trace_id = 0;
  u128 internal_amount = 0;        // what kassa recorded (the row)
  u128 provider_amount = 0;        // what the provider reported; for a rows <-> ledger case,
                                   // what the ledger holds (0: no booking)
  uint32_t ledger = 0;
  uint8_t kind = 0;                // case_kind
  uint8_t status = 0;              // case_status
  uint16_t reserved = 0;
  char provider[provider_bytes] = {};
  uint64_t reserved2 = 0;
};
static_assert(sizeof(recon_case) == 144);

using payments::case_action;
using payments::case_direction;

constexpr size_t resolution_by_bytes = 32;   // who, as the operator named themself, zero-padded
constexpr size_t resolution_note_bytes = 128; // why, zero-padded UTF-8

// One entry of the resolution journal (256 bytes): who resolved a case, when, how, and the
// correcting transfer it booked. Written in the transaction that marks the case resolved.
struct recon_resolution {
  uint64_t case_id = 0;
  uint64_t resolved_ns = 0;
  uint64_t client_id = 0;          // the authenticated client that asked; 0: none authenticated
  uint8_t action = 0;              // case_action
  uint8_t direction = 0;           // case_direction; none unless book
  uint16_t reserved = 0;
  uint32_t reserved2 = 0;
  u128 transfer_id = 0;            // the correcting transfer; 0 when none was booked
  u128 amount = 0;                 // what it moved
  u128 debit_account_id = 0;
  u128 credit_account_id = 0;
  char by[resolution_by_bytes] = {};
  char note[resolution_note_bytes] = {};
};
static_assert(sizeof(recon_resolution) == 256);

// A resolution with its place in the order resolutions were made in (1, 2, ...): the sequence
// the accounting actor tails to book corrections in the general ledger.
struct recon_resolution_entry {
  uint64_t sequence = 0;
  recon_resolution resolution;
};

// A statement line kept until its payment row is final or its grace runs out (80 bytes).
struct recon_pending {
  char provider[provider_bytes] = {};
  uint64_t sequence = 0;      // in the provider's statement
  uint64_t first_seen_ns = 0; // when reconciliation first read it
  u128 payment_id = 0;
  u128 amount = 0;
  uint32_t ledger = 0;
  uint8_t kind = 0;           // the channel's call_kind
  uint8_t status = 0;         // the channel's call_status
  uint16_t reserved = 0;
  uint64_t reserved2 = 0;
};
static_assert(sizeof(recon_pending) == 80);

// What a statement line (or a missing_provider check) found out about a payment id.
constexpr uint8_t seen_matched = 0;            // the statement showed it and it matched
constexpr uint8_t seen_only_missing_case = 0x80; // not in a statement yet; a missing_provider case is open
// other values: the case_kind the statement line opened

// One write transaction's worth of changes.
struct recon_batch {
  // Added; `id` and, when 0, `status` (open) are written back. A case equal to one already
  // stored (same kind, provider, row, payment id, statement sequence and amounts) is skipped
  // and keeps id 0: opening a case twice is harmless.
  std::vector<recon_case> cases;
  // Each resolves its open case and is journaled; one whose case is unknown or no longer open
  // is skipped and changes nothing. `resolutions_applied` is written back, one flag each.
  std::vector<recon_resolution> resolutions;
  std::vector<bool> resolutions_applied;
  std::vector<std::pair<u128, uint8_t>> seen;         // payment id -> seen_* / case_kind
  std::vector<recon_pending> pending_add;
  std::vector<recon_pending> pending_remove;          // by provider and sequence
  std::vector<std::pair<std::string, uint64_t>> cursors; // provider -> last statement sequence read
  uint64_t matched = 0;                               // statement lines matched, added to the count
  uint64_t booking_rows_checked = 0;                  // rows whose bookings were looked up, added
  uint64_t booking_journal_cursor = 0;                // when not 0: every row the payments journal
                                                      // named up to here had its bookings looked up
  bool empty() const {
    return cases.empty() && resolutions.empty() && seen.empty() && pending_add.empty() && pending_remove.empty() &&
           cursors.empty() && matched == 0 && booking_rows_checked == 0 && booking_journal_cursor == 0;
  }
};

struct recon_counters {
  uint64_t matched = 0;     // statement lines matched, ever
  uint64_t cases_open = 0;
  uint64_t cases_total = 0; // the last case id
  uint64_t booking_rows_checked = 0;   // rows whose bookings were looked up in the ledger, ever
  uint64_t booking_journal_cursor = 0; // see recon_batch
  uint64_t resolution_sequence_last = 0; // resolutions journaled, ever (the last sequence)
};

class recon_store {
public:
  static std::unique_ptr<recon_store> open(const std::string& path, enum durability durability,
                                           uint64_t map_size_bytes, error& err);
  // Opens an existing store for reading only (MDB_RDONLY), also while kassad writes it.
  static std::unique_ptr<recon_store> open_read_only(const std::string& path, error& err);
  ~recon_store();
  recon_store(const recon_store&) = delete;
  recon_store& operator=(const recon_store&) = delete;

  // One write transaction (one fsync with durability fsync). ok means durable. One writer.
  error write(recon_batch& batch);

  // Each its own read transaction.
  error load_cases(bool open_only, std::vector<recon_case>& out) const; // by id
  // At most `limit` cases with id >= id_min, by id: one page.
  error load_cases(bool open_only, uint64_t id_min, size_t limit, std::vector<recon_case>& out) const;
  error get_case(uint64_t id, recon_case& out, bool& found) const;
  // The journal entry of a resolved case; found false for an open case, an unknown one, or one
  // resolved before the journal existed (format 1).
  error get_resolution(uint64_t case_id, recon_resolution& out, bool& found) const;
  // At most `limit` resolutions journaled after `sequence`, in the order they were made (a store
  // upgraded from format 1 or 2 numbered its earlier ones by case id). Empty for a reader of a
  // store kassad has not upgraded yet.
  error resolutions_after(uint64_t sequence, uint32_t limit, std::vector<recon_resolution_entry>& out) const;
  error load_cursors(std::map<std::string, uint64_t>& out) const;
  error load_pending(std::vector<recon_pending>& out) const;
  // For each payment id what is known of it (seen_* or the case_kind a statement line opened),
  // or -1 when neither a statement showed it nor a missing_provider case covers it.
  error seen(const std::vector<u128>& payment_ids, std::vector<int>& out) const;
  error read_counters(recon_counters& out) const;

private:
  recon_store() = default;
  static std::unique_ptr<recon_store> open_env(const std::string& path, bool read_only,
                                               enum durability durability, uint64_t map_size_bytes,
                                               error& err);
  MDB_env* env_ = nullptr;
  unsigned dbi_cases_ = 0, dbi_case_keys_ = 0, dbi_seen_ = 0, dbi_pending_ = 0, dbi_cursors_ = 0, dbi_meta_ = 0;
  unsigned dbi_resolutions_ = 0; // 0: a format 1 store opened read only (no journal yet)
  unsigned dbi_resolution_order_ = 0; // 0: a format 1 or 2 store opened read only
};

} // namespace kassa::ledger::store
