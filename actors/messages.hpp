#pragma once
// Messages between the ledger's actors: the directory, the shards and their writers. Inside
// one process they travel as plain C++ values (moved, never copied into bytes); each also has
// an `inspect` overload (below; the ledger's values in actors/serial.hpp), so that CAF can
// serialise it, as a message to another node must be.
#include <caf/all.hpp>
#include <cstdint>
#include <vector>

#include "ledger/planner.hpp"
#include "ledger/state_machine.hpp"
#include "ledger/store/store.hpp"
#include "ledger/types.hpp"
#include "actors/serial.hpp"

namespace kassa::actors {

// The context every request carries from the wire through every actor.
struct request_context {
  u128 trace_id = 0;
  u128 business_id = 0;
  uint64_t client_id = 0;
  uint64_t deadline_ns = 0; // unix epoch; 0 = none
  bool shadow = false;
  // Steady clock (metrics::steady_ns) when the session handed the request to the ledger: the
  // shard that applies it records the routing stage. 0: not measured (kassa's own work).
  uint64_t handed_ns = 0;
};

// Why a request as a whole was not carried out. `ok` means the per-event results hold.
enum class outcome : uint16_t {
  ok = 0,
  busy,              // too much work queued: nothing applied, retry later
  store_unavailable, // a commit failed: nothing of this request was acknowledged; retry
  deadline_exceeded, // the deadline passed before the work started: nothing applied
  shutting_down,     // the daemon is draining: nothing applied
  filter_invalid,    // a query filter breaks its rules
  too_many,          // the answer would not fit in one reply: ask for less
};

struct event_result {
  uint32_t index;
  uint32_t code;
};

// `system` is empty for a client's request; the directory marks (non-zero, one per event)
// the events kassa writes itself, which alone may use the reserved ids (system_ids.hpp).
// `stamps` is empty for a client's request; the directory sends a shard the timestamp it
// chose for each event (state_machine::create_transfers), one clock for every shard.
struct create_accounts_request {
  request_context ctx;
  std::vector<ledger::account> events;
  std::vector<uint8_t> system;
  std::vector<uint64_t> stamps = {};
};
struct create_transfers_request {
  request_context ctx;
  std::vector<ledger::transfer> events;
  std::vector<uint8_t> system;
  std::vector<uint64_t> stamps = {};
};
// Only events that did not return ok are listed, in index order. `timestamp_last`: the
// shard's latest timestamp once it applied the batch (the directory's clock keeps above it).
struct create_reply {
  outcome status = outcome::ok;
  std::vector<event_result> failures;
  uint64_t timestamp_last = 0;
};

struct lookup_accounts_request {
  request_context ctx;
  std::vector<u128> ids;
};
struct lookup_transfers_request {
  request_context ctx;
  std::vector<u128> ids;
};
struct accounts_reply {
  outcome status = outcome::ok;
  std::vector<ledger::account> accounts;
  uint64_t timestamp_last = 0; // to system_accounts_request: the shard's latest timestamp
};
struct transfers_reply {
  outcome status = outcome::ok;
  std::vector<ledger::transfer> transfers;
};

struct account_transfers_request {
  request_context ctx;
  ledger::store::account_filter filter;
};
struct account_balances_request {
  request_context ctx;
  ledger::store::account_filter filter;
};
struct balances_reply {
  outcome status = outcome::ok;
  std::vector<ledger::account_balance> balances;
};

// Directory -> shard: what the shard holds of these transfer ids, in memory or on disk, as of
// every message the shard took before this one. One entry per id the shard holds, in order;
// `index` is the id's position in the request.
struct probe_request {
  std::vector<u128> ids;
};
using ledger::probe_entry; // ledger/planner.hpp
struct probe_reply {
  outcome status = outcome::ok;
  std::vector<probe_entry> entries;
};

// Inside kassa only (no wire opcode): the transfers whose id lies in [id_min, id_end), in id
// order, at most `limit` (1 .. the shards' query_limit_max; beyond: too_many, 0: filter_invalid).
// A shard answers from its store (durable transfers) with each one's pending status; the
// directory merges the shards and shows a transfer across shards once, as written, like
// lookup_transfers. `next` is where the next page starts: id_end once the range is done.
struct transfers_by_id_request {
  u128 id_min = 0;
  u128 id_end = 0;
  uint32_t limit = 0;
};
struct transfers_by_id_reply {
  outcome status = outcome::ok;
  std::vector<ledger::transfer> transfers;
  u128 next = 0;
};
// Shard -> directory: the same, as probe entries; `full` when it stopped at `limit`.
struct shard_transfers_by_id_reply {
  outcome status = outcome::ok;
  std::vector<probe_entry> entries;
  bool full = false;
};

// Directory -> shard, when the directory judges deadlines (several shards, or hot accounts):
// from now on the shard expires no pending transfer of its own accord; the directory asks
// which are due (`due_pending_request`) and expires them in its rounds, so that a post or void
// it decided never meets a pending transfer that its shard expired meanwhile.
struct expiry_handover {};
// Directory -> shard: the pending transfers whose deadline is <= now_ns, earliest first, at
// most `limit`, and the earliest deadline of the others (0: none).
struct due_pending_request {
  uint64_t now_ns = 0;
  uint32_t limit = 0;
};
struct due_pending_reply {
  outcome status = outcome::ok;
  std::vector<u128> ids;
  uint64_t next_ns = 0;
};

// Directory -> shard: every account in the reserved id space (clearing and sub-accounts).
struct system_accounts_request {};

// Shard -> writer: one group commit; writer -> shard: its outcome.
struct commit_group {
  uint64_t group;
  ledger::change_set changes;
};
struct commit_done {
  uint64_t group;
  ledger::store::error error;
  ledger::store::commit_stats stats;
};

// Asks a shard to commit everything it has applied and answer once it is durable.
using drain_atom = caf::atom_constant<caf::atom("drain")>;
// A shard's timer for the next pending-transfer deadline.
using expire_atom = caf::atom_constant<caf::atom("expire")>;
// A shard's timer for a group that waited commit_delay for more work.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
// The directory's timer: sweeps of split accounts, and retries of unresolved rounds.
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;

// ------------------------------------------------------------------ serialisation

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_context& x) {
  return f(caf::meta::type_name("kassa.request_context"), serial::wide{&x.trace_id}, serial::wide{&x.business_id},
           x.client_id, x.deadline_ns, x.shadow, x.handed_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_result& x) {
  return f(caf::meta::type_name("kassa.event_result"), x.index, x.code);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_accounts_request& x) {
  return f(caf::meta::type_name("kassa.create_accounts_request"), x.ctx, x.events, x.system, x.stamps);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_transfers_request& x) {
  return f(caf::meta::type_name("kassa.create_transfers_request"), x.ctx, x.events, x.system, x.stamps);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_reply& x) {
  return f(caf::meta::type_name("kassa.create_reply"), serial::enum_of(x.status), x.failures, x.timestamp_last);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_accounts_request& x) {
  return f(caf::meta::type_name("kassa.lookup_accounts_request"), x.ctx, serial::wide_list{&x.ids});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_transfers_request& x) {
  return f(caf::meta::type_name("kassa.lookup_transfers_request"), x.ctx, serial::wide_list{&x.ids});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accounts_reply& x) {
  return f(caf::meta::type_name("kassa.accounts_reply"), serial::enum_of(x.status), x.accounts, x.timestamp_last);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfers_reply& x) {
  return f(caf::meta::type_name("kassa.transfers_reply"), serial::enum_of(x.status), x.transfers);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_transfers_request& x) {
  return f(caf::meta::type_name("kassa.account_transfers_request"), x.ctx, x.filter);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_balances_request& x) {
  return f(caf::meta::type_name("kassa.account_balances_request"), x.ctx, x.filter);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, balances_reply& x) {
  return f(caf::meta::type_name("kassa.balances_reply"), serial::enum_of(x.status), x.balances);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_request& x) {
  return f(caf::meta::type_name("kassa.probe_request"), serial::wide_list{&x.ids});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_reply& x) {
  return f(caf::meta::type_name("kassa.probe_reply"), serial::enum_of(x.status), x.entries);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfers_by_id_request& x) {
  return f(caf::meta::type_name("kassa.transfers_by_id_request"), serial::wide{&x.id_min}, serial::wide{&x.id_end},
           x.limit);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfers_by_id_reply& x) {
  return f(caf::meta::type_name("kassa.transfers_by_id_reply"), serial::enum_of(x.status), x.transfers,
           serial::wide{&x.next});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_transfers_by_id_reply& x) {
  return f(caf::meta::type_name("kassa.shard_transfers_by_id_reply"), serial::enum_of(x.status), x.entries, x.full);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, expiry_handover&) {
  return f(caf::meta::type_name("kassa.expiry_handover"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, due_pending_request& x) {
  return f(caf::meta::type_name("kassa.due_pending_request"), x.now_ns, x.limit);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, due_pending_reply& x) {
  return f(caf::meta::type_name("kassa.due_pending_reply"), serial::enum_of(x.status), serial::wide_list{&x.ids},
           x.next_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, system_accounts_request&) {
  return f(caf::meta::type_name("kassa.system_accounts_request"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_group& x) {
  return f(caf::meta::type_name("kassa.commit_group"), x.group, x.changes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_done& x) {
  return f(caf::meta::type_name("kassa.commit_done"), x.group, x.error, x.stats);
}

} // namespace kassa::actors

