#include "actors/shard.hpp"

#include <chrono>
#include <deque>
#include <functional>

#include "actors/mailbox.hpp"
#include "ledger/system_ids.hpp"
#include "metrics/shared.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors {

using namespace ledger;

uint64_t now_ns() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count());
}

namespace {

// A reply held back until the group that contains its effects is durable.
struct waiter {
  uint64_t group;
  size_t events; // counted in events_unacked until released
  std::function<void(bool durable)> release;
  uint64_t applied_ns = 0; // steady clock when a create_* was applied; 0: not measured
};

// What a shard records (docs/operations.md#metrics); set up when it starts.
struct shard_metrics {
  metrics::histogram* routing = nullptr;
  metrics::histogram* accounts = nullptr;
  metrics::histogram* commit_wait = nullptr;
  metrics::histogram* commit_seconds = nullptr;
  metrics::histogram* commit_batch_events = nullptr;
  metrics::counter* commits = nullptr;
  metrics::counter* commit_failures = nullptr;
  metrics::gauge* mailbox = nullptr;

  void setup(metrics::registry& r, const std::string& prefix, uint32_t shard) {
    routing = &metrics::stage_seconds(r, metrics::stage::routing);
    accounts = &metrics::stage_seconds(r, metrics::stage::accounts);
    commit_wait = &metrics::stage_seconds(r, metrics::stage::commit_wait);
    const metrics::labels l{{"shard", prefix + std::to_string(shard)}};
    commit_seconds = &r.get_histogram("kassa_commit_seconds", "A group commit: its write transaction and fsync", l,
                                      metrics::seconds_buckets());
    commit_batch_events = &r.get_histogram("kassa_commit_batch_events", "Events in one group commit", l,
                                           metrics::powers_of_two(20));
    commits = &r.get_counter("kassa_commits_total", "Group commits made durable", l);
    commit_failures = &r.get_counter("kassa_commit_failures_total",
                                     "Group commits that failed (the shard recovered from disk)", l);
    mailbox = &metrics::mailbox_depth(r, prefix + "shard" + std::to_string(shard));
  }
};

struct shard_state {
  static inline const char* name = "kassa.shard";

  shard_options opts;
  std::shared_ptr<state_machine> sm;
  bool failed = false;          // recovery after a failed commit failed too: refuse all
  bool full = false;            // the store's map is full: refuse changes, serve reads
  bool writer_busy = false;     // one group at a time is with the writer
  uint64_t group_open = 1;      // the group that changes applied now will belong to
  uint64_t group_durable = 0;   // the last group the writer made durable
  uint64_t timestamp_durable = 0;
  size_t events_unacked = 0;    // applied or queued, not yet durable
  size_t events_open = 0;       // applied into the group being filled
  bool flush_timer = false;     // a delayed flush is armed (commit_delay_ns)
  uint64_t expiry_timer_ns = 0; // deadline the armed expiry timer is for; 0 = none
  bool expire_self = true;      // false once the directory judges deadlines (expiry_handover)
  std::deque<waiter> waiting;   // ordered by group
  size_t group_events = 0;      // events of the group with the writer
  shard_metrics stats;
};

using shard_self = shard_actor::stateful_pointer<shard_state>;

void flush(shard_self self);
void maybe_flush(shard_self self);
void arm_expiry(shard_self self);

// The group a reply must wait for so that everything it reflects is durable.
uint64_t group_needed(shard_self self) {
  auto& st = self->state;
  if (!st.sm->changes().empty()) return st.group_open;
  if (st.writer_busy) return st.group_open - 1;
  return st.group_durable;
}

void hold(shard_self self, size_t events, std::function<void(bool)> release, uint64_t applied_ns = 0) {
  auto& st = self->state;
  const uint64_t group = group_needed(self);
  if (group <= st.group_durable) {
    if (applied_ns != 0) st.stats.commit_wait->observe(0); // nothing of it waits for the disk
    release(true);
    return;
  }
  st.events_unacked += events;
  st.waiting.push_back(waiter{group, events, std::move(release), applied_ns});
}

void release_through(shard_self self, uint64_t group, bool durable) {
  auto& st = self->state;
  const uint64_t now = st.waiting.empty() || !durable ? 0 : metrics::steady_ns();
  while (!st.waiting.empty() && (st.waiting.front().group <= group || !durable)) {
    waiter w = std::move(st.waiting.front());
    st.waiting.pop_front();
    st.events_unacked -= w.events;
    if (durable && w.applied_ns != 0) st.stats.commit_wait->observe(metrics::elapsed(w.applied_ns, now));
    w.release(durable);
  }
}

// A commit failed: nothing that is not on disk may be acknowledged. Every held reply gets
// store_unavailable, and the state machine is rebuilt from the store (fail-stop, recover).
void fail_stop(shard_self self, const std::string& why) {
  auto& st = self->state;
  st.opts.log_error("commit failed; recovering the shard from disk", why);
  release_through(self, UINT64_MAX, false);
  st.writer_busy = false;
  st.events_open = 0;
  auto fresh = std::make_shared<state_machine>();
  store::error err = st.opts.store->load(*fresh);
  if (!err.ok()) {
    st.opts.log_error("shard recovery failed; refusing requests", err.message);
    st.failed = true;
    return;
  }
  fresh->timestamp_lanes_set(st.opts.shard % st.opts.shards, st.opts.shards);
  st.sm = std::move(fresh);
  st.timestamp_durable = st.sm->timestamp_last();
  st.expiry_timer_ns = 0;
  arm_expiry(self);
}

void committed(shard_self self, commit_done& done, uint64_t timestamp_last) {
  auto& st = self->state;
  st.writer_busy = false;
  if (!done.error.ok()) {
    st.stats.commit_failures->add();
    fail_stop(self, std::string(store::name(done.error.code)) + ": " + done.error.message);
    if (done.error.code == store::errc::map_full && !st.failed) {
      // Every further change would fail the same way, and each failure costs a reload:
      // refuse changes until an operator raises store.map_size_mib and restarts.
      st.full = true;
      st.opts.log_error("the store is full: refusing changes, serving reads",
                        "raise store.map_size_mib and restart kassad");
    }
    return;
  }
  st.stats.commits->add();
  st.stats.commit_seconds->observe(done.stats.write_ns + done.stats.sync_ns);
  st.stats.commit_batch_events->observe(st.group_events);
  st.group_durable = done.group;
  st.timestamp_durable = timestamp_last;
  release_through(self, done.group, true);
  st.sm->transfers_evict(st.opts.transfers_resident_max, st.timestamp_durable);
  if (!st.sm->changes().empty()) flush(self);
}

// Hands everything applied so far to the writer as one group (one transaction, one fsync).
void flush(shard_self self) {
  auto& st = self->state;
  if (st.writer_busy || st.failed || st.full || st.sm->changes().empty()) return;
  commit_group g{st.group_open++, st.sm->changes_take()};
  st.group_events = g.changes.transfers_created.size() + g.changes.accounts_created.size();
  st.events_open = 0;
  const uint64_t timestamp_last = g.changes.timestamp_last;
  st.writer_busy = true;
  self->request(st.opts.writer, caf::infinite, std::move(g))
      .then([self, timestamp_last](commit_done& done) { committed(self, done, timestamp_last); },
            [self](caf::error& e) { fail_stop(self, "writer: " + self->system().render(e)); });
}

// After applying: hand the group to the writer now, or once commit_delay_ns has passed so that
// more work can join it. A busy writer takes the group when it is done (see committed()).
void maybe_flush(shard_self self) {
  auto& st = self->state;
  if (st.writer_busy || st.sm->changes().empty()) return;
  if (st.opts.commit_delay_ns == 0 || st.events_open >= st.opts.commit_events_max) {
    flush(self);
    return;
  }
  if (st.flush_timer) return;
  st.flush_timer = true;
  self->delayed_send(self, std::chrono::nanoseconds(st.opts.commit_delay_ns), flush_atom::value);
}

void arm_expiry(shard_self self) {
  auto& st = self->state;
  const uint64_t deadline = st.sm->pending_deadline_next_ns();
  if (!st.expire_self || deadline == 0 || (st.expiry_timer_ns != 0 && st.expiry_timer_ns <= deadline)) return;
  const uint64_t now = self->state.opts.clock();
  const uint64_t wait_ns = deadline > now ? deadline - now : 0;
  st.expiry_timer_ns = deadline;
  self->delayed_send(self, std::chrono::nanoseconds(wait_ns), expire_atom::value);
}

// Checks that hold for every request before any work: returns ok or why to refuse it.
outcome admit(shard_self self, const request_context& ctx, size_t events) {
  auto& st = self->state;
  if (st.failed || (st.full && events > 0)) return outcome::store_unavailable;
  if (ctx.deadline_ns != 0 && self->state.opts.clock() > ctx.deadline_ns) return outcome::deadline_exceeded;
  if (events > 0 && st.events_open + events > st.opts.commit_events_max) return outcome::busy;
  return outcome::ok;
}

// The directory's stamps for a batch, one per event (anything else: the shard stamps).
const uint64_t* stamps_of(const std::vector<uint64_t>& stamps, size_t events) {
  return stamps.size() == events && events != 0 ? stamps.data() : nullptr;
}

template <class Result>
std::vector<event_result> failures_of(const std::vector<Result>& results) {
  std::vector<event_result> out;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i] != Result::ok) out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(results[i])});
  }
  return out;
}

// After a create_* batch was applied: holds its reply until its group is durable, counts the
// applied events into the group being formed, and hands the group over when it is time.
void answer_when_durable(shard_self self, caf::typed_response_promise<create_reply> rp, size_t events,
                         std::vector<event_result> failures, uint64_t applied_ns) {
  const size_t applied = events - failures.size(); // refused events change nothing
  create_reply done{outcome::ok, std::move(failures), self->state.sm->timestamp_last()};
  hold(self, events, [rp, reply = std::move(done)](bool durable) mutable {
    rp.deliver(durable ? std::move(reply) : create_reply{outcome::store_unavailable, {}});
  }, applied_ns);
  self->state.events_open += applied;
  maybe_flush(self);
}

bool filter_valid(const shard_options& opts, const store::account_filter& f) {
  return f.account_id != 0 && f.account_id != u128_max && f.limit > 0 &&
         f.limit <= opts.query_limit_max && (f.debits || f.credits) &&
         (f.timestamp_max == 0 || f.timestamp_min <= f.timestamp_max);
}

// An account query reads the store, so it runs once everything applied before it is durable.
template <class Reply, class Query>
caf::typed_response_promise<Reply> account_query(shard_self self, const request_context& ctx,
                                    const store::account_filter& filter, Query query) {
  auto rp = self->template make_response_promise<Reply>();
  if (outcome o = admit(self, ctx, 0); o != outcome::ok) {
    rp.deliver(Reply{o, {}});
    return rp;
  }
  if (!filter_valid(self->state.opts, filter)) {
    rp.deliver(Reply{outcome::filter_invalid, {}});
    return rp;
  }
  hold(self, 0, [self, rp, filter, query](bool durable) mutable {
    Reply reply;
    if (!durable || !query(*self->state.opts.store, filter, reply).ok()) {
      reply = Reply{outcome::store_unavailable, {}};
    }
    rp.deliver(std::move(reply));
  });
  return rp;
}

// The transfers of an id range, from the store once everything applied before is durable,
// each with its pending status (the transfer itself is brought in like a probe's).
caf::typed_response_promise<shard_transfers_by_id_reply> transfers_by_id(shard_self self,
                                                                         const transfers_by_id_request& req) {
  auto rp = self->make_response_promise<shard_transfers_by_id_reply>();
  if (outcome o = admit(self, request_context{}, 0); o != outcome::ok) {
    rp.deliver(shard_transfers_by_id_reply{o, {}, false});
    return rp;
  }
  if (req.limit == 0) {
    rp.deliver(shard_transfers_by_id_reply{outcome::filter_invalid, {}, false});
    return rp;
  }
  if (req.limit > self->state.opts.query_limit_max) {
    rp.deliver(shard_transfers_by_id_reply{outcome::too_many, {}, false});
    return rp;
  }
  hold(self, 0, [self, rp, req](bool durable) mutable {
    auto& st = self->state;
    shard_transfers_by_id_reply reply;
    std::vector<transfer> found;
    if (!durable || st.failed || !st.opts.store->transfers_by_id(req.id_min, req.id_end, req.limit, found).ok()) {
      rp.deliver(shard_transfers_by_id_reply{outcome::store_unavailable, {}, false});
      return;
    }
    // The store loads what a batch names (ids and pending ids); this names ids only.
    std::vector<transfer> named(found.size(), transfer{});
    for (size_t i = 0; i < found.size(); ++i) named[i].id = found[i].id;
    if (!st.opts.store->prefetch(*st.sm, named.data(), named.size()).ok()) {
      rp.deliver(shard_transfers_by_id_reply{outcome::store_unavailable, {}, false});
      return;
    }
    reply.full = found.size() >= req.limit;
    for (uint32_t i = 0; i < found.size(); ++i) {
      const transfer* t = st.sm->transfer_find(found[i].id);
      reply.entries.push_back(probe_entry{i, t ? *t : found[i], st.sm->pending_find(found[i].id).status});
    }
    rp.deliver(std::move(reply));
  });
  return rp;
}

// A create_* request starts being applied: records how long it took to get here (routing) and
// samples the mailbox. Returns the steady clock for the accounts stage.
uint64_t apply_start(shard_self self, const request_context& ctx) {
  auto& st = self->state;
  const uint64_t now = metrics::steady_ns();
  if (ctx.handed_ns != 0) st.stats.routing->observe(metrics::elapsed(ctx.handed_ns, now));
  st.stats.mailbox->set(mailbox_waiting(self));
  return now;
}

// The request's events are applied to account state: records the accounts stage; returns
// the steady clock, where its commit_wait starts.
uint64_t apply_end(shard_self self, uint64_t started_ns) {
  const uint64_t now = metrics::steady_ns();
  self->state.stats.accounts->observe(metrics::elapsed(started_ns, now));
  return now;
}

// Answers a read once everything it may show is durable (store_unavailable if that fails).
template <class Reply>
caf::typed_response_promise<Reply> deliver_when_durable(shard_self self, caf::typed_response_promise<Reply> rp,
                                                        Reply reply) {
  hold(self, 0, [rp, reply = std::move(reply)](bool durable) mutable {
    Reply failed;
    failed.status = outcome::store_unavailable;
    rp.deliver(durable ? std::move(reply) : std::move(failed));
  });
  return rp;
}

// Applies new accounts and answers once they are durable.
caf::typed_response_promise<create_reply> on_create_accounts(shard_self self, create_accounts_request& req) {
  auto rp = self->make_response_promise<create_reply>();
  auto& st = self->state;
  if (outcome o = admit(self, req.ctx, req.events.size()); o != outcome::ok) {
    rp.deliver(create_reply{o, {}});
    return rp;
  }
  const uint64_t started_ns = apply_start(self, req.ctx);
  auto results = st.sm->create_accounts(req.events.data(), req.events.size(), self->state.opts.clock(),
                                        req.system.empty() ? nullptr : req.system.data(),
                                        stamps_of(req.stamps, req.events.size()));
  answer_when_durable(self, rp, req.events.size(), failures_of(results), apply_end(self, started_ns));
  return rp;
}

// Applies transfers (after the pending transfers due, when the shard expires its own) with
// what they name loaded from the store, and answers once they are durable.
caf::typed_response_promise<create_reply> on_create_transfers(shard_self self, create_transfers_request& req) {
  auto rp = self->make_response_promise<create_reply>();
  auto& st = self->state;
  if (outcome o = admit(self, req.ctx, req.events.size()); o != outcome::ok) {
    rp.deliver(create_reply{o, {}});
    return rp;
  }
  const uint64_t started_ns = apply_start(self, req.ctx);
  const uint64_t now = self->state.opts.clock();
  if (st.expire_self) st.sm->expire_pending(now);
  if (store::error err = st.opts.store->prefetch(*st.sm, req.events.data(), req.events.size());
      !err.ok()) {
    rp.deliver(create_reply{outcome::store_unavailable, {}});
    return rp;
  }
  auto results = st.sm->create_transfers(req.events.data(), req.events.size(), now,
                                         req.system.empty() ? nullptr : req.system.data(),
                                         stamps_of(req.stamps, req.events.size()));
  answer_when_durable(self, rp, req.events.size(), failures_of(results), apply_end(self, started_ns));
  arm_expiry(self);
  return rp;
}

// Accounts by id, from memory, answered once what they show is durable.
caf::typed_response_promise<accounts_reply> on_lookup_accounts(shard_self self, lookup_accounts_request& req) {
  auto rp = self->make_response_promise<accounts_reply>();
  if (outcome o = admit(self, req.ctx, 0); o != outcome::ok) {
    rp.deliver(accounts_reply{o, {}});
    return rp;
  }
  accounts_reply reply;
  for (u128 id : req.ids) {
    if (const account* a = self->state.sm->account_find(id)) reply.accounts.push_back(*a);
  }
  return deliver_when_durable(self, rp, std::move(reply));
}

// Transfers by id, in request order: from memory, else from the store; answered once what
// they show is durable.
caf::typed_response_promise<transfers_reply> on_lookup_transfers(shard_self self, lookup_transfers_request& req) {
  auto rp = self->make_response_promise<transfers_reply>();
  auto& st = self->state;
  if (outcome o = admit(self, req.ctx, 0); o != outcome::ok) {
    rp.deliver(transfers_reply{o, {}});
    return rp;
  }
  transfers_reply reply;
  std::vector<u128> on_disk;
  for (u128 id : req.ids) {
    if (id == 0 || id == u128_max) continue;
    if (!st.sm->transfer_find(id)) on_disk.push_back(id);
  }
  std::vector<transfer> found;
  if (!on_disk.empty()) {
    if (store::error err = st.opts.store->lookup_transfers(on_disk.data(), on_disk.size(), found);
        !err.ok()) {
      rp.deliver(transfers_reply{outcome::store_unavailable, {}});
      return rp;
    }
  }
  // Answer in request order, from memory first, then from what the store found.
  size_t next_found = 0;
  for (u128 id : req.ids) {
    if (id == 0 || id == u128_max) continue;
    if (const transfer* t = st.sm->transfer_find(id)) {
      reply.transfers.push_back(*t);
    } else if (next_found < found.size() && found[next_found].id == id) {
      reply.transfers.push_back(found[next_found++]);
    }
  }
  return deliver_when_durable(self, rp, std::move(reply));
}

// What the shard holds of each id (the transfer and its pending state), for the directory's
// round planner; answered once durable.
caf::typed_response_promise<probe_reply> on_probe(shard_self self, probe_request& req) {
  auto rp = self->make_response_promise<probe_reply>();
  auto& st = self->state;
  if (st.failed) {
    rp.deliver(probe_reply{outcome::store_unavailable, {}});
    return rp;
  }
  // The store loads what a batch names (ids and pending ids); a probe names ids only.
  std::vector<transfer> named(req.ids.size(), transfer{});
  for (size_t i = 0; i < req.ids.size(); ++i) named[i].id = req.ids[i];
  if (store::error err = st.opts.store->prefetch(*st.sm, named.data(), named.size()); !err.ok()) {
    rp.deliver(probe_reply{outcome::store_unavailable, {}});
    return rp;
  }
  probe_reply reply;
  for (size_t i = 0; i < req.ids.size(); ++i) {
    if (const transfer* t = st.sm->transfer_find(req.ids[i])) {
      const pending_state ps = st.sm->pending_find(t->id);
      reply.entries.push_back(probe_entry{static_cast<uint32_t>(i), *t, ps.status, ps.expires_at_ns});
    }
  }
  return deliver_when_durable(self, rp, std::move(reply));
}

// kassa's own accounts in this shard (clearing, sub-accounts, the payment core's chart).
caf::typed_response_promise<accounts_reply> on_system_accounts(shard_self self, system_accounts_request&) {
  auto rp = self->make_response_promise<accounts_reply>();
  accounts_reply reply;
  reply.timestamp_last = self->state.sm->timestamp_last();
  if (self->state.failed) reply.status = outcome::store_unavailable;
  else self->state.sm->accounts_for_each([&](const account& a) {
    if (system_ids::reserved(a.id)) reply.accounts.push_back(a);
  });
  return deliver_when_durable(self, rp, std::move(reply));
}

shard_actor::behavior_type shard(shard_self self, shard_options opts, std::shared_ptr<state_machine> recovered) {
  self->state.stats.setup(*opts.metrics, opts.metrics_prefix, opts.shard);
  self->state.opts = std::move(opts);
  self->state.sm = std::move(recovered);
  self->state.timestamp_durable = self->state.sm->timestamp_last();
  arm_expiry(self);
  return {
      [self](create_accounts_request& req) { return on_create_accounts(self, req); },
      [self](create_transfers_request& req) { return on_create_transfers(self, req); },
      [self](lookup_accounts_request& req) { return on_lookup_accounts(self, req); },
      [self](lookup_transfers_request& req) { return on_lookup_transfers(self, req); },
      [self](probe_request& req) { return on_probe(self, req); },
      [self](expiry_handover) { self->state.expire_self = false; },
      [self](const due_pending_request& req) {
        auto& st = self->state;
        due_pending_reply reply;
        if (st.failed) reply.status = outcome::store_unavailable;
        else reply.ids = st.sm->pending_due(req.now_ns, req.limit, reply.next_ns);
        return reply;
      },
      [self](const transfers_by_id_request& req) { return transfers_by_id(self, req); },
      [self](system_accounts_request& req) { return on_system_accounts(self, req); },
      [self](account_transfers_request& req) {
        return account_query<transfers_reply>(
            self, req.ctx, req.filter,
            [](const store::store& db, const store::account_filter& f, transfers_reply& r) {
              return db.account_transfers(f, r.transfers);
            });
      },
      [self](account_balances_request& req) {
        return account_query<balances_reply>(
            self, req.ctx, req.filter,
            [](const store::store& db, const store::account_filter& f, balances_reply& r) {
              return db.account_balances(f, r.balances);
            });
      },
      [self](expire_atom) {
        auto& st = self->state;
        st.expiry_timer_ns = 0;
        if (st.failed || st.full || !st.expire_self) return; // an expiry is a change too
        st.sm->expire_pending(self->state.opts.clock());
        maybe_flush(self);
        arm_expiry(self);
      },
      [self](flush_atom) {
        self->state.flush_timer = false;
        flush(self);
      },
      [self](drain_atom) -> caf::typed_response_promise<drain_atom, bool> {
        auto rp = self->make_response_promise<drain_atom, bool>();
        flush(self);
        hold(self, 0, [rp](bool durable) mutable { rp.deliver(drain_atom::value, durable); });
        return rp;
      },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, shard_options opts, store::error& err) {
  auto sm = std::make_shared<state_machine>();
  err = opts.store->load(*sm);
  if (!err.ok()) return {};
  if (opts.shards == 0) opts.shards = 1;
  sm->timestamp_lanes_set(opts.shard % opts.shards, opts.shards);
  if (!opts.log_error) opts.log_error = [](const std::string&, const std::string&) {};
  if (!opts.clock) opts.clock = now_ns;
  return sys.spawn(shard, std::move(opts), std::move(sm));
}

} // namespace kassa::actors
