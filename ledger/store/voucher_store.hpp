#pragma once
// The general ledger derived from the payments journal: its own LMDB environment
// (`<data_dir>/accounting/`) with one voucher per booking entry of the journal, the debit and
// credit totals per (GL account, ledger) and the journal cursor up to which both are complete;
// likewise the corrections booked by resolving reconciliation cases, with the cursor of the
// reconciliation store's resolutions. Vouchers, totals and cursors change in one transaction,
// so a crash never counts an entry twice or skips one. One writer (the accounting actor's
// committer); any thread or process may read. See docs/accounting.md.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ledger/store/error.hpp"
#include "ledger/store/store.hpp"
#include "primitives/u128.hpp"

struct MDB_env;
struct MDB_txn;

namespace kassa::ledger::store {

// One voucher (112 bytes): a debit and a credit of `amount` derived from one journal entry, or
// a correction: from one `book` resolution of a reconciliation case (step "case_to_account" or
// "case_to_suspense"), whose journal_sequence is the resolution's sequence
// (recon_resolution_entry), business_id the case id and row_id the case's payment row.
struct voucher {
  uint64_t journal_sequence = 0; // the entry it comes from; also the voucher's id
  uint64_t timestamp_ns = 0;     // the entry's
  u128 trace_id = 0;
  u128 business_id = 0;
  u128 row_id = 0;
  u128 amount = 0;
  uint32_t ledger = 0;           // the payment row's ledger (currency); 0 when unknown
  uint16_t debit_account = 0;    // payments::gl_account
  uint16_t credit_account = 0;
  uint16_t kind = 0;             // payments::kind of the entry
  uint16_t reserved[3] = {};
  char step[16] = {};
};
static_assert(sizeof(voucher) == 112);

// One write: the vouchers of a range of the payments journal and the corrections of a range of
// the reconciliation store's resolutions. Either range may be empty (before == after).
struct voucher_batch {
  std::vector<voucher> vouchers;    // journal_sequence in (cursor_before, cursor_after]
  uint64_t cursor_before = 0, cursor_after = 0;
  std::vector<voucher> corrections; // journal_sequence in (recon_cursor_before, recon_cursor_after]
  uint64_t recon_cursor_before = 0, recon_cursor_after = 0;
};

// The totals of one GL account in one ledger.
struct gl_total {
  uint16_t account = 0; // payments::gl_account
  uint32_t ledger = 0;
  u128 debits = 0;
  u128 credits = 0;
};

class voucher_store {
public:
  // Opens (creating when missing) the store at `path`. Null and `err` set on failure.
  static std::unique_ptr<voucher_store> open(const std::string& path, enum durability durability,
                                             uint64_t map_size_bytes, error& err);
  // Opens an existing store for reading only (MDB_RDONLY), also while kassad writes it.
  static std::unique_ptr<voucher_store> open_read_only(const std::string& path, error& err);
  ~voucher_store();
  voucher_store(const voucher_store&) = delete;
  voucher_store& operator=(const voucher_store&) = delete;

  // One write transaction (one fsync with durability fsync): adds `vouchers` to the store and
  // to the totals and moves the cursor from `cursor_before` to `cursor_after`. Refused
  // (errc::invalid_argument, nothing written) unless the stored cursor is `cursor_before`, so a
  // range of the journal is never counted twice. ok means durable. One thread at a time.
  error write(const std::vector<voucher>& vouchers, uint64_t cursor_before, uint64_t cursor_after);
  // The same for both ranges at once: refused unless both stored cursors are the batch's
  // `_before`, and both move in the one transaction that adds the vouchers.
  error write(const voucher_batch& batch);

  // As committed now (each its own read transaction).
  error read_cursor(uint64_t& cursor, uint64_t& vouchers) const;
  // Ordered by account, then ledger; with the cursor and voucher count of the same snapshot.
  error load_totals(std::vector<gl_total>& out, uint64_t* cursor = nullptr, uint64_t* vouchers = nullptr,
                    uint64_t* recon_cursor = nullptr) const;
  error vouchers_after(uint64_t journal_sequence, uint32_t limit, std::vector<voucher>& out) const;
  error corrections_after(uint64_t resolution_sequence, uint32_t limit, std::vector<voucher>& out) const;

  // As of open() or this process's last write.
  uint64_t cursor() const { return cursor_; }
  uint64_t recon_cursor() const { return recon_cursor_; } // the last resolution accounted for
  uint64_t vouchers() const { return vouchers_; }

private:
  voucher_store() = default;
  static std::unique_ptr<voucher_store> open_env(const std::string& path, bool read_only,
                                                 enum durability durability, uint64_t map_size_bytes,
                                                 error& err);
  error put_vouchers(MDB_txn* txn, const std::vector<voucher>& vouchers, bool corrections, uint64_t before,
                     uint64_t after);
  MDB_env* env_ = nullptr;
  unsigned dbi_vouchers_ = 0, dbi_totals_ = 0, dbi_meta_ = 0;
  unsigned dbi_corrections_ = 0; // 0: a format 1 store opened read only
  uint64_t cursor_ = 0, recon_cursor_ = 0, vouchers_ = 0;
};

} // namespace kassa::ledger::store
