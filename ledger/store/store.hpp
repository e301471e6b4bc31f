#pragma once
// Durable LMDB persistence of one shard's ledger state machine: one directory, one LMDB
// environment, one writer thread. See docs/storage.md for the tables and the guarantees.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ledger/state_machine.hpp"
#include "ledger/store/error.hpp"
#include "ledger/types.hpp"

struct MDB_txn;

namespace kassa::ledger::store {

enum class durability {
  fsync, // commit() returns ok only after fdatasync of data and meta page: survives power loss
  none,  // MDB_NOSYNC: survives kill -9 (the page cache has it), not an OS crash or power loss
};

struct options {
  std::string path;                            // directory; created when missing
  enum durability durability = durability::fsync;
  uint64_t map_size_bytes = 64ull << 30;       // upper bound of the data file
  size_t transfers_resident_max = 1'000'000;   // for the caller's sm.transfers_evict()
  // Account rows are a checkpoint: a commit journals its events and the store keeps changed
  // rows in memory (at most one per account) until a checkpoint writes them, after this many
  // commits or transfers since the last one, and at close. Recovery replays at most that.
  // Transfers are the real bound (replay work, index tail); the commit count only caps
  // commits without transfers (expirations, new accounts).
  uint32_t checkpoint_commits_max = 4096;
  uint32_t checkpoint_transfers_max = 524'288;
  // account_transfers is indexed in bulk after this many commits or transfers; queries scan
  // the transfers not yet indexed (up to ~20 ms at 524,288), so this bounds their extra work.
  // Fewer, larger passes are cheaper per transfer: each pass rewrites the last index page of
  // every account it touches (docs/storage.md has the measurements).
  uint32_t index_commits_max = 4096;
  uint32_t index_transfers_max = 524'288;
  bool checkpoint_on_close = true; // the destructor calls checkpoint() (errors ignored)
};

// What the last commit did and where its time went, for benchmarks and metrics.
struct commit_stats {
  uint64_t sequence = 0;
  size_t transfers = 0;
  size_t accounts_written = 0;  // created rows, plus every changed row at a checkpoint
  size_t transfers_indexed = 0; // account_transfers built in this commit (0 between)
  bool checkpoint = false;      // this commit wrote the account rows
  uint64_t write_ns = 0; // building the transaction (puts into LMDB's dirty pages)
  uint64_t sync_ns = 0;  // mdb_txn_commit: writing the dirty pages, fsync, meta page
};

// Range query over the `account_transfers` and `history` indexes (TigerBeetle's AccountFilter).
struct account_filter {
  u128 account_id = 0;
  uint64_t timestamp_min = 0; // inclusive; 0 = unbounded
  uint64_t timestamp_max = 0; // inclusive; 0 = unbounded
  uint32_t limit = 0;         // results at most; must be > 0
  bool debits = true;         // transfers where the account is the debit side
  bool credits = true;        // transfers where the account is the credit side
  bool reversed = false;      // newest first
};

class store {
public:
  // Opens (creating when missing) the store at `o.path` and checks that meta and journal
  // agree. Returns null and sets `err` on failure.
  static std::unique_ptr<store> open(const options& o, error& err);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Recovery: loads every account (its row brought forward by the journal after the last
  // checkpoint, which open() replays), every still-pending transfer with its pending state,
  // the id of every stored transfer (sm.transfer_id_load) and timestamp_last into `sm` (empty).
  error load(state_machine& sm);

  // Writes every account row changed since the last checkpoint and indexes the transfers not
  // yet in account_transfers, in one transaction (fsync'ed like a commit). Changes nothing a
  // reader can see; it shortens recovery. commit() checkpoints on its own now and then; call
  // this on an orderly shutdown (the destructor does with checkpoint_on_close). Writer thread
  // only, like commit().
  error checkpoint();

  // Before a create_transfers batch: loads into `sm` every transfer the batch names (ids and
  // pending ids) that is on disk but not resident, with its pending state.
  error prefetch(state_machine& sm, const transfer* events, size_t count);

  // Group commit: writes `changes` (any number of batches, as returned by changes_take()) in
  // one write transaction and, with durability fsync, one fsync. Reads nothing but `changes`
  // (account rows come from changes.account_rows), so the caller may keep applying new
  // batches to its state machine on another thread while this runs.
  // ok means durable. On failure the transaction is aborted, the disk holds the previous
  // commit, and the caller must rebuild its state machine with load() before going on.
  error commit(const change_set& changes);

  // --- reads: each runs in its own read transaction; safe from any thread, concurrently
  // with commit(). Missing ids are skipped: `out` holds the found records in input order.
  error lookup_accounts(const u128* ids, size_t count, std::vector<account>& out) const;
  error lookup_transfers(const u128* ids, size_t count, std::vector<transfer>& out) const;
  error lookup_pending(u128 id, pending_state& out) const; // status none when unknown
  // The stored transfers whose id lies in [id_min, id_end), in id order, at most `limit` (> 0):
  // a cursor walk of transfer_ids. Fewer than `limit` means the range holds no more.
  error transfers_by_id(u128 id_min, u128 id_end, size_t limit, std::vector<transfer>& out) const;
  error account_transfers(const account_filter& filter, std::vector<transfer>& out) const;
  error account_balances(const account_filter& filter, std::vector<account_balance>& out) const;

  uint64_t commit_sequence() const { return commit_sequence_; }
  // Account rows on disk hold every event stamped <= this; account_transfers every transfer
  // stamped <= account_transfers_indexed(). Writer thread only.
  uint64_t checkpoint_timestamp() const;
  uint64_t account_transfers_indexed() const;
  uint64_t timestamp_last() const { return timestamp_last_; }
  const options& opts() const { return options_; }
  const commit_stats& last_commit() const { return last_commit_; }

private:
  struct impl;
  explicit store(const options& o);
  // The phases of open(), in order, in its one transaction (store.cpp).
  error open_tables(MDB_txn* txn, bool& index_dropped);
  error open_format(MDB_txn* txn);
  error open_meta(MDB_txn* txn, bool index_dropped);
  error open_check_last_commit(MDB_txn* txn);
  error recover(MDB_txn* txn);

  options options_;
  std::unique_ptr<impl> impl_;
  uint64_t commit_sequence_ = 0;
  uint64_t timestamp_last_ = 0;
  uint64_t transfer_timestamp_last_ = 0;
  commit_stats last_commit_;
};

} // namespace kassa::ledger::store
