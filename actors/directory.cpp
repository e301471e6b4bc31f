#include "actors/directory.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "actors/mailbox.hpp"
#include "actors/shard.hpp"
#include "actors/split_history.hpp"
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

namespace kassa::actors {

using namespace ledger;
namespace sid = ledger::system_ids;
using detail::saga_write;
using detail::saga_written;

namespace {

// A sweep or a clearing-account creation is kassa's own work, queued like a client's.
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using round_atom = caf::atom_constant<caf::atom("round")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;

struct saga_writer_state {
  static inline const char* name = "kassa.saga_writer";
};

caf::behavior saga_writer(caf::stateful_actor<saga_writer_state>*, std::shared_ptr<store::saga_log> log) {
  return {[log](saga_write& w) { return saga_written{log->write(w.add, w.remove)}; }};
}

// One queued create request: a client's, or kassa's own (sweeps, expiries): what the planner
// reads and answers, and how to answer it.
struct work : planner::request {
  request_context ctx;
  outcome status = outcome::ok;
  caf::response_promise rp;
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
  std::vector<caf::response_promise> drains;
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

using directory_actor = caf::stateful_actor<directory_state>;

void round_start(directory_actor* self);
void expiry_arm(directory_actor* self, uint64_t deadline_ns);
void expiry_poll(directory_actor* self);

uint64_t system_sequence_next(directory_actor* self) {
  return planner::system_sequence_next(self->state, self->state.opts.clock());
}

// ------------------------------------------------------------------------- fan-out

// Sends one request per shard (skipping empty ones) and calls `done` once every reply (or
// error, as a default-constructed reply with status store_unavailable) is in.
template <class Reply, class Request>
void fan_out(directory_actor* self, std::vector<std::pair<uint32_t, Request>> requests,
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

// Asks shard i what it holds of ids[i] (empty lists are not sent) and gathers the answers by
// id, one entry per shard. `done` gets ok, or the first shard's failure with nothing gathered.
void probe(directory_actor* self, std::vector<std::vector<u128>> ids,
           std::function<void(outcome, probed_map&)> done) {
  std::vector<std::pair<uint32_t, probe_request>> requests;
  for (uint32_t s = 0; s < ids.size(); ++s) {
    if (!ids[s].empty()) requests.emplace_back(s, probe_request{ids[s]});
  }
  auto asked = std::make_shared<std::vector<std::vector<u128>>>(std::move(ids));
  fan_out<probe_reply>(self, std::move(requests), [asked, done](auto& replies) {
    probed_map probed;
    for (auto& [shard, reply] : replies) {
      if (reply.status != outcome::ok) {
        probed.clear();
        done(reply.status, probed);
        return;
      }
      for (const probe_entry& e : reply.entries) {
        auto& entries = probed[(*asked)[shard][e.index]].entries;
        // An id asked twice is answered twice by the same shard: keep one.
        if (entries.empty() || entries.back().first != shard) entries.emplace_back(shard, e);
      }
    }
    done(outcome::ok, probed);
  });
}

// The same ids asked of every shard (a transfer id may be anywhere).
std::vector<std::vector<u128>> everywhere(const std::vector<u128>& ids, uint32_t shards) {
  return std::vector<std::vector<u128>>(ids.empty() ? 0 : shards, ids);
}

// ----------------------------------------------------------------------------- views

bool is_clearing(u128 id) { return sid::is_clearing(id); }

// ------------------------------------------------------------------------------ round

// A round: the planner's, and the requests it takes.
struct round_state : planner::round {
  std::vector<work_ptr> works;
  uint64_t redo_id = 0; // the saga log record of the round, when it has sagas
};
using round_ptr = std::shared_ptr<round_state>;

void reply_work(work& w) {
  if (w.internal) {
    if (w.done) w.done();
    return;
  }
  if (w.status != outcome::ok) {
    w.rp.deliver(create_reply{w.status, {}});
    return;
  }
  create_reply reply;
  for (size_t i = 0; i < w.results.size(); ++i) {
    if (w.results[i] != 0) reply.failures.push_back({static_cast<uint32_t>(i), w.results[i]});
  }
  w.rp.deliver(std::move(reply));
}

// ------------------------------------------------------------------ round: the phases

// One write of the saga log: adds `add`, and removes the finished sagas no write has carried
// yet (put back for the next write if this one fails). Calls `then(ok)` once it is durable or
// has failed. Rounds with sagas write through it before any leg; an idle directory (a drain,
// the end of recovery) flushes the removals through it, so that a clean stop leaves an empty
// log.
void log_write(directory_actor* self, std::vector<store::saga> add, std::function<void(bool)> then) {
  auto& st = self->state;
  if ((add.empty() && st.sagas_done.empty()) || !st.writer) {
    then(true);
    return;
  }
  saga_write sw{std::move(add), std::move(st.sagas_done)};
  st.sagas_done.clear();
  auto removed = std::make_shared<std::vector<uint64_t>>(sw.remove);
  auto failed = [self, removed, then](const std::string& why) {
    self->state.opts.log_error("the saga log could not be written", why);
    auto& d = self->state.sagas_done;
    d.insert(d.end(), removed->begin(), removed->end());
    then(false);
  };
  self->request(st.writer, caf::infinite, std::move(sw))
      .then(
          [then, failed](saga_written& done) {
            if (done.error.ok()) then(true);
            else failed(done.error.message);
          },
          [self, failed](caf::error& e) { failed(self->system().render(e)); });
}

void deliver_drains(directory_actor* self) {
  auto& st = self->state;
  if (st.round_busy || !st.ready || !st.queue.empty() || st.drains.empty()) return;
  st.round_busy = true; // no round starts while the log is written
  log_write(self, {}, [self](bool) {
    auto& st = self->state;
    st.round_busy = false;
    auto drains = std::move(st.drains);
    st.drains.clear();
    for (auto& d : drains) d.deliver(drain_atom::value, true);
    round_start(self);
  });
}

void retry_unresolved(directory_actor* self);
bool redo_due(directory_actor* self);

void round_finish(directory_actor* self, round_ptr r) {
  auto& st = self->state;
  expiry_arm(self, r->deadline_min_ns);
  // Requests with events left over go back to the front of the queue, in order.
  for (auto it = r->works.rbegin(); it != r->works.rend(); ++it) {
    work_ptr& w = *it;
    if (w->status == outcome::ok && w->cursor < w->size()) {
      st.queue.push_front(w);
      st.queue_events += w->remaining();
    } else {
      reply_work(*w);
    }
  }
  st.round_busy = false;
  // A round that a shard did not take is applied again as soon as it is due, before the next
  // round: its requests' retries wait for it.
  if (redo_due(self)) retry_unresolved(self);
  else if (!st.queue.empty()) round_start(self);
  else deliver_drains(self);
}

void round_fail(directory_actor* self, round_ptr r, outcome why) {
  for (auto& w : r->works) w->status = why;
  // Clearing accounts this round meant to create may not exist: forget them (creating one
  // again answers `exists`). Sub-accounts are confirmed only after a round that made them durable.
  self->state.clearing_known.clear();
  round_finish(self, r);
}

// What the unresolved redo records name (see directory_state::stuck).
void stuck_refresh(directory_state& st) {
  st.stuck.clear();
  st.stuck_accounts.clear();
  for (const store::saga& rec : st.unresolved) {
    for (const auto& a : rec.accounts) {
      if (!sid::reserved(a.value.id)) st.stuck_accounts.insert(a.value.id);
    }
    for (const auto& e : rec.transfers) {
      st.stuck.insert(e.value.id);
      for (u128 a : {e.value.debit_account_id, e.value.credit_account_id}) {
        if (!is_clearing(a)) st.stuck.insert(as_written(st, a));
      }
    }
  }
}

// Whether a request names an account or transfer of a round that stands in some shards only.
bool names_stuck(const directory_state& st, const work& w) {
  if (w.accounts) {
    for (size_t k = w.cursor; k < w.account_events.size() && !st.stuck_accounts.empty(); ++k) {
      if (st.stuck_accounts.count(w.account_events[k].id) != 0) return true;
    }
    return false;
  }
  if (st.stuck.empty() && st.stuck_accounts.empty()) return false;
  for (size_t k = w.cursor; k < w.transfer_events.size(); ++k) {
    const transfer& t = w.transfer_events[k];
    for (u128 id : {t.id, t.pending_id, t.debit_account_id, t.credit_account_id}) {
      if (id != 0 && st.stuck.count(id) != 0) return true;
    }
    for (u128 id : {t.debit_account_id, t.credit_account_id}) {
      if (st.stuck_accounts.count(id) != 0) return true;
    }
  }
  return false;
}

// The round's redo record: kassa's own accounts, the accounts of chains across shards, and
// every transfer, per shard in apply order.
store::saga redo_record(const round_state& r, uint64_t id) {
  store::saga rec;
  rec.id = id;
  for (uint32_t s = 0; s < r.batches.size(); ++s) {
    const shard_batch& b = r.batches[s];
    // Each event keeps its stamp in its timestamp field (zero in an event as sent), so that
    // a round applied again stamps as the first attempt did.
    for (size_t k = 0; k < b.accounts.size(); ++k) {
      const origin& o = b.accounts_origin[k];
      if (o.w != nullptr && o.saga < 0) continue;
      account a = b.accounts[k];
      a.timestamp = k < b.accounts_stamp.size() ? b.accounts_stamp[k] : 0;
      rec.accounts.push_back({s, b.accounts_system[k], a});
    }
    for (size_t k = 0; k < b.transfers.size(); ++k) {
      transfer t = b.transfers[k];
      t.timestamp = k < b.transfers_stamp.size() ? b.transfers_stamp[k] : 0;
      rec.transfers.push_back({s, b.transfers_system[k], t});
    }
  }
  return rec;
}

// The shards answered the round's batches: their results go to the requests; a round with
// sagas leaves the saga log once every shard holds its part.
void round_applied(directory_actor* self, round_ptr r,
                   std::vector<std::pair<uint32_t, create_reply>>& account_replies,
                   std::vector<std::pair<uint32_t, create_reply>>& transfer_replies) {
  auto& st = self->state;
  bool accounts_ok = true;
  for (auto& [shard, reply] : account_replies) accounts_ok = accounts_ok && reply.status == outcome::ok;
  for (auto& [shard, reply] : account_replies) stamp_learn(st, reply.timestamp_last);
  for (auto& [shard, reply] : transfer_replies) stamp_learn(st, reply.timestamp_last);
  if (accounts_ok) {
    for (const auto& [parent, index] : r->subs_to_create) st.hot[parent].confirmed[index] = true;
  }
  // Every transfer a shard was sent was decided already, and so was every account of a chain across shards: a refusal of one the
  // directory decided means the two disagree.
  bool shard_failed = !accounts_ok, disagreed = false;
  for (auto& [shard, reply] : account_replies) {
    auto& origins = r->batches[shard].accounts_origin;
    if (reply.status != outcome::ok) {
      for (const origin& o : origins) if (o.w != nullptr) static_cast<work*>(o.w)->status = reply.status;
      st.clearing_known.clear();
      continue;
    }
    for (const event_result& f : reply.failures) {
      const origin& o = origins[f.index];
      if (o.w != nullptr && o.saga >= 0) {
        disagreed = true;
        st.opts.log_error("a shard refused an account the directory had decided",
                          "shard=" + std::to_string(shard) + " id=" + to_string_u128(r->batches[shard].accounts[f.index].id) +
                              " code=" + std::string(name(static_cast<account_result>(f.code))));
      } else if (o.w != nullptr) {
        o.w->results[o.index] = f.code;
      } else if (f.code != static_cast<uint32_t>(account_result::exists)) {
        st.opts.log_error("kassa could not create one of its own accounts",
                          "code=" + std::string(name(static_cast<account_result>(f.code))));
      }
    }
  }
  for (auto& [shard, reply] : transfer_replies) {
    auto& origins = r->batches[shard].transfers_origin;
    if (reply.status != outcome::ok) {
      shard_failed = true;
      for (const origin& o : origins) static_cast<work*>(o.w)->status = reply.status;
      continue;
    }
    for (const event_result& f : reply.failures) {
      const origin& o = origins[f.index];
      const transfer& t = r->batches[shard].transfers[f.index];
      disagreed = true;
      st.opts.log_error("a shard refused a transfer the directory had decided",
                        "shard=" + std::to_string(shard) + " id=" + to_string_u128(t.id) + " code=" +
                            std::string(name(static_cast<transfer_result>(f.code))));
      if (o.saga < 0 || o.w->results[o.index] == 0) o.w->results[o.index] = f.code;
    }
  }
  if (r->redo_id != 0) {
    if (disagreed) {
      // Part of a saga may stand in one shard only: stop changing anything until an operator
      // has looked (kassa verify shows where the clearing accounts disagree).
      st.opts.log_error("a saga could not be applied whole; refusing changes",
                        "saga=" + std::to_string(r->redo_id));
      st.failed = true;
      for (auto& w : r->works) w->status = outcome::store_unavailable;
    } else if (shard_failed) {
      // Not acknowledged: the round is applied again between rounds (or at recovery) until
      // every shard holds its part.
      st.late_shards.resize(st.shards, false);
      for (auto* replies : {&account_replies, &transfer_replies}) {
        for (auto& [shard, reply] : *replies) {
          if (reply.status != outcome::ok) st.late_shards[shard] = true;
        }
      }
      st.unresolved.push_back(redo_record(*r, r->redo_id));
      stuck_refresh(st);
      st.redo_retry_ns = 0; // at once
      for (auto& w : r->works) w->status = outcome::store_unavailable;
    } else {
      st.sagas_done.push_back(r->redo_id);
    }
  }
  round_finish(self, r);
}

void round_apply(directory_actor* self, round_ptr r) {
  auto& st = self->state;
  // The shards record the routing stage of the round from its oldest client request.
  request_context ctx;
  for (const work_ptr& w : r->works) {
    if (w->ctx.handed_ns != 0 && (ctx.handed_ns == 0 || w->ctx.handed_ns < ctx.handed_ns)) ctx.handed_ns = w->ctx.handed_ns;
  }
  std::vector<std::pair<uint32_t, create_accounts_request>> accounts;
  std::vector<std::pair<uint32_t, create_transfers_request>> transfers;
  for (uint32_t s = 0; s < st.shards; ++s) {
    shard_batch& b = r->batches[s];
    if (!b.accounts.empty()) {
      accounts.emplace_back(s, create_accounts_request{ctx, b.accounts, b.accounts_system, b.accounts_stamp});
    }
    if (!b.transfers.empty()) {
      transfers.emplace_back(s, create_transfers_request{ctx, b.transfers, b.transfers_system, b.transfers_stamp});
    }
  }
  // Accounts first: every shard takes its create_accounts before its create_transfers, so a
  // clearing or sub-account exists before the legs that name it.
  auto account_replies = std::make_shared<std::vector<std::pair<uint32_t, create_reply>>>();
  auto left = std::make_shared<int>(2);
  auto transfer_replies = std::make_shared<std::vector<std::pair<uint32_t, create_reply>>>();
  auto both = [self, r, account_replies, transfer_replies, left] {
    if (--*left == 0) round_applied(self, r, *account_replies, *transfer_replies);
  };
  fan_out<create_reply>(self, std::move(accounts), [account_replies, both](auto& replies) {
    *account_replies = std::move(replies);
    both();
  });
  fan_out<create_reply>(self, std::move(transfers), [transfer_replies, both](auto& replies) {
    *transfer_replies = std::move(replies);
    both();
  });
}

void resolve_logged(directory_actor* self, std::vector<store::saga> sagas, std::function<void(bool)> done);

void round_plan(directory_actor* self, round_ptr r) {
  auto& st = self->state;
  // Requests are planned in the order they came, as one shard would apply them (the planner
  // ends the round at one that must wait). One that names what a round a shard has not taken
  // yet holds waits: its rows there are not what they will be, so nothing is decided on them.
  std::vector<planner::request*> requests;
  std::vector<bool> skip;
  for (auto& w : r->works) {
    requests.push_back(w.get());
    skip.push_back(names_stuck(st, *w));
    if (skip.back()) w->status = outcome::store_unavailable;
  }
  planner::plan_round(st, *r, requests, skip, st.opts.clock());
  for (const planner::note& n : r->notes) {
    if (n.error) st.opts.log_error(n.what, n.detail);
    else st.opts.log_info(n.what, n.detail);
  }
  // A round with sagas is written to the saga log whole before any shard applies any of it:
  // a leg may need what an earlier event of the round brought its account, so recovery
  // applies the round's every shard part again, not the legs alone.
  std::vector<store::saga> add;
  if (!r->sagas.empty()) {
    r->redo_id = st.saga_next++;
    add.push_back(redo_record(*r, r->redo_id));
  }
  auto apply = [self, r, add = std::move(add)]() mutable {
    log_write(self, std::move(add), [self, r](bool ok) {
      if (ok) round_apply(self, r);
      else round_fail(self, r, outcome::store_unavailable);
    });
  };
  // A shard that has not taken its part of an unresolved round takes it before anything of a
  // later round: its events then keep the stamps their round gave them (a transfer across
  // shards has one timestamp in both shards), below the later round's. If it still cannot,
  // this round is not applied either (nothing of it is logged yet).
  bool late = false;
  for (uint32_t s = 0; s < st.late_shards.size() && s < r->batches.size() && !late; ++s) {
    late = st.late_shards[s] && (!r->batches[s].accounts.empty() || !r->batches[s].transfers.empty());
  }
  if (!late || st.unresolved.empty()) {
    apply();
    return;
  }
  auto sagas = std::move(st.unresolved);
  st.unresolved.clear();
  auto copy = sagas;
  resolve_logged(self, std::move(sagas), [self, r, copy, apply = std::move(apply)](bool ok) mutable {
    auto& st = self->state;
    if (!ok) {
      st.unresolved.insert(st.unresolved.end(), copy.begin(), copy.end());
      stuck_refresh(st);
      round_fail(self, r, outcome::store_unavailable);
      return;
    }
    st.late_shards.clear();
    st.redo_backoff_ns = 0;
    stuck_refresh(st);
    apply();
  });
}

// The accounts of the pending transfers the round's posts, voids and expiries name (a post
// may name none itself): the model needs them to decide. Read after the probe found the
// pending transfers, then the round is planned.
void round_read_pending_accounts(directory_actor* self, round_ptr r) {
  auto& st = self->state;
  std::vector<std::vector<u128>> missing(st.shards);
  bool any = false;
  for (const auto& w : r->works) {
    if (w->accounts) continue;
    for (size_t k = w->cursor; k < w->transfer_events.size(); ++k) {
      const transfer& t = w->transfer_events[k];
      if (!has(t.flags, transfer_post_pending | transfer_void_pending)) continue;
      const held* h = pending_held(*r, t.pending_id);
      view v;
      if (h == nullptr || !view_of(st, *h, v)) continue;
      for (u128 a : {v.t.debit_account_id, v.t.credit_account_id}) {
        if (r->accounts.count(a) != 0) continue;
        r->accounts[a] = account{}; // asked once; replaced by the answer below
        missing[shard_of(a, st.shards)].push_back(a);
        any = true;
      }
    }
  }
  if (!any) {
    round_plan(self, r);
    return;
  }
  std::vector<std::pair<uint32_t, lookup_accounts_request>> lookups;
  for (uint32_t s = 0; s < st.shards; ++s) {
    if (!missing[s].empty()) lookups.emplace_back(s, lookup_accounts_request{request_context{}, std::move(missing[s])});
  }
  fan_out<accounts_reply>(self, std::move(lookups), [self, r](auto& replies) {
    bool bad = false;
    for (auto& [shard, reply] : replies) {
      if (reply.status != outcome::ok) bad = true;
      for (const account& a : reply.accounts) r->accounts[a.id] = a;
    }
    // An account not found stays out of the model.
    for (auto it = r->accounts.begin(); it != r->accounts.end();) {
      it = it->second.id == 0 ? r->accounts.erase(it) : std::next(it);
    }
    if (bad) round_fail(self, r, outcome::store_unavailable);
    else round_plan(self, r);
  });
}

// A round: take queued requests, learn what the shards hold of the ids and accounts they
// name, plan, apply, resolve sagas, answer.
void round_start(directory_actor* self) {
  auto& st = self->state;
  if (st.round_busy || st.queue.empty() || !st.ready) return;
  st.round_busy = true;
  auto r = std::make_shared<round_state>();
  size_t events = 0;
  const uint64_t now = r->now = st.opts.clock();
  while (!st.queue.empty()) {
    work_ptr w = st.queue.front();
    if (!r->works.empty() && events + w->remaining() > st.opts.round_events_max) break;
    st.queue.pop_front();
    st.queue_events -= w->remaining();
    if (w->cursor == 0 && w->ctx.deadline_ns != 0 && now > w->ctx.deadline_ns) {
      w->status = outcome::deadline_exceeded;
      reply_work(*w);
      continue;
    }
    if (st.failed) {
      w->status = outcome::store_unavailable;
      reply_work(*w);
      continue;
    }
    events += w->remaining();
    r->works.push_back(std::move(w));
  }
  if (r->works.empty()) {
    st.round_busy = false;
    round_finish(self, r);
    return;
  }
  // What to ask: transfer ids and pending ids from every shard (an id may be anywhere), and
  // the accounts the transfers name from their own shards.
  std::vector<u128> ids;
  std::vector<std::vector<u128>> account_ids(st.shards);
  std::unordered_set<u128, u128_hash> hot_asked;
  for (auto& w : r->works) {
    if (w->accounts) {
      // The accounts of chains across shards, for the round's model that decides them.
      const auto& ev = w->account_events;
      for (size_t i = w->cursor, j = 0; i < ev.size(); i = j + 1) {
        j = account_unit_end(ev, i);
        if (!account_unit_spans(ev, i, j, st.shards)) continue;
        for (size_t k = i; k <= j; ++k) {
          if (ev[k].id != 0 && ev[k].id != u128_max) account_ids[shard_of(ev[k].id, st.shards)].push_back(ev[k].id);
        }
      }
      continue;
    }
    for (size_t k = w->cursor; k < w->transfer_events.size(); ++k) {
      const transfer& t = w->transfer_events[k];
      ids.push_back(t.id);
      if (t.pending_id != 0) ids.push_back(t.pending_id);
      for (u128 a : {t.debit_account_id, t.credit_account_id}) {
        if (a != 0 && a != u128_max) account_ids[shard_of(a, st.shards)].push_back(a);
      }
      // The sub-accounts of a split account, for the round's model: a credit may land on one,
      // a debit gathers them.
      for (u128 a : {t.debit_account_id, t.credit_account_id}) {
        auto h = st.hot.find(a);
        if (h == st.hot.end() || !hot_asked.insert(a).second) continue;
        for (uint32_t i = 0; i < h->second.created.size(); ++i) {
          if (!h->second.created[i]) continue;
          const u128 sub = sid::sub(a, i);
          account_ids[shard_of(sub, st.shards)].push_back(sub);
        }
      }
    }
  }
  std::vector<std::pair<uint32_t, lookup_accounts_request>> lookups;
  for (uint32_t s = 0; s < st.shards; ++s) {
    if (!account_ids[s].empty()) lookups.emplace_back(s, lookup_accounts_request{request_context{}, std::move(account_ids[s])});
  }
  auto left = std::make_shared<int>(2);
  auto bad = std::make_shared<bool>(false);
  auto next = [self, r, left, bad] {
    if (--*left != 0) return;
    if (*bad) round_fail(self, r, outcome::store_unavailable);
    else round_read_pending_accounts(self, r);
  };
  probe(self, everywhere(ids, st.shards), [r, next, bad](outcome o, probed_map& probed) {
    *bad = *bad || o != outcome::ok;
    r->probed = std::move(probed);
    next();
  });
  fan_out<accounts_reply>(self, std::move(lookups), [r, next, bad](auto& replies) {
    for (auto& [shard, reply] : replies) {
      if (reply.status != outcome::ok) *bad = true;
      for (const account& a : reply.accounts) r->accounts[a.id] = a;
    }
    next();
  });
}

// ------------------------------------------------------------------------ requests

template <class Request>
caf::response_promise enqueue(directory_actor* self, Request& req, bool accounts) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  const size_t events = req.events.size();
  st.mailbox->set(mailbox_waiting(self));
  if (st.failed) {
    rp.deliver(create_reply{outcome::store_unavailable, {}});
    return rp;
  }
  if (st.queue_events + events > st.opts.queue_events_max) {
    rp.deliver(create_reply{outcome::busy, {}});
    return rp;
  }
  auto w = std::make_shared<work>();
  w->accounts = accounts;
  w->ctx = req.ctx;
  if constexpr (std::is_same_v<Request, create_accounts_request>) w->account_events = std::move(req.events);
  else w->transfer_events = std::move(req.events);
  // kassa's own events (the payment core's chart and bookings) keep their mark
  w->system = std::move(req.system);
  w->results.assign(events, 0);
  w->rp = rp;
  st.queue.push_back(w);
  st.queue_events += events;
  round_start(self);
  return rp;
}

// A split account's balance: its own row plus what its sub-accounts hold. Sub-accounts take
// only credits; their debits are sweeps into the account itself (pending while a sweep across
// shards is under way, when the account shows the same amount as credits pending), so those
// are netted out rather than counted twice.
bool add_balances(account& into, const account& sub) {
  u128 held = sub.credits_posted - std::min(sub.credits_posted, sub.debits_posted);
  if (!add_checked(into.credits_posted, held, into.credits_posted)) return false;
  if (!add_checked(into.credits_pending, sub.credits_pending, into.credits_pending)) return false;
  into.credits_pending -= std::min(into.credits_pending, sub.debits_pending);
  return true;
}

caf::response_promise lookup_accounts(directory_actor* self, lookup_accounts_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  std::vector<std::vector<u128>> per_shard(st.shards);
  for (u128 id : req.ids) {
    if (id == 0 || id == u128_max) continue;
    per_shard[shard_of(id, st.shards)].push_back(id);
    auto it = st.hot.find(id);
    if (it == st.hot.end()) continue;
    for (uint32_t i = 0; i < it->second.created.size(); ++i) {
      if (it->second.created[i]) {
        const u128 sub = sid::sub(id, i);
        per_shard[shard_of(sub, st.shards)].push_back(sub);
      }
    }
  }
  std::vector<std::pair<uint32_t, lookup_accounts_request>> requests;
  for (uint32_t s = 0; s < st.shards; ++s) {
    if (!per_shard[s].empty()) requests.emplace_back(s, lookup_accounts_request{req.ctx, std::move(per_shard[s])});
  }
  fan_out<accounts_reply>(self, std::move(requests), [self, rp, ids = req.ids](auto& replies) mutable {
    auto& st = self->state;
    std::unordered_map<u128, account, u128_hash> found;
    for (auto& [shard, reply] : replies) {
      if (reply.status != outcome::ok) {
        rp.deliver(accounts_reply{reply.status, {}});
        return;
      }
      for (const account& a : reply.accounts) found[a.id] = a;
    }
    accounts_reply out;
    for (u128 id : ids) {
      auto it = found.find(id);
      if (it == found.end()) continue;
      account a = it->second;
      if (auto h = st.hot.find(id); h != st.hot.end()) {
        for (uint32_t i = 0; i < h->second.created.size(); ++i) {
          auto sub = found.find(sid::sub(id, i));
          if (sub != found.end() && !add_balances(a, sub->second)) {
            rp.deliver(accounts_reply{outcome::store_unavailable, {}});
            return;
          }
        }
      }
      out.accounts.push_back(a);
    }
    rp.deliver(std::move(out));
  });
  return rp;
}

caf::response_promise lookup_transfers(directory_actor* self, lookup_transfers_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  std::vector<u128> ids;
  for (u128 id : req.ids) {
    if (id != 0 && id != u128_max) ids.push_back(id);
  }
  probe(self, everywhere(ids, st.shards), [self, rp, ids](outcome o, probed_map& probed) mutable {
    if (o != outcome::ok) {
      rp.deliver(transfers_reply{o, {}});
      return;
    }
    transfers_reply out;
    std::unordered_set<u128, u128_hash> done;
    for (u128 id : ids) {
      auto it = probed.find(id);
      if (it == probed.end() || !done.insert(id).second) continue;
      view v;
      if (!view_of(self->state, it->second, v)) continue;
      // A saga's transfer exists for clients once posted; an aborted one never did.
      if (!visible(v)) continue;
      out.transfers.push_back(v.t);
    }
    rp.deliver(std::move(out));
  });
  return rp;
}

// The transfers of an id range over every shard. A full page of a shard holds all of its ids
// up to its last one, so the merged page stands below the smallest such last id (+1); a transfer
// across shards (one leg per shard under the same id) shows once, as written, like
// lookup_transfers shows it.
caf::response_promise transfers_by_id(directory_actor* self, const transfers_by_id_request& req) {
  auto rp = self->make_response_promise();
  std::vector<std::pair<uint32_t, transfers_by_id_request>> requests;
  for (uint32_t s = 0; s < self->state.shards; ++s) requests.emplace_back(s, req);
  std::function<void(std::vector<std::pair<uint32_t, shard_transfers_by_id_reply>>&)> merge =
      [self, rp, req](std::vector<std::pair<uint32_t, shard_transfers_by_id_reply>>& replies) mutable {
        u128 end = req.id_end; // the merged page is complete below this
        for (const auto& [shard, r] : replies) {
          if (r.status != outcome::ok) {
            rp.deliver(transfers_by_id_reply{r.status, {}, req.id_min});
            return;
          }
          if (r.full && !r.entries.empty()) end = std::min(end, r.entries.back().transfer.id + 1);
        }
        std::map<u128, held> by_id;
        for (const auto& [shard, r] : replies)
          for (const probe_entry& e : r.entries)
            if (e.transfer.id < end) by_id[e.transfer.id].entries.emplace_back(shard, e);
        transfers_by_id_reply out;
        out.next = end;
        for (const auto& [id, h] : by_id) {
          if (out.transfers.size() >= req.limit) {
            out.next = id;
            break;
          }
          view v;
          // A leg alone (its saga unfinished or aborted) is no transfer a client wrote.
          if (!view_of(self->state, h, v) || !visible(v)) continue;
          out.transfers.push_back(v.t);
        }
        rp.deliver(std::move(out));
      };
  if (req.id_min >= req.id_end) {
    rp.deliver(transfers_by_id_reply{outcome::ok, {}, req.id_end});
    return rp;
  }
  fan_out<shard_transfers_by_id_reply>(self, std::move(requests), std::move(merge));
  return rp;
}

// An account's history as clients wrote it: a transfer across shards shows once, as the
// client's transfer (from the leg this account's shard holds, at that leg's timestamp) and
// only once its saga posted it; kassa's own posts, voids and sweeps do not show; credits to a
// sub-account name the split account. Since that drops records, a page is refilled from the
// shard until it holds `limit` transfers or the shard has no more.
struct history_walk {
  request_context ctx;
  store::account_filter filter;
  uint32_t shard = 0;
  transfers_reply out;
  std::function<void(transfers_reply)> done;
};

// Transfers kassa writes itself (sweeps and gathers, whole or as legs across shards, and the
// posts and voids of older sagas) carry an id of its own.
bool internal_record(const transfer& t) { return sid::kind_of(t.id) == sid::kind::transfer; }

void history_step(directory_actor* self, std::shared_ptr<history_walk> walk) {
  auto& st = self->state;
  self->request(st.opts.shards[walk->shard], caf::infinite, account_transfers_request{walk->ctx, walk->filter})
      .then(
          [self, walk](transfers_reply& page) mutable {
            auto& st = self->state;
            if (page.status != outcome::ok) {
              walk->done(transfers_reply{page.status, {}});
              return;
            }
            // Legs need their other half (and their saga's outcome) from the other shard.
            std::vector<std::vector<u128>> ask(st.shards);
            for (const transfer& t : page.transfers) {
              if (internal_record(t)) continue;
              if (is_clearing(t.credit_account_id)) ask[sid::clearing_to(t.credit_account_id) % st.shards].push_back(t.id);
              else if (is_clearing(t.debit_account_id)) ask[sid::clearing_to(t.debit_account_id) % st.shards].push_back(t.id);
            }
            // This shard's own legs with their status, too.
            std::vector<u128> own;
            for (const auto& ids : ask) own.insert(own.end(), ids.begin(), ids.end());
            ask[walk->shard] = std::move(own); // no leg's other half is in its own shard
            auto pg = std::make_shared<transfers_reply>(std::move(page));
            probe(self, std::move(ask), [self, walk, pg](outcome o, probed_map& probed) mutable {
              auto& st = self->state;
              if (o != outcome::ok) {
                walk->done(transfers_reply{o, {}});
                return;
              }
              for (const transfer& t : pg->transfers) {
                if (walk->out.transfers.size() >= walk->filter.limit) break;
                if (internal_record(t)) continue;
                transfer shown = t;
                if (is_clearing(t.credit_account_id) || is_clearing(t.debit_account_id)) {
                  auto it = probed.find(t.id);
                  view v;
                  if (it == probed.end() || !view_of(st, it->second, v) || !visible(v)) continue;
                  shown = v.t;
                  shown.timestamp = t.timestamp; // this shard's order, for paging
                } else {
                  shown.credit_account_id = as_written(st, t.credit_account_id);
                }
                walk->out.transfers.push_back(shown);
              }
              const bool more = pg->transfers.size() == walk->filter.limit && !pg->transfers.empty();
              if (walk->out.transfers.size() >= walk->filter.limit || !more) {
                walk->done(std::move(walk->out));
                return;
              }
              const uint64_t last = pg->transfers.back().timestamp;
              if (walk->filter.reversed) {
                if (last <= 1) { walk->done(std::move(walk->out)); return; }
                walk->filter.timestamp_max = last - 1;
              } else {
                walk->filter.timestamp_min = last + 1;
              }
              history_step(self, walk);
            });
          },
          [walk](caf::error&) mutable { walk->done(transfers_reply{outcome::store_unavailable, {}}); });
}

void history_read(directory_actor* self, const request_context& ctx, const store::account_filter& filter,
                  std::function<void(transfers_reply)> done) {
  auto walk = std::make_shared<history_walk>();
  walk->ctx = ctx;
  walk->filter = filter;
  walk->shard = shard_of(filter.account_id, self->state.shards);
  walk->done = std::move(done);
  history_step(self, walk);
}

// The sub-accounts of a split account that may exist (empty for any other account).
std::vector<u128> subs_of(const directory_state& st, u128 account_id) {
  std::vector<u128> subs;
  auto it = st.hot.find(account_id);
  if (it == st.hot.end()) return subs;
  for (uint32_t i = 0; i < it->second.created.size(); ++i) {
    if (it->second.created[i]) subs.push_back(sid::sub(account_id, i));
  }
  return subs;
}

// Calls `then(status)` once `left` parts are done: ok, or the first part's failure.
struct join {
  size_t left = 0;
  outcome status = outcome::ok;
  std::function<void(outcome)> then;
  void part_done(outcome o) {
    if (o != outcome::ok && status == outcome::ok) status = o;
    if (--left == 0) then(status);
  }
};

std::shared_ptr<join> join_of(size_t parts, std::function<void(outcome)> then) {
  auto j = std::make_shared<join>();
  j->left = parts + 1; // one for the caller, released by start()
  j->then = std::move(then);
  return j;
}

// A split account's history: its own row's transfers and its sub-accounts' credits, merged
// into one order (docs/protocol.md: by timestamp, then by shard) as one account would show.
void split_history_read(directory_actor* self, const request_context& ctx, const store::account_filter& filter,
                        std::function<void(outcome, std::vector<split_history::record>)> done) {
  auto& st = self->state;
  std::vector<store::account_filter> rows{filter};
  if (filter.credits) {
    for (u128 sub : subs_of(st, filter.account_id)) {
      store::account_filter f = filter;
      f.account_id = sub;
      f.debits = false; // a sub-account's debits are sweeps
      f.credits = true;
      rows.push_back(f);
    }
  }
  auto read = std::make_shared<std::vector<split_history::row_transfers>>(rows.size());
  auto j = join_of(rows.size(), [read, done, filter](outcome o) {
    if (o != outcome::ok) return done(o, {});
    done(outcome::ok, split_history::merge(*read, filter.limit, filter.reversed));
  });
  for (size_t r = 0; r < rows.size(); ++r) {
    (*read)[r].shard = shard_of(rows[r].account_id, st.shards);
    history_read(self, ctx, rows[r], [read, j, r](transfers_reply reply) {
      (*read)[r].transfers = std::move(reply.transfers);
      j->part_done(reply.status);
    });
  }
  j->part_done(outcome::ok);
}

caf::response_promise account_transfers(directory_actor* self, account_transfers_request& req) {
  auto rp = self->make_response_promise();
  if (subs_of(self->state, req.filter.account_id).empty()) {
    history_read(self, req.ctx, req.filter, [rp](transfers_reply reply) mutable { rp.deliver(std::move(reply)); });
    return rp;
  }
  split_history_read(self, req.ctx, req.filter, [rp](outcome o, std::vector<split_history::record> records) mutable {
    transfers_reply out{o, {}};
    for (const auto& r : records) out.transfers.push_back(r.transfer);
    rp.deliver(std::move(out));
  });
  return rp;
}

// Every record of `filter` in `shard` (paging by timestamp), appended to `into`.
template <class Reply, class Request, class Record>
void read_all(directory_actor* self, uint32_t shard, request_context ctx, store::account_filter filter,
              std::shared_ptr<std::vector<Record>> into, std::vector<Record> Reply::*records,
              std::function<void(outcome)> done) {
  self->request(self->state.opts.shards[shard], caf::infinite, Request{ctx, filter})
      .then(
          [=](Reply& page) mutable {
            if (page.status != outcome::ok) return done(page.status);
            const std::vector<Record>& got = page.*records;
            into->insert(into->end(), got.begin(), got.end());
            if (got.size() < filter.limit || got.empty()) return done(outcome::ok);
            const uint64_t last = got.back().timestamp;
            if (filter.reversed) {
              if (last <= 1) return done(outcome::ok);
              filter.timestamp_max = last - 1;
            } else {
              if (filter.timestamp_max != 0 && last >= filter.timestamp_max) return done(outcome::ok);
              filter.timestamp_min = last + 1;
            }
            read_all<Reply, Request, Record>(self, shard, ctx, filter, into, records, done);
          },
          [done](caf::error&) { done(outcome::store_unavailable); });
}

// One row's balance snapshots over [lo, hi] and the last one before lo, in ascending order.
void row_balances_read(directory_actor* self, const request_context& ctx, u128 account_id, uint64_t lo, uint64_t hi,
                       uint32_t page, std::shared_ptr<split_history::row_balances> into, std::function<void(outcome)> done) {
  const uint32_t shard = shard_of(account_id, self->state.shards);
  into->shard = shard;
  auto range = [self, ctx, account_id, lo, hi, page, into, done, shard](outcome o) {
    if (o != outcome::ok) return done(o);
    store::account_filter f{account_id, lo, hi, page, true, true, false};
    auto got = std::make_shared<std::vector<account_balance>>();
    read_all<balances_reply, account_balances_request, account_balance>(
        self, shard, ctx, f, got, &balances_reply::balances, [into, got, done](outcome o2) {
          into->snapshots.insert(into->snapshots.end(), got->begin(), got->end());
          done(o2);
        });
  };
  if (lo <= 1) return range(outcome::ok);
  store::account_filter before{account_id, 0, lo - 1, 1, true, true, true};
  self->request(self->state.opts.shards[shard], caf::infinite, account_balances_request{ctx, before})
      .then(
          [into, range](balances_reply& r) mutable {
            if (r.status == outcome::ok) into->snapshots = std::move(r.balances);
            range(r.status);
          },
          [done](caf::error&) { done(outcome::store_unavailable); });
}

// The balance snapshots of a sub-account created before sub-accounts took their account's
// history flag: counted from its transfers, from its first one to `hi`.
void row_balances_count(directory_actor* self, const request_context& ctx, u128 sub, uint64_t hi, uint32_t page,
                        std::shared_ptr<split_history::row_balances> into, std::function<void(outcome)> done) {
  const uint32_t shard = shard_of(sub, self->state.shards);
  into->shard = shard;
  auto got = std::make_shared<std::vector<transfer>>();
  store::account_filter f{sub, 0, hi, page, true, true, false};
  read_all<transfers_reply, account_transfers_request, transfer>(
      self, shard, ctx, f, got, &transfers_reply::transfers, [sub, into, got, done](outcome o) {
        account_balance b{};
        for (const transfer& t : *got) {
          const bool debit = t.debit_account_id == sub;
          u128& pending = debit ? b.debits_pending : b.credits_pending;
          u128& posted = debit ? b.debits_posted : b.credits_posted;
          if (has(t.flags, transfer_pending)) {
            pending += t.amount; // a leg of an older saga
          } else if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
            pending -= std::min(pending, t.amount); // its saga's post or void (whole)
            if (has(t.flags, transfer_post_pending)) posted += t.amount;
          } else {
            posted += t.amount;
          }
          b.timestamp = t.timestamp;
          into->snapshots.push_back(b);
        }
        done(o);
      });
}

// Sweeps (and gathers) out of a sub-account in another shard than the account's, whose legs
// may stand on either side of a record in [lo, hi]: those with their debit leg in [lo, hi],
// and the nearest ones before and after (a sub-account's sweeps apply one round after the
// other, in the same order in both shards, so only the nearest can straddle the range).
void sweeps_read(directory_actor* self, const request_context& ctx, u128 sub, uint32_t parent_shard, uint64_t lo,
                 uint64_t hi, uint32_t page, std::shared_ptr<std::vector<split_history::sweep>> into,
                 std::function<void(outcome)> done) {
  constexpr uint32_t nearest = 16;
  const uint32_t shard = shard_of(sub, self->state.shards);
  auto legs = std::make_shared<std::vector<transfer>>();
  auto j = join_of(lo > 1 ? 3 : 2, [self, legs, shard, parent_shard, into, done](outcome o) {
    if (o != outcome::ok) return done(o);
    std::vector<std::vector<u128>> ask(self->state.shards);
    for (const transfer& t : *legs) ask[parent_shard].push_back(t.id);
    probe(self, std::move(ask), [legs, shard, parent_shard, into, done](outcome o2, probed_map& probed) {
      if (o2 != outcome::ok) return done(o2);
      for (const transfer& t : *legs) {
        if (!internal_record(t)) continue;
        split_history::sweep w;
        w.sub_leg = {t.timestamp, shard};
        w.parent_leg = {UINT64_MAX, parent_shard}; // not applied there yet
        auto it = probed.find(t.id);
        if (it != probed.end()) {
          if (const probe_entry* e = it->second.in(parent_shard)) w.parent_leg.timestamp = e->transfer.timestamp;
        }
        w.amount = t.amount;
        into->push_back(w);
      }
      done(outcome::ok);
    });
  });
  auto part = [j](outcome o) { j->part_done(o); };
  store::account_filter in_range{sub, lo, hi, page, true, false, false};
  read_all<transfers_reply, account_transfers_request, transfer>(self, shard, ctx, in_range, legs,
                                                                 &transfers_reply::transfers, part);
  if (lo > 1) {
    store::account_filter before{sub, 0, lo - 1, nearest, true, false, true};
    self->request(self->state.opts.shards[shard], caf::infinite, account_transfers_request{ctx, before})
        .then([legs, part](transfers_reply& r) mutable {
                legs->insert(legs->end(), r.transfers.begin(), r.transfers.end());
                part(r.status);
              },
              [part](caf::error&) mutable { part(outcome::store_unavailable); });
  }
  store::account_filter after{sub, hi == UINT64_MAX ? hi : hi + 1, 0, nearest, true, false, false};
  self->request(self->state.opts.shards[shard], caf::infinite, account_transfers_request{ctx, after})
      .then([legs, part](transfers_reply& r) mutable {
              legs->insert(legs->end(), r.transfers.begin(), r.transfers.end());
              part(r.status);
            },
            [part](caf::error&) mutable { part(outcome::store_unavailable); });
  j->part_done(outcome::ok);
}

// A split account's balance after each transfer of its merged history: its own row's
// snapshots plus its sub-accounts' (which carry the history flag when the account does).
void split_balances(directory_actor* self, const request_context& ctx, const store::account_filter& filter,
                    std::vector<split_history::record> records, std::unordered_set<u128, u128_hash> counted,
                    caf::response_promise rp) {
  auto& st = self->state;
  const u128 parent = filter.account_id;
  const uint32_t parent_shard = shard_of(parent, st.shards);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& r : records) {
    lo = std::min(lo, r.transfer.timestamp);
    hi = std::max(hi, r.transfer.timestamp);
  }
  const std::vector<u128> subs = subs_of(st, parent);
  auto own = std::make_shared<split_history::row_balances>();
  std::vector<std::shared_ptr<split_history::row_balances>> sub_rows;
  auto sweeps = std::make_shared<std::vector<split_history::sweep>>();
  for (size_t i = 0; i < subs.size(); ++i) sub_rows.push_back(std::make_shared<split_history::row_balances>());
  size_t parts = 1 + subs.size();
  for (u128 sub : subs) parts += shard_of(sub, st.shards) != parent_shard ? 1 : 0;
  auto shared_records = std::make_shared<std::vector<split_history::record>>(std::move(records));
  auto j = join_of(parts, [rp, own, sub_rows, sweeps, shared_records](outcome o) mutable {
    if (o != outcome::ok) return rp.deliver(balances_reply{o, {}});
    std::vector<split_history::row_balances> rows;
    for (const auto& r : sub_rows) rows.push_back(std::move(*r));
    balances_reply out;
    for (const auto& r : *shared_records) {
      account_balance b;
      if (!split_history::aggregate_at(r.at(), *own, rows, *sweeps, b)) return rp.deliver(balances_reply{outcome::store_unavailable, {}});
      out.balances.push_back(b);
    }
    rp.deliver(std::move(out));
  });
  auto part = [j](outcome o) { j->part_done(o); };
  const uint32_t page = filter.limit;
  row_balances_read(self, ctx, parent, lo, hi, page, own, part);
  for (size_t i = 0; i < subs.size(); ++i) {
    if (counted.count(subs[i]) != 0) row_balances_count(self, ctx, subs[i], hi, page, sub_rows[i], part);
    else row_balances_read(self, ctx, subs[i], lo, hi, page, sub_rows[i], part);
    if (shard_of(subs[i], st.shards) != parent_shard) sweeps_read(self, ctx, subs[i], parent_shard, lo, hi, page, sweeps, part);
  }
  j->part_done(outcome::ok);
}

caf::response_promise account_balances(directory_actor* self, account_balances_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (subs_of(st, req.filter.account_id).empty()) {
    rp.delegate(st.opts.shards[shard_of(req.filter.account_id, st.shards)], std::move(req));
    return rp;
  }
  const request_context ctx = req.ctx;
  const store::account_filter filter = req.filter;
  split_history_read(self, ctx, filter, [self, rp, ctx, filter](outcome o, std::vector<split_history::record> records) mutable {
    if (o != outcome::ok || records.empty()) return rp.deliver(balances_reply{o, {}});
    // Snapshots only for an account with the history flag, as on one shard; sub-accounts
    // without it (created before they kept history) are counted from their transfers.
    auto& st = self->state;
    std::vector<std::vector<u128>> per_shard(st.shards);
    per_shard[shard_of(filter.account_id, st.shards)].push_back(filter.account_id);
    for (u128 sub : subs_of(st, filter.account_id)) per_shard[shard_of(sub, st.shards)].push_back(sub);
    std::vector<std::pair<uint32_t, lookup_accounts_request>> asks;
    for (uint32_t s = 0; s < st.shards; ++s) {
      if (!per_shard[s].empty()) asks.emplace_back(s, lookup_accounts_request{ctx, std::move(per_shard[s])});
    }
    fan_out<accounts_reply>(self, std::move(asks), [self, rp, ctx, filter, records = std::move(records)](auto& replies) mutable {
      bool history = false;
      std::unordered_set<u128, u128_hash> counted;
      for (auto& [shard, reply] : replies) {
        if (reply.status != outcome::ok) return rp.deliver(balances_reply{reply.status, {}});
        for (const account& a : reply.accounts) {
          if (a.id == filter.account_id) history = has(a.flags, account_history);
          else if (!has(a.flags, account_history)) counted.insert(a.id);
        }
      }
      if (!history) return rp.deliver(balances_reply{});
      split_balances(self, ctx, filter, std::move(records), std::move(counted), rp);
    });
  });
  return rp;
}

// ------------------------------------------------------------------ recovery and sweeps

// Finishes sagas from the log (at start) or whose resolution failed (later): every leg
// applied and none voided or expired -> post the pending ones; otherwise void them. Calls
// `done(ok)` when every leg is resolved (ok) or something could not be read or written.
void resolve_legs(directory_actor* self, std::vector<store::saga> sagas, std::function<void(bool)> done);

// Applies redo records again, one after the other in id order: every shard is sent its part
// (kassa's own accounts, then the transfers) and each event must answer ok or exists, since
// the directory decided them all before the record was written.
// One of kassa's own accounts that a shard holds (or a redo record creates): a clearing
// account, or a sub-account that gives its split back (the split of a hot account survives
// restarts this way).
void learn_own_account(directory_state& st, const account& a) {
  if (sid::is_clearing(a.id)) st.clearing_known.insert(a.id);
  if (sid::kind_of(a.id) != sid::kind::sub || a.user_data_32 >= 256) return;
  hot_state& h = st.hot[a.user_data_128];
  const uint32_t index = a.user_data_32;
  if (h.created.size() <= index) h.created.resize(index + 1, false);
  if (h.confirmed.size() <= index) h.confirmed.resize(index + 1, false);
  h.created[index] = true;
  h.confirmed[index] = true;
  h.sub_accounts = std::max<uint32_t>(h.sub_accounts, static_cast<uint32_t>(h.created.size()));
  h.ledger = a.ledger;
  h.by_shard.clear(); // the per-shard index is rebuilt on next use
  st.sub_parent[a.id] = a.user_data_128;
}

void redo_logged(directory_actor* self, std::shared_ptr<std::vector<store::saga>> records, size_t next,
                 std::function<void(bool)> done) {
  auto& st = self->state;
  if (next == records->size()) {
    done(true);
    return;
  }
  const store::saga& rec = (*records)[next];
  std::vector<create_accounts_request> accounts(st.shards);
  std::vector<create_transfers_request> transfers(st.shards);
  uint32_t shard_max = 0;
  for (const auto& a : rec.accounts) shard_max = std::max(shard_max, a.shard);
  for (const auto& t : rec.transfers) shard_max = std::max(shard_max, t.shard);
  if (shard_max >= st.shards) {
    st.opts.log_error("the saga log names a shard this configuration lacks",
                      "saga=" + std::to_string(rec.id) + " shard=" + std::to_string(shard_max));
    done(false);
    return;
  }
  // A record keeps each event's stamp in its timestamp field (0 in records written before).
  for (const auto& a : rec.accounts) {
    account event = a.value;
    accounts[a.shard].stamps.push_back(event.timestamp);
    event.timestamp = 0;
    accounts[a.shard].events.push_back(event);
    accounts[a.shard].system.push_back(a.system);
    // A sub-account the record creates: the split it gives back is known before any request
    // reads the transfers that landed on it (recovery learns the others from the shards first).
    learn_own_account(st, a.value);
  }
  for (const auto& t : rec.transfers) {
    transfer event = t.value;
    transfers[t.shard].stamps.push_back(event.timestamp);
    event.timestamp = 0;
    transfers[t.shard].events.push_back(event);
    transfers[t.shard].system.push_back(t.system);
  }
  std::vector<std::pair<uint32_t, create_accounts_request>> account_requests;
  std::vector<std::pair<uint32_t, create_transfers_request>> transfer_requests;
  for (uint32_t s = 0; s < st.shards; ++s) {
    if (!accounts[s].events.empty()) account_requests.emplace_back(s, std::move(accounts[s]));
    if (!transfers[s].events.empty()) transfer_requests.emplace_back(s, std::move(transfers[s]));
  }
  const uint64_t id = rec.id;
  auto ok = std::make_shared<bool>(true);
  auto left = std::make_shared<int>(2);
  auto both = [self, records, next, done, ok, left, id] {
    if (--*left != 0) return;
    if (!*ok) {
      done(false);
      return;
    }
    self->state.sagas_done.push_back(id);
    redo_logged(self, records, next + 1, done);
  };
  // Accounts first: a shard takes its create_accounts before its create_transfers.
  fan_out<create_reply>(self, std::move(account_requests), [self, ok, both, id](auto& replies) {
    for (auto& [shard, reply] : replies) {
      *ok = *ok && reply.status == outcome::ok;
      stamp_learn(self->state, reply.timestamp_last);
      for (const event_result& f : reply.failures) {
        if (f.code == static_cast<uint32_t>(account_result::exists)) continue;
        *ok = false;
        self->state.opts.log_error("a saga's account could not be created again",
                                   "saga=" + std::to_string(id) + " shard=" + std::to_string(shard) +
                                       " code=" + std::string(name(static_cast<account_result>(f.code))));
      }
    }
    both();
  });
  fan_out<create_reply>(self, std::move(transfer_requests), [self, ok, both, id](auto& replies) {
    for (auto& [shard, reply] : replies) {
      *ok = *ok && reply.status == outcome::ok;
      stamp_learn(self->state, reply.timestamp_last);
      // A shard holds its part of a round whole or not at all: found there, each event
      // answers exists, but a linked chain (one shard's, sent as it came) answers exists for
      // its first event and linked_event_failed for the others.
      bool found = false;
      for (const event_result& f : reply.failures) found = found || f.code == static_cast<uint32_t>(transfer_result::exists);
      for (const event_result& f : reply.failures) {
        if (f.code == static_cast<uint32_t>(transfer_result::exists)) continue;
        if (found && f.code == static_cast<uint32_t>(transfer_result::linked_event_failed)) continue;
        *ok = false;
        self->state.opts.log_error("a saga's transfer could not be applied again",
                                   "saga=" + std::to_string(id) + " shard=" + std::to_string(shard) +
                                       " code=" + std::string(name(static_cast<transfer_result>(f.code))));
      }
    }
    both();
  });
}

// Finishes what the saga log holds: records of pending legs (format version 1) by their rule,
// then redo records applied again.
void resolve_logged(directory_actor* self, std::vector<store::saga> sagas, std::function<void(bool)> done) {
  std::vector<store::saga> legs;
  auto redo = std::make_shared<std::vector<store::saga>>();
  for (auto& s : sagas) (s.redo() ? *redo : legs).push_back(std::move(s));
  resolve_legs(self, std::move(legs), [self, redo, done](bool ok) {
    if (!ok) {
      done(false);
      return;
    }
    redo_logged(self, redo, 0, done);
  });
}

void resolve_legs(directory_actor* self, std::vector<store::saga> sagas, std::function<void(bool)> done) {
  auto& st = self->state;
  std::vector<std::vector<u128>> leg_ids(st.shards);
  for (const auto& s : sagas) {
    for (const auto& l : s.legs) {
      if (l.shard >= st.shards) {
        st.opts.log_error("the saga log names a shard this configuration lacks",
                          "saga=" + std::to_string(s.id) + " shard=" + std::to_string(l.shard));
        done(false);
        return;
      }
      leg_ids[l.shard].push_back(l.id);
    }
  }
  auto shared = std::make_shared<std::vector<store::saga>>(std::move(sagas));
  probe(self, std::move(leg_ids), [self, shared, done](outcome o, probed_map& probed) {
    auto& st = self->state;
    if (o != outcome::ok) {
      done(false);
      return;
    }
    auto leg = [&](const store::saga_leg& l) -> const probe_entry* {
      auto it = probed.find(l.id);
      return it == probed.end() ? nullptr : it->second.in(l.shard);
    };
    std::vector<create_transfers_request> batches(st.shards);
    std::vector<uint64_t> finished;
    size_t committed = 0, aborted = 0;
    for (const auto& s : *shared) {
      bool commit = true;
      for (const auto& l : s.legs) {
        const probe_entry* e = leg(l);
        commit = commit && e != nullptr &&
                 (e->status == pending_status::pending || e->status == pending_status::posted);
      }
      (commit ? committed : aborted)++;
      for (const auto& l : s.legs) {
        const probe_entry* e = leg(l);
        if (e == nullptr || e->status != pending_status::pending) continue;
        transfer t{};
        t.id = sid::transfer(system_sequence_next(self));
        t.pending_id = l.id;
        t.flags = commit ? transfer_post_pending : transfer_void_pending;
        batches[l.shard].events.push_back(t);
        batches[l.shard].system.push_back(1);
      }
      finished.push_back(s.id);
    }
    if (committed + aborted > 0) {
      st.opts.log_info("sagas finished", "committed=" + std::to_string(committed) + " aborted=" + std::to_string(aborted));
    }
    std::vector<std::pair<uint32_t, create_transfers_request>> requests;
    for (uint32_t s = 0; s < st.shards; ++s) if (!batches[s].events.empty()) requests.emplace_back(s, std::move(batches[s]));
    fan_out<create_reply>(self, std::move(requests), [self, finished, done](auto& replies) {
      bool ok = true;
      for (auto& [shard, reply] : replies) ok = ok && reply.status == outcome::ok && reply.failures.empty();
      for (auto& [shard, reply] : replies) stamp_learn(self->state, reply.timestamp_last);
      if (ok) {
        auto& d = self->state.sagas_done;
        d.insert(d.end(), finished.begin(), finished.end());
      }
      done(ok);
    });
  });
}

// Takes the reads that waited for recovery.
void recovered(directory_actor* self) {
  auto& st = self->state;
  st.ready = true;
  auto reads = std::move(st.after_recovery);
  st.after_recovery.clear();
  for (auto& read : reads) read();
}

// A read (lookup or history) is answered from what recovery learned (which sub-accounts a
// split account has): one that comes before waits for it.
template <class Request, class Answer>
caf::response_promise read_when_recovered(directory_actor* self, Request& req, Answer answer) {
  if (self->state.ready) return answer(self, req);
  auto rp = self->make_response_promise();
  self->state.after_recovery.push_back([self, rp, req = std::move(req)]() mutable {
    rp.delegate(caf::actor_cast<caf::actor>(self), std::move(req));
  });
  return rp;
}

// At start: kassa's own accounts (clearing accounts, the sub-accounts that give the splits
// back), then the sagas the log holds. Requests wait in the queue meanwhile.
void recover(directory_actor* self) {
  auto& st = self->state;
  auto sagas = std::make_shared<std::vector<store::saga>>();
  if (st.opts.saga_log) {
    store::error err = st.opts.saga_log->load(*sagas);
    if (!err.ok()) {
      st.opts.log_error("cannot read the saga log; refusing changes", err.message);
      st.failed = true;
      recovered(self);
      return;
    }
    st.saga_next = st.opts.saga_log->id_last() + 1;
  }
  std::vector<std::pair<uint32_t, system_accounts_request>> asks;
  for (uint32_t s = 0; s < st.shards; ++s) asks.emplace_back(s, system_accounts_request{});
  fan_out<accounts_reply>(self, std::move(asks), [self, sagas](auto& replies) {
    auto& st = self->state;
    for (auto& [shard, reply] : replies) {
      if (reply.status != outcome::ok) {
        st.opts.log_error("a shard could not list kassa's own accounts; refusing changes", "shard=" + std::to_string(shard));
        st.failed = true;
      }
      for (const account& a : reply.accounts) learn_own_account(st, a);
      stamp_learn(st, reply.timestamp_last);
    }
    resolve_logged(self, std::move(*sagas), [self](bool ok) {
      auto& st = self->state;
      if (!ok) {
        st.opts.log_error("recovery could not finish every saga; refusing changes", "");
        st.failed = true;
      }
      st.round_busy = true;
      log_write(self, {}, [self](bool) {
        auto& st = self->state;
        st.round_busy = false;
        recovered(self);
        expiry_poll(self); // what the shards hold may be due, or will be
        round_start(self);
        deliver_drains(self);
      });
    });
  });
}

// Sagas whose legs could not be posted or voided (a shard failed meanwhile) are tried again
// between rounds.
std::chrono::nanoseconds tick_interval(const directory_options& o);

bool redo_due(directory_actor* self) {
  auto& st = self->state;
  if ((st.stuck.empty() && st.stuck_accounts.empty()) || st.round_busy || !st.ready || st.failed) return false;
  return st.opts.clock() >= st.redo_retry_ns;
}

void retry_unresolved(directory_actor* self) {
  auto& st = self->state;
  if (st.unresolved.empty() || st.round_busy || !st.ready || st.failed) return;
  st.round_busy = true;
  auto sagas = std::move(st.unresolved);
  st.unresolved.clear();
  auto copy = sagas;
  resolve_logged(self, std::move(sagas), [self, copy](bool ok) {
    auto& st = self->state;
    if (!ok) {
      st.unresolved.insert(st.unresolved.end(), copy.begin(), copy.end());
      const uint64_t ceiling = static_cast<uint64_t>(tick_interval(st.opts).count());
      st.redo_backoff_ns = std::min(ceiling, std::max<uint64_t>(10'000'000, st.redo_backoff_ns * 2));
      st.redo_retry_ns = st.opts.clock() + st.redo_backoff_ns;
    } else {
      st.redo_backoff_ns = 0;
      st.late_shards.clear();
    }
    stuck_refresh(st);
    st.round_busy = false;
    round_start(self);
    deliver_drains(self);
  });
}

// Moves what the sub-accounts of split accounts received back to their parents: one
// journaled transfer per sub-account with a balance, queued like any request.
void sweep(directory_actor* self) {
  auto& st = self->state;
  if (st.sweep_queued || !st.ready || st.failed) return;
  std::vector<std::vector<u128>> per_shard(st.shards);
  bool any = false;
  for (const auto& [parent, h] : st.hot) {
    for (uint32_t i = 0; i < h.created.size(); ++i) {
      if (!h.created[i]) continue;
      const u128 sub = sid::sub(parent, i);
      per_shard[shard_of(sub, st.shards)].push_back(sub);
      any = true;
    }
  }
  if (!any) return;
  st.sweep_queued = true;
  std::vector<std::pair<uint32_t, lookup_accounts_request>> requests;
  for (uint32_t s = 0; s < st.shards; ++s) {
    if (!per_shard[s].empty()) requests.emplace_back(s, lookup_accounts_request{request_context{}, std::move(per_shard[s])});
  }
  fan_out<accounts_reply>(self, std::move(requests), [self](auto& replies) {
    auto& st = self->state;
    auto w = std::make_shared<work>();
    w->internal = true;
    for (auto& [shard, reply] : replies) {
      for (const account& a : reply.accounts) {
        const u128 held = a.debits_posted + a.debits_pending; // cannot overflow: checked on write
        if (a.credits_posted <= held) continue;
        transfer t{};
        t.id = sid::transfer(system_sequence_next(self));
        t.debit_account_id = a.id;
        t.credit_account_id = a.user_data_128;
        t.amount = a.credits_posted - held;
        t.ledger = a.ledger;
        t.code = sid::sub_code;
        w->transfer_events.push_back(t);
      }
    }
    if (w->transfer_events.empty()) {
      st.sweep_queued = false;
      return;
    }
    // One sweep at a time: the next one reads balances this one has moved.
    w->done = [self] { self->state.sweep_queued = false; };
    w->system.assign(w->transfer_events.size(), 1);
    w->results.assign(w->transfer_events.size(), 0);
    st.sweeps->add();
    st.sweep_transfers->add(w->transfer_events.size());
    st.queue.push_back(w);
    st.queue_events += w->transfer_events.size();
    round_start(self);
  });
}

// Arms the expiry timer for `deadline_ns` (0: none), unless it is armed for one as early.
void expiry_arm(directory_actor* self, uint64_t deadline_ns) {
  auto& st = self->state;
  if (deadline_ns == 0 || (st.expiry_timer_ns != 0 && st.expiry_timer_ns <= deadline_ns)) return;
  const uint64_t now = st.opts.clock();
  st.expiry_timer_ns = deadline_ns;
  self->delayed_send(self, std::chrono::nanoseconds(deadline_ns > now ? deadline_ns - now : 0), expire_atom::value);
}

// Asks every shard which pending transfers are due at the directory's clock and queues their
// expiry like any request (plan_expiry decides each in its round). One poll at a time.
void expiry_poll(directory_actor* self) {
  auto& st = self->state;
  if (!st.ready || st.failed) return;
  if (st.expiry_queued) {
    st.expiry_again = true;
    return;
  }
  st.expiry_queued = true;
  st.expiry_again = false;
  const uint64_t now = st.opts.clock();
  // At most a round's worth of expiries per poll; the rest are due at once again.
  const uint32_t limit = static_cast<uint32_t>(std::max<size_t>(1, st.opts.round_events_max / st.shards));
  std::vector<std::pair<uint32_t, due_pending_request>> asks;
  for (uint32_t s = 0; s < st.shards; ++s) asks.emplace_back(s, due_pending_request{now, limit});
  fan_out<due_pending_reply>(self, std::move(asks), [self](auto& replies) {
    auto& st = self->state;
    auto w = std::make_shared<work>();
    w->internal = true;
    std::unordered_set<u128, u128_hash> named;
    uint64_t next = 0;
    for (auto& [shard, reply] : replies) {
      if (reply.status != outcome::ok) continue; // a failed shard is asked again at its next deadline
      if (reply.next_ns != 0 && (next == 0 || reply.next_ns < next)) next = reply.next_ns;
      for (u128 id : reply.ids) {
        if (!named.insert(id).second) continue; // both legs of one transfer
        transfer t{};
        t.id = id;
        t.pending_id = id;
        t.flags = transfer_void_pending;
        w->transfer_events.push_back(t);
      }
    }
    auto finished = [self, next] {
      auto& st = self->state;
      st.expiry_queued = false;
      expiry_arm(self, next);
      if (st.expiry_again) expiry_poll(self);
    };
    if (w->transfer_events.empty()) {
      finished();
      return;
    }
    w->done = finished;
    w->system.assign(w->transfer_events.size(), system_expire);
    w->results.assign(w->transfer_events.size(), 0);
    st.queue.push_back(w);
    st.queue_events += w->transfer_events.size();
    round_start(self);
  });
}

// --------------------------------------------------------------------------- behavior

caf::behavior passthrough(directory_actor* self) {
  caf::actor shard = self->state.opts.shards.front();
  auto sample = [self] { self->state.mailbox->set(mailbox_waiting(self)); };
  return {
      [=](create_accounts_request& r) {
        sample();
        self->delegate(shard, std::move(r));
      },
      [=](create_transfers_request& r) {
        sample();
        self->delegate(shard, std::move(r));
      },
      [=](lookup_accounts_request& r) { self->delegate(shard, std::move(r)); },
      [=](lookup_transfers_request& r) { self->delegate(shard, std::move(r)); },
      [=](account_transfers_request& r) { self->delegate(shard, std::move(r)); },
      [=](account_balances_request& r) { self->delegate(shard, std::move(r)); },
      [=](const transfers_by_id_request& r) { return transfers_by_id(self, r); },
      [=](drain_atom a) { self->delegate(shard, a); },
  };
}

// The directory's timer: sweeps, and retries of sagas a failed shard left unresolved.
std::chrono::nanoseconds tick_interval(const directory_options& o) {
  return std::chrono::nanoseconds(o.sweep_interval_ns != 0 ? o.sweep_interval_ns : 1'000'000'000);
}

// Split accounts and their sub-accounts, counted again on each tick (a few entries).
void count_hot(directory_actor* self) {
  auto& st = self->state;
  int64_t split = 0, subs = 0;
  for (const auto& [parent, h] : st.hot) {
    if (h.sub_accounts == 0) continue;
    ++split;
    subs += h.sub_accounts;
  }
  st.hot_accounts->set(split);
  st.hot_sub_accounts->set(subs);
}

caf::behavior directory(directory_actor* self, directory_options opts) {
  auto& st = self->state;
  st.shards = static_cast<uint32_t>(opts.shards.size());
  st.opts = std::move(opts);
  st.adaptive_window_ns = st.opts.adaptive_window_ns;
  st.adaptive_credits_min = st.opts.adaptive_credits_min;
  st.adaptive_sub_accounts = st.opts.adaptive_sub_accounts;
  metrics::registry& m = *st.opts.metrics;
  st.mailbox = &metrics::mailbox_depth(m, st.opts.metrics_prefix + "directory");
  // A second store (shadow) keeps its hot accounts out of the real store's numbers.
  metrics::registry& hot = st.opts.metrics_prefix.empty() ? m : st.unshown;
  st.hot_accounts = &hot.get_gauge("kassa_hot_accounts", "Accounts split into sub-accounts (hot accounts)");
  st.hot_sub_accounts = &hot.get_gauge("kassa_hot_sub_accounts", "Sub-accounts of the split accounts");
  st.sweeps = &hot.get_counter("kassa_sweeps_total", "Sweeps of sub-account balances back to their accounts");
  st.sweep_transfers = &hot.get_counter("kassa_sweep_transfers_total",
                                        "Transfers the sweeps wrote (one per sub-account with a balance)");
  st.passthrough = st.shards == 1 && st.opts.hot_static.empty() && st.opts.adaptive_window_ns == 0;
  if (st.passthrough) return passthrough(self);
  for (const hot_account_rule& rule : st.opts.hot_static) {
    hot_state& h = st.hot[rule.id];
    h.sub_accounts = std::max<uint32_t>(2, std::min<uint32_t>(256, rule.sub_accounts));
  }
  if (st.opts.saga_log) {
    st.writer = st.opts.saga_writer_detached ? self->system().spawn<caf::detached>(saga_writer, st.opts.saga_log)
                                             : self->system().spawn(saga_writer, st.opts.saga_log);
    self->attach_functor([writer = st.writer](const caf::error&) {
      caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    });
  }
  // The directory judges every deadline from now on: no shard expires a pending transfer of
  // its own accord (this reaches each shard before anything else the directory sends it).
  for (const caf::actor& shard : st.opts.shards) self->send(shard, expiry_handover{});
  count_hot(self);
  recover(self);
  self->delayed_send(self, tick_interval(st.opts), sweep_atom::value);

  return {
      [self](create_accounts_request& r) { return enqueue(self, r, true); },
      [self](create_transfers_request& r) { return enqueue(self, r, false); },
      [self](lookup_accounts_request& r) { return read_when_recovered(self, r, lookup_accounts); },
      [self](lookup_transfers_request& r) { return read_when_recovered(self, r, lookup_transfers); },
      [self](account_transfers_request& r) { return read_when_recovered(self, r, account_transfers); },
      [self](account_balances_request& r) { return read_when_recovered(self, r, account_balances); },
      [self](transfers_by_id_request& r) {
        return read_when_recovered(self, r, [](directory_actor* s, transfers_by_id_request& q) { return transfers_by_id(s, q); });
      },
      [self](sweep_atom) {
        count_hot(self);
        retry_unresolved(self);
        if (self->state.opts.sweep_interval_ns != 0) sweep(self);
        self->delayed_send(self, tick_interval(self->state.opts), sweep_atom::value);
      },
      [self](expire_atom) {
        self->state.expiry_timer_ns = 0;
        expiry_poll(self);
      },
      [self](drain_atom) -> caf::response_promise {
        auto rp = self->make_response_promise();
        self->state.drains.push_back(rp);
        deliver_drains(self);
        return rp;
      },
  };
}

} // namespace

caf::actor spawn_directory(caf::actor_system& sys, directory_options opts, std::string& error) {
  if (opts.shards.empty()) {
    error = "the directory needs at least one shard";
    return {};
  }
  if (opts.shards.size() > 1 && !opts.saga_log) {
    error = "more than one shard needs a saga log";
    return {};
  }
  if (!opts.clock) opts.clock = now_ns;
  if (!opts.log_error) opts.log_error = [](const std::string&, const std::string&) {};
  if (!opts.log_info) opts.log_info = [](const std::string&, const std::string&) {};
  return sys.spawn(directory, std::move(opts));
}

} // namespace kassa::actors
