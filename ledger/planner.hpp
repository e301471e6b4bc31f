#pragma once
// The round planner: how the directory turns the create requests of a round into one batch
// per shard, with the answers of every event the shards do not decide themselves. Pure code,
// next to the state machine it plans with: no CAF, no I/O, no clock (the caller passes the
// round's `now` and the clock for its stamps). The directory (actors/directory.cpp) is the
// shell around it: it probes the shards (`round::probed`, `round::accounts`), calls
// `plan_round`, writes the round's redo record, sends the batches and answers.
//
// What it decides (docs/sharding.md, "Rounds"): every transfer, linked chain of transfers and
// linked chain of accounts across shards is decided by a model (the single-shard state
// machine loaded with what the probe found), in request order, so that each sees what the
// events before it did, wherever the accounts live. A refused unit is answered here and goes
// to no shard; an applied one goes to its shard as it came, or across shards as legs through
// the clearing accounts of the pair (a saga). Ids the shards already hold are answered from
// what they hold. Credits to split hot accounts land on sub-accounts; a debit of a split
// account first gathers its sub-accounts into it. Every event is stamped from one clock.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ledger/state_machine.hpp"
#include "ledger/types.hpp"

namespace kassa::ledger {

// The shard an account (or sub-account, or clearing account) lives in.
uint32_t shard_of(u128 account_id, uint32_t shards);

// What a shard holds of one transfer id (the answer to a probe).
struct probe_entry {
  uint32_t index = 0;
  ledger::transfer transfer{};
  pending_status status = pending_status::none;
  uint64_t expires_at_ns = 0; // of a pending transfer still pending with a timeout
};

namespace planner {

// Marks a plain credit may carry and still land on a sub-account of a split hot account.
constexpr uint16_t plain_flags = transfer_linked;

// The part of a queued create request the planner reads and answers.
struct request {
  bool accounts = false;
  std::vector<account> account_events;
  std::vector<transfer> transfer_events;
  std::vector<uint8_t> system;   // kassa's own events (sweeps, expiries); empty for a client's
  std::vector<uint32_t> results; // one per event; 0 = ok
  size_t cursor = 0;             // events before it are decided

  size_t size() const { return accounts ? account_events.size() : transfer_events.size(); }
  size_t remaining() const { return size() - cursor; }
};

// Where an event a shard applies came from.
struct origin {
  request* w;      // null: kassa's own bookkeeping (clearing or sub-account creation)
  uint32_t index;  // the event in w
  int saga = -1;   // index into round::sagas, or -1 for an event applied as it came
};

struct shard_batch {
  std::vector<account> accounts;
  std::vector<uint8_t> accounts_system;
  std::vector<origin> accounts_origin;
  std::vector<uint64_t> accounts_stamp;
  std::vector<transfer> transfers;
  std::vector<uint8_t> transfers_system;
  std::vector<origin> transfers_origin;
  // While planning: the event's place in the round (legs of one event share it); once
  // planned, its timestamp.
  std::vector<uint64_t> transfers_stamp;
};

// A transfer (or linked chain) across shards, already decided: every event of it applies.
struct saga_plan {
  request* w;
  uint32_t first, last; // the client events [first, last] it covers
};

// What the shards hold for one transfer id, gathered by a probe.
struct held {
  std::vector<std::pair<uint32_t, probe_entry>> entries; // (shard, entry)
  bool found() const { return !entries.empty(); }
  const probe_entry* in(uint32_t shard) const {
    for (const auto& [s, e] : entries) if (s == shard) return &e;
    return nullptr;
  }
};

struct hot_state {
  uint32_t sub_accounts = 0;           // 0: not split
  std::vector<bool> created;           // per sub-account: may exist (reads look for it)
  std::vector<bool> confirmed;         // per sub-account: its creation is durable
  uint32_t ledger = 0;                 // of the parent, once seen
  bool history = false;                // the parent keeps balance history: so do its sub-accounts
  std::vector<std::vector<uint32_t>> by_shard; // sub-account indexes per shard (cached)
};

// What the planner keeps from round to round (the directory's routing state).
struct state {
  uint32_t shards = 1;
  // Adaptive splitting: an account that takes `adaptive_credits_min` credits within
  // `adaptive_window_ns` is split in `adaptive_sub_accounts` (0: never).
  uint64_t adaptive_window_ns = 0;
  uint32_t adaptive_credits_min = 0;
  uint32_t adaptive_sub_accounts = 8;
  uint64_t system_sequence = 0; // kassa's own transfer ids (sid::transfer)
  // The latest timestamp a shard holds, as far as the planner knows (every shard's reply
  // says); a round stamps its events above it, from one clock for every shard.
  uint64_t stamp_last = 0;
  std::unordered_set<u128, u128_hash> clearing_known;
  std::unordered_map<u128, hot_state, u128_hash> hot;        // parent -> split state
  std::unordered_map<u128, u128, u128_hash> sub_parent;      // sub-account -> parent
  std::unordered_map<u128, uint32_t, u128_hash> credits_seen; // adaptive: in this window
  uint64_t window_start_ns = 0;
};

// Something the planner has to say (the shell logs it).
struct note {
  bool error = false;
  std::string what;
  std::string detail;
};

// One round: what the probe found, and what the planner made of it.
struct round {
  // In: what the shards hold of the transfer ids and pending ids the round names, and the
  // accounts its events name (with the sub-accounts of split accounts among them, and the
  // accounts of the pending transfers its posts and voids name). The clock when it began.
  std::unordered_map<u128, held, u128_hash> probed;
  std::unordered_map<u128, account, u128_hash> accounts;
  uint64_t now = 0;
  // Out: a batch per shard (stamped), the sagas among them, the sub-accounts it creates,
  // the earliest deadline one of its pending transfers may have, and notes.
  std::vector<shard_batch> batches;
  std::vector<saga_plan> sagas;
  std::vector<std::pair<u128, uint32_t>> subs_to_create; // (parent, index)
  uint64_t deadline_min_ns = 0;
  std::vector<note> notes;
  // While planning.
  std::unordered_set<u128, u128_hash> seen;             // transfer ids planned this round
  std::unordered_set<u128, u128_hash> accounts_created; // account ids created this round
  std::unordered_set<u128, u128_hash> subs_planned;     // ids of subs_to_create
  // The single-shard state machine over the accounts the round names, as the probe found
  // them: it decides every unit the round plans, in request order.
  std::unique_ptr<state_machine> model;
  std::unordered_set<u128, u128_hash> gathered; // split accounts whose sub-accounts were gathered
  // The events planned so far, for their stamps: the legs of one transfer (one id, added one
  // after the other, one per shard) share its place.
  uint64_t events_planned = 0;
  u128 last_id = 0, last_pending_id = 0; // an expiry is named by its pending id
  std::vector<uint32_t> last_shards;     // the shards the legs of last_id went to
};

// Plans a round: the requests in the order they came, as one shard would apply them, from
// each one's cursor. It ends at a request that must wait (part of it, or accounts after
// transfers, which shards take first); the requests after it wait too, so none overtakes
// another. `skip[i]` leaves request i out (the shell answers it). Then the sub-accounts first
// seen are added, and every event is stamped above `st.stamp_last`, from `clock_ns` on.
void plan_round(state& st, round& r, const std::vector<request*>& requests, const std::vector<bool>& skip,
                uint64_t clock_ns);

// Every shard's reply says its latest timestamp.
inline void stamp_learn(state& st, uint64_t timestamp_last) {
  if (timestamp_last > st.stamp_last) st.stamp_last = timestamp_last;
}

// A new id for one of kassa's own transfers (a sweep, a gathering).
uint64_t system_sequence_next(state& st, uint64_t now_ns);

// The transfer a client wrote, as the shards hold it: a transfer across shards is two legs
// (debit + clearing in one shard, clearing + credit in the other) and a credit to a split hot
// account names one of its sub-accounts.
struct view {
  transfer t{};
  pending_status status = pending_status::none;
  uint64_t expires_at_ns = 0; // a pending transfer's deadline (its debit leg's, across shards)
  bool saga = false;      // two legs in two shards
  bool two_phase = false; // ... of a client's pending transfer, or of its post or void
};

// The account a client named: a sub-account stands for the split account it belongs to.
u128 as_written(const state& st, u128 account_id);
// False when the id holds no transfer a client can see (a leg of an aborted or unfinished
// saga, or one leg only).
bool view_of(const state& st, const held& h, view& out);
// A transfer across shards exists for clients once both legs stand.
bool visible(const view& v);
// What an event whose id the shards already hold returns.
uint32_t existing_result(const transfer& event, const view& v);
// What the round's probe found of a pending id, or null.
const held* pending_held(const round& r, u128 pending_id);

// A sub-account as kassa creates it.
account sub_account_row(u128 parent, uint32_t index, uint32_t ledger, bool history);

// The last event of the account unit (an account or a linked chain) that starts at `i`, and
// whether its accounts live in more than one shard.
size_t account_unit_end(const std::vector<account>& ev, size_t i);
bool account_unit_spans(const std::vector<account>& ev, size_t i, size_t j, uint32_t shards);

} // namespace planner
} // namespace kassa::ledger
