#pragma once
// The ledger's state machine: applies batches of create_accounts / create_transfers events to
// in-memory state and records what changed, for ledger/store to persist in one transaction.
// Pure code: no CAF, no I/O, no clock (the caller passes `now_ns`).
//
// Residency: every account is resident. Transfers are a cache: before a batch, a store-backed
// caller loads every transfer the batch names (ids and pending_ids) that exists on disk
// (`transfer_ids_to_prefetch` + `transfer_load`); after that, "absent" means "does not exist".
// Pending transfers that are still pending always stay resident (they can expire). A
// fingerprint of every id ever stored stays in memory (8 bytes an id), so that a new id needs
// no disk lookup: recovery registers each stored id with `transfer_id_load`.
#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ledger/id_map.hpp"
#include "ledger/result.hpp"
#include "ledger/types.hpp"

namespace kassa::ledger {

struct u128_hash {
  size_t operator()(u128 v) const noexcept { return static_cast<size_t>(id_hash(v)); }
};

// A pending transfer's resolution, persisted beside the transfer.
struct pending_update {
  u128 id;                // the pending transfer's id
  pending_status status;  // pending (new), posted, voided or expired
  uint64_t expires_at_ns; // 0 when the transfer never expires
  uint64_t timestamp = 0; // of the event that made this change: the creating, posting or
                          // voiding transfer, or the expiry's own stamp
};

// A balance snapshot for an account with the `history` flag, after a transfer touched it.
struct history_entry {
  u128 account_id;
  account_balance balance; // balance.timestamp is the transfer's timestamp
};

// Everything the batches applied since the last `changes_take()` changed, in apply order.
struct change_set {
  std::vector<account> accounts_created;
  std::vector<u128> accounts_updated;       // ids whose balances or flags changed; no repeats
  std::vector<account> account_rows;        // filled by changes_take(): the row of each id in
                                            // accounts_updated as it stands then, so that a
                                            // writer on another thread never reads the machine
  std::vector<transfer> transfers_created;  // strictly increasing timestamps
  std::vector<pending_update> pending_updates;
  std::vector<history_entry> history;
  uint64_t timestamp_last = 0;              // the largest timestamp assigned so far

  bool empty() const {
    return accounts_created.empty() && accounts_updated.empty() && transfers_created.empty() &&
           pending_updates.empty() && history.empty();
  }
};

// Marks in the `system` array of create_accounts / create_transfers: kassa's own event; or
// kassa's own event of a unit the directory decided as a whole already (an account of a linked
// chain that spanned shards, a leg of a transfer or chain across shards): its `linked` flag is
// data kept for the client, not a link to the next event, and a balancing transfer so marked
// moves its `amount` as given (the directory decided the clamp; the flags are data too).
// A post or void so marked was decided by the directory, which judges every deadline when
// there are several shards: the shard does not judge it again (docs/sharding.md).
// system_expire: the event is no transfer but the expiry, decided by the directory, of the
// pending transfer `pending_id` (nothing else of it counts): it releases the hold as a deadline
// does; an expired one answers ok again, and nothing is stored but the pending status.
constexpr uint8_t system_own = 1;
constexpr uint8_t system_unlinked = 2;
constexpr uint8_t system_expire = 4;

struct pending_state {
  pending_status status = pending_status::none;
  uint64_t expires_at_ns = 0;
  uint64_t changed_at = 0; // timestamp of the event that set this status; 0 = loaded from disk
};

// What a transfer event whose id is already stored returns: `exists` when it states the same
// transfer, else the first field that differs (exists_with_different_*).
transfer_result transfer_compare_existing(const transfer& event, const transfer& stored);

// A transfer event's own fields, in the order of the result codes. `head`: what comes before
// the `exists` check (timestamp, flags, id). `fields`: what comes after it for a transfer that
// is not a post or void, up to the account lookups (account ids, pending_id, timeout,
// closing, amount, ledger, code).
transfer_result transfer_check_head(const transfer& event);
transfer_result transfer_check_fields(const transfer& event);
// `resolve`: what comes after it for a post or void, up to the lookup of its pending transfer
// (flags, pending_id, timeout).
transfer_result transfer_check_resolve(const transfer& event);

class state_machine {
public:
  state_machine() = default;
  state_machine(const state_machine&) = delete;
  state_machine& operator=(const state_machine&) = delete;

  // --- batches -------------------------------------------------------------------------
  // One result per event, in input order. Each event is stamped with a strictly increasing
  // timestamp >= now_ns. Linked chains (flag `linked`) succeed or fail together.
  // `system`, when given, marks (non-zero) the events kassa writes itself: only those may use
  // the ids reserved in system_ids.hpp; a client's event that does is refused.
  // `stamps`, when given, holds the timestamp the directory chose for each event (0: none):
  // the event takes it when it is above every timestamp so far, else a stamp of its own (and
  // only if it applies), so timestamps stay strictly increasing whatever the directory sends. With several shards the
  // directory stamps every event from one clock, and both legs of a transfer across shards
  // alike.
  std::vector<account_result> create_accounts(const account* events, size_t count, uint64_t now_ns,
                                              const uint8_t* system = nullptr, const uint64_t* stamps = nullptr);
  std::vector<transfer_result> create_transfers(const transfer* events, size_t count, uint64_t now_ns,
                                                const uint8_t* system = nullptr, const uint64_t* stamps = nullptr);

  // Expires every pending transfer whose deadline is <= now_ns, releasing its hold.
  // Returns how many expired.
  size_t expire_pending(uint64_t now_ns);
  // The earliest deadline of a pending transfer, or 0 when none is pending with a timeout.
  uint64_t pending_deadline_next_ns() const;
  // The pending transfers whose deadline is <= now_ns, earliest first, at most `limit`; and in
  // `next_ns` the earliest deadline of the others (0 when there are none).
  std::vector<u128> pending_due(uint64_t now_ns, size_t limit, uint64_t& next_ns) const;

  // --- reads ---------------------------------------------------------------------------
  const account* account_find(u128 id) const;
  const transfer* transfer_find(u128 id) const;
  pending_state pending_find(u128 id) const;
  size_t account_count() const { return accounts_.size(); }
  size_t transfer_resident_count() const { return transfers_.size(); }
  size_t transfer_id_count() const { return transfer_ids_.size(); }
  uint64_t timestamp_last() const { return timestamp_last_; }
  template <class F> void accounts_for_each(F&& f) const {
    accounts_.for_each([&](const account_entry& e) { f(e.value); });
  }

  // --- loading (recovery and prefetch) -------------------------------------------------
  void account_load(const account& a);
  // `state` matters for pending transfers only.
  void transfer_load(const transfer& t, pending_state state);
  // Registers the id of a stored transfer that stays on disk (recovery).
  void transfer_id_load(u128 id) { transfer_ids_.insert(id); }
  void timestamp_last_load(uint64_t ts) { if (ts > timestamp_last_) timestamp_last_ = ts; }
  // Every stamp from now on is `lane` modulo `lanes`: shard k of n stamps in lane k, so no
  // two shards stamp alike and an account's history merged across shards has one order.
  void timestamp_lanes_set(uint32_t lane, uint32_t lanes);
  // The ids (transfer ids and pending ids) a batch needs that are not resident but may be
  // stored. Ids never stored are not listed.
  std::vector<u128> transfer_ids_to_prefetch(const transfer* events, size_t count) const;
  // Drops resident transfers until at most `count_max` remain (plus those that must stay).
  // Only what is durable may leave memory: a transfer stamped after `timestamp_durable`, or
  // whose pending status changed after it, would be missing or stale on disk, and its id
  // could be applied twice. Transfers still pending always stay.
  void transfers_evict(size_t count_max, uint64_t timestamp_durable);

  // --- changes -------------------------------------------------------------------------
  const change_set& changes() const { return changes_; }
  change_set changes_take();

private:
  struct undo_log;

  account_result create_account(const account& a, uint64_t timestamp);
  transfer_result create_transfer(const transfer& t, uint64_t timestamp, undo_log& undo);
  transfer_result post_or_void(const transfer& t, uint64_t timestamp, undo_log& undo);
  transfer_result expire_one(u128 pending_id, uint64_t timestamp);
  void pending_release(const transfer& p, uint64_t timestamp);
  transfer_result reserved_check(u128 id, u128 debit_account_id, u128 credit_account_id) const;
  uint64_t timestamp_next(uint64_t now_ns);
  template <class Result, class Apply> Result stamped(uint64_t given, uint64_t now_ns, Apply&& apply);
  void account_touch(u128 id, undo_log* undo);
  void history_record(const account& a, uint64_t timestamp);
  void pending_set(u128 id, pending_state state, undo_log* undo);
  void rollback(undo_log& undo);

  // An account and whether it is already listed in changes_.accounts_updated.
  struct account_entry {
    account value;
    bool updated;
  };
  struct account_entry_id {
    u128 operator()(const account_entry& e) const { return e.value.id; }
  };
  struct transfer_id {
    u128 operator()(const transfer& t) const { return t.id; }
  };
  account& account_at(u128 id);

  id_map<account_entry, account_entry_id> accounts_;
  id_map<transfer, transfer_id> transfers_;
  fingerprint_set transfer_ids_; // every id stored, resident or not
  std::unordered_map<u128, pending_state, u128_hash> pending_;  // only status != none
  std::multimap<uint64_t, u128> expiry_;                        // deadline -> pending id
  change_set changes_;
  uint64_t timestamp_last_ = 0;
  uint32_t timestamp_lane_ = 0, timestamp_lanes_ = 1;
  bool system_event_ = false;  // the event being applied is kassa's own
  bool decided_event_ = false; // ... and was decided whole already (system_unlinked)
};

} // namespace kassa::ledger
