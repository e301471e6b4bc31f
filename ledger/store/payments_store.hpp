#pragma once
// The payment core's durable state: its own LMDB environment (`<data_dir>/payments/`). It
// holds one row per payment (ledger/payments/records.hpp), the idempotency keys of the
// commands that created them, a journal of every state change (with trace and business ids),
// and the data directory's installation id and generations that provider ids are made of
// (ledger/payments/ids.hpp). One writer (the payments store actor) commits batches; any
// thread may read. See docs/payments.md and docs/storage.md.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/store/error.hpp"
#include "ledger/store/store.hpp"
#include "primitives/u128.hpp"

struct MDB_env;

namespace kassa::ledger::store {

// One entry of the payment journal (128 bytes): a step or a state change of one payment.
struct journal_entry {
  uint64_t sequence = 0;     // assigned by payments_store::write, increasing, never reused
  uint64_t timestamp_ns = 0;
  u128 trace_id = 0;
  u128 business_id = 0;      // the order
  u128 row_id = 0;           // the payment row (order, pay item or refund)
  u128 amount = 0;
  uint32_t result = 0;       // payments::payment_result
  uint16_t kind = 0;         // payments::kind
  uint16_t state = 0;        // payments::order_state after this entry
  char actor[16] = {};       // who wrote it: "order", "flow", "channel:alpha", ...
  char step[16] = {};        // the step or event: "provider_charge", "book", "callback", ...
};
static_assert(sizeof(journal_entry) == 128);

// One write transaction's worth of changes.
struct payments_batch {
  std::vector<payments::order> rows;                       // put (insert or replace)
  std::vector<payments::payment_command> keys;             // put under command.key
  std::vector<journal_entry> journal;                      // appended; sequences assigned
  std::vector<std::pair<std::string, uint64_t>> meta;      // cursors and counters
  bool empty() const {
    return rows.empty() && keys.empty() && journal.empty() && meta.empty();
  }
};

// Format 2 added the installation id and the generations; open() upgrades a store of format 1
// in place (its rows keep their legacy provider ids).
constexpr uint64_t payments_format_version = 2;

class payments_store {
public:
  // Creates the store (drawing its installation id) or opens it, upgrading format 1 in place.
  // A store marked restore_pending (a copy made by `kassa backup`) begins a new generation.
  static std::unique_ptr<payments_store> open(const std::string& path, enum durability durability,
                                              uint64_t map_size_bytes, error& err);
  // Opens an existing store for reading only (MDB_RDONLY): offline tools (`kassa trace`) read
  // it while kassad writes. write() on it fails.
  static std::unique_ptr<payments_store> open_read_only(const std::string& path, error& err);
  ~payments_store();
  payments_store(const payments_store&) = delete;
  payments_store& operator=(const payments_store&) = delete;

  // One write transaction, one fsync (with durability fsync). ok means durable. One writer
  // thread at a time. Journal sequences are written back into `batch`.
  error write(payments_batch& batch);

  // Reads: each its own read transaction; safe from any thread while the writer writes.
  error get_row(u128 id, payments::order& out, bool& found) const;
  error get_key(u128 key, payments::payment_command& out, bool& found) const;
  // The row whose sequence is `sequence` (payment ids and ledger transfer ids carry it).
  error find_sequence(uint64_t sequence, payments::order& out, bool& found) const;
  // Rows whose parent is `parent`, in creation order.
  error children(u128 parent, std::vector<payments::order>& out) const;
  // Every row, in id order; `visit` returns false to stop.
  error scan_rows(const std::function<bool(const payments::order&)>& visit) const;
  error journal_by_trace(u128 trace_id, std::vector<journal_entry>& out) const;
  error journal_by_row(u128 row_id, std::vector<journal_entry>& out) const;
  error journal_after(uint64_t sequence, uint32_t limit, std::vector<journal_entry>& out) const;
  error get_meta(const std::string& key, uint64_t& out, bool& found) const;
  // The journal's last sequence as committed now (a read transaction), for readers on other
  // threads or processes than the writer's; 0 when the journal is empty.
  error read_journal_last(uint64_t& out) const;

  // The provider ids of this data directory: fixed while the store is open (a new generation
  // begins only while no flow runs, at open or offline).
  const payments::provider_ids& ids() const { return ids_; }
  // Whether open() began the newest generation: a new store, an upgrade of format 1, or a
  // copy marked restore_pending.
  bool generation_begun_at_open() const { return generation_begun_at_open_; }
  // Offline, after a restore: a new generation (a fresh random nonce) for the rows from the
  // next sequence plus restore_sequence_gap on, so that no provider id nor ledger transfer id
  // the copy's original may have used since is used again.
  error begin_generation(uint32_t& number);
  // Marks a copy (a backup) so that the first open() of it begins a new generation.
  error mark_restore_pending();

  // The largest row sequence written, or the one before the newest generation's first when
  // that is larger (a restore moved the sequence on): the gateway numbers new rows after it.
  uint64_t sequence_last() const { return sequence_last_; }
  uint64_t journal_last() const { return journal_last_; }
  std::string path() const;

private:
  payments_store() = default;
  MDB_env* env_ = nullptr;
  unsigned dbi_rows_ = 0, dbi_keys_ = 0, dbi_seqs_ = 0, dbi_children_ = 0, dbi_journal_ = 0,
           dbi_traces_ = 0, dbi_row_journal_ = 0, dbi_meta_ = 0, dbi_generations_ = 0;
  enum durability durability_ = durability::fsync;
  uint64_t sequence_last_ = 0, journal_last_ = 0;
  payments::provider_ids ids_;
  bool generation_begun_at_open_ = false;
};

} // namespace kassa::ledger::store
