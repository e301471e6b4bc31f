#pragma once
// The directory's parts (actors/directory.hpp is its interface): its state and what its three
// files share. directory.cpp runs rounds (the planner, ledger/planner.hpp, decides them) and
// holds the behavior; directory_reads.cpp answers lookups, histories and balances;
// directory_recovery.cpp finishes the saga log at start, applies unresolved rounds again,
// sweeps split accounts and expires pending transfers. Inside kassa::actors only.
#include "actors/directory.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/mailbox.hpp"
#include "actors/shard.hpp"
#include "actors/split_history.hpp"
#include "ledger/planner.hpp"
#include "ledger/state_machine.hpp"
#include "ledger/system_ids.hpp"
#include "metrics/shared.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors {

namespace detail {
// Directory -> saga writer (a detached actor: the fsync never blocks the directory).
struct saga_write {
  std::vector<ledger::store::saga> add;
  std::vector<uint64_t> remove;
};
struct saga_written {
  ledger::store::error error;
};
} // namespace detail

} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::detail::saga_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::detail::saga_written)

namespace kassa::actors::directory_parts {

using namespace ledger;
namespace sid = ledger::system_ids;
using detail::saga_write;
using detail::saga_written;

// One queued create request: a client's, or kassa's own (sweeps, expiries): what the planner
// reads and answers, and how to answer it.
struct work : planner::request {
  request_context ctx;
  outcome status = outcome::ok;
  caf::typed_response_promise<create_reply> rp; // a client's (kassa's own work has none)
  bool internal = false;
  std::function<void()> done; // kassa's own work: called once it is answered
};
using work_ptr = std::shared_ptr<work>;

using planner::held;
using planner::hot_state;
using planner::origin;
using planner::shard_batch;
using planner::view;
using planner::account_unit_end;
using planner::account_unit_spans;
using planner::as_written;
using planner::pending_held;
using planner::stamp_learn;
using planner::sub_account_row;
using planner::view_of;
using planner::visible;

// The directory's state; what the planner keeps from round to round is its base.
struct directory_state : planner::state {
  static inline const char* name = "kassa.directory";

  directory_options opts;
  bool passthrough = false;
  bool ready = false;     // recovery done
  bool failed = false;    // recovery failed: refuse changes
  caf::actor writer;      // saga writer
  std::deque<work_ptr> queue;
  size_t queue_events = 0;
  bool round_busy = false;
  uint64_t saga_next = 1;
  std::vector<uint64_t> sagas_done; // removed from the log with the next write
  std::vector<ledger::store::saga> unresolved; // legs left pending by a failed resolution, or
                                               // rounds a shard did not take (redo records)
  // Accounts and transfer ids of the unresolved redo records: a request naming one is
  // answered store_unavailable until its round stands whole.
  std::unordered_set<u128, u128_hash> stuck;
  std::unordered_set<u128, u128_hash> stuck_accounts; // ... and the accounts they create
  // When the next attempt at the unresolved rounds is due (clock ns), and the wait after a
  // failed one (10 ms, doubling up to the timer's interval).
  uint64_t redo_retry_ns = 0;
  uint64_t redo_backoff_ns = 0;
  // Shards that did not take their part of an unresolved round: a later round that would
  // reach one applies the unresolved rounds first (see round_plan), so that the late part is
  // stamped as its round was, below what the later round brings.
  std::vector<bool> late_shards;
  std::vector<caf::typed_response_promise<drain_atom, bool>> drains;
  // Reads that came before recovery had learned kassa's own accounts (a split account's
  // sub-accounts): they are taken once it has.
  std::vector<std::function<void()>> after_recovery;
  bool sweep_queued = false;
  // Expiry (several shards or hot accounts): the directory judges every deadline. It asks the
  // shards which pending transfers are due when the earliest deadline it knows of comes (the
  // shards report theirs; a round that creates a pending transfer with a timeout adds one).
  bool expiry_queued = false;   // a poll, or the expiries it found, under way
  bool expiry_again = false;    // a deadline came meanwhile: poll again once it is done
  uint64_t expiry_timer_ns = 0; // the deadline the armed timer is for; 0 = none
  // Metrics (docs/operations.md#metrics), set up when the directory starts.
  metrics::gauge* mailbox = nullptr;
  metrics::gauge* hot_accounts = nullptr;
  metrics::gauge* hot_sub_accounts = nullptr;
  metrics::counter* sweeps = nullptr;
  metrics::counter* sweep_transfers = nullptr;
  metrics::registry unshown; // what a prefixed directory records but does not show
};

using directory_self = directory_actor::stateful_pointer<directory_state>;

// A new promise of the type `P` (a caf::typed_response_promise) for the request at hand.
template <class P>
struct promise_of;
template <class... Ts>
struct promise_of<caf::typed_response_promise<Ts...>> {
  static caf::typed_response_promise<Ts...> make(directory_self self) {
    return self->make_response_promise<Ts...>();
  }
};

// ------------------------------------------------------------------------- fan-out

// Sends one request per shard (skipping empty ones) and calls `done` once every reply (or
// error, as a default-constructed reply with status store_unavailable) is in.
template <class Reply, class Request>
void fan_out(directory_self self, std::vector<std::pair<uint32_t, Request>> requests,
             std::function<void(std::vector<std::pair<uint32_t, Reply>>&)> done) {
  auto replies = std::make_shared<std::vector<std::pair<uint32_t, Reply>>>();
  auto left = std::make_shared<size_t>(requests.size());
  if (requests.empty()) {
    done(*replies);
    return;
  }
  replies->resize(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const uint32_t shard = requests[i].first;
    (*replies)[i].first = shard;
    self->request(self->state.opts.shards[shard], caf::infinite, std::move(requests[i].second))
        .then(
            [=](Reply& r) {
              (*replies)[i].second = std::move(r);
              if (--*left == 0) done(*replies);
            },
            [=](caf::error&) {
              (*replies)[i].second.status = outcome::store_unavailable;
              if (--*left == 0) done(*replies);
            });
  }
}

using probed_map = std::unordered_map<u128, held, u128_hash>;

// The same ids asked of every shard (a transfer id may be anywhere).
inline std::vector<std::vector<u128>> everywhere(const std::vector<u128>& ids, uint32_t shards) {
  return std::vector<std::vector<u128>>(ids.empty() ? 0 : shards, ids);
}

// ----------------------------------------------------------------------------- views

inline bool is_clearing(u128 id) { return sid::is_clearing(id); }

// ------------------------------------------------------------------------------ round

// A round: the planner's, and the requests it takes.
struct round_state : planner::round {
  std::vector<work_ptr> works;
  uint64_t redo_id = 0; // the saga log record of the round, when it has sagas
};
using round_ptr = std::shared_ptr<round_state>;

// A read (lookup or history) is answered from what recovery learned (which sub-accounts a
// split account has): one that comes before waits for it.
template <class Request, class Answer>
auto read_when_recovered(directory_self self, Request& req, Answer answer) -> decltype(answer(self, req)) {
  if (self->state.ready) return answer(self, req);
  auto rp = promise_of<decltype(answer(self, req))>::make(self);
  self->state.after_recovery.push_back([self, rp, req = std::move(req)]() mutable {
    rp.delegate(caf::actor_cast<directory_actor>(self), std::move(req));
  });
  return rp;
}

// What each part defines for the others.
// directory.cpp: rounds, requests, the behavior.
uint64_t system_sequence_next(directory_self self);
void probe(directory_self self, std::vector<std::vector<u128>> ids, std::function<void(outcome, probed_map&)> done);
void round_start(directory_self self);
void reply_work(work& w);
void log_write(directory_self self, std::vector<store::saga> add, std::function<void(bool)> then);
void deliver_drains(directory_self self);
void stuck_refresh(directory_state& st);
std::chrono::nanoseconds tick_interval(const directory_options& o);
// directory_reads.cpp: lookups, histories and balances (a split account as one).
caf::typed_response_promise<accounts_reply> lookup_accounts(directory_self self, lookup_accounts_request& req);
caf::typed_response_promise<transfers_reply> lookup_transfers(directory_self self, lookup_transfers_request& req);
caf::typed_response_promise<transfers_by_id_reply> transfers_by_id(directory_self self, const transfers_by_id_request& req);
caf::typed_response_promise<transfers_reply> account_transfers(directory_self self, account_transfers_request& req);
caf::typed_response_promise<balances_reply> account_balances(directory_self self, account_balances_request& req);
// directory_recovery.cpp: recovery, rounds applied again, sweeps, expiry.
void recover(directory_self self);
void resolve_logged(directory_self self, std::vector<store::saga> sagas, std::function<void(bool)> done);
bool redo_due(directory_self self);
void retry_unresolved(directory_self self);
void sweep(directory_self self);
void expiry_arm(directory_self self, uint64_t deadline_ns);
void expiry_poll(directory_self self);

} // namespace kassa::actors::directory_parts
