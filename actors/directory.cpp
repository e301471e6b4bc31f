// The directory (actors/directory.hpp): rounds and the behavior. Its parts share
// actors/directory_parts.hpp.
#include "actors/directory_parts.hpp"

namespace kassa::actors {
namespace directory_parts {

struct saga_writer_state {
  static inline const char* name = "kassa.saga_writer";
};

caf::behavior saga_writer(caf::stateful_actor<saga_writer_state>*, std::shared_ptr<store::saga_log> log) {
  return {[log](saga_write& w) { return saga_written{log->write(w.add, w.remove)}; }};
}

uint64_t system_sequence_next(directory_self self) {
  return planner::system_sequence_next(self->state, self->state.opts.clock());
}


// Asks shard i what it holds of ids[i] (empty lists are not sent) and gathers the answers by
// id, one entry per shard. `done` gets ok, or the first shard's failure with nothing gathered.
void probe(directory_self self, std::vector<std::vector<u128>> ids,
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
void log_write(directory_self self, std::vector<store::saga> add, std::function<void(bool)> then) {
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

void deliver_drains(directory_self self) {
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

void retry_unresolved(directory_self self);
bool redo_due(directory_self self);

void round_finish(directory_self self, round_ptr r) {
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

void round_fail(directory_self self, round_ptr r, outcome why) {
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
void round_applied(directory_self self, round_ptr r,
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

void round_apply(directory_self self, round_ptr r) {
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

void resolve_logged(directory_self self, std::vector<store::saga> sagas, std::function<void(bool)> done);

void round_plan(directory_self self, round_ptr r) {
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
void round_read_pending_accounts(directory_self self, round_ptr r) {
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
void round_start(directory_self self) {
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
caf::typed_response_promise<create_reply> enqueue(directory_self self, Request& req, bool accounts) {
  auto& st = self->state;
  auto rp = self->make_response_promise<create_reply>();
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

// --------------------------------------------------------------------------- behavior

directory_actor::behavior_type passthrough(directory_self self) {
  shard_actor shard = self->state.opts.shards.front();
  auto sample = [self] { self->state.mailbox->set(mailbox_waiting(self)); };
  return {
      [=](create_accounts_request& r) {
        sample();
        return self->delegate(shard, std::move(r));
      },
      [=](create_transfers_request& r) {
        sample();
        return self->delegate(shard, std::move(r));
      },
      [=](lookup_accounts_request& r) { return self->delegate(shard, std::move(r)); },
      [=](lookup_transfers_request& r) { return self->delegate(shard, std::move(r)); },
      [=](account_transfers_request& r) { return self->delegate(shard, std::move(r)); },
      [=](account_balances_request& r) { return self->delegate(shard, std::move(r)); },
      [=](const transfers_by_id_request& r) { return transfers_by_id(self, r); },
      [=](drain_atom a) { return self->delegate(shard, a); },
      [](sweep_atom) {},  // no sweeps: no hot account
      [](expire_atom) {}, // the shard expires its own pending transfers
  };
}

// The directory's timer: sweeps, and retries of sagas a failed shard left unresolved.
std::chrono::nanoseconds tick_interval(const directory_options& o) {
  return std::chrono::nanoseconds(o.sweep_interval_ns != 0 ? o.sweep_interval_ns : 1'000'000'000);
}

// Split accounts and their sub-accounts, counted again on each tick (a few entries).
void count_hot(directory_self self) {
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

directory_actor::behavior_type directory(directory_self self, directory_options opts) {
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
  for (const shard_actor& shard : st.opts.shards) self->send(shard, expiry_handover{});
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
        return read_when_recovered(self, r, [](directory_self s, transfers_by_id_request& q) { return transfers_by_id(s, q); });
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
      [self](drain_atom) -> caf::typed_response_promise<drain_atom, bool> {
        auto rp = self->make_response_promise<drain_atom, bool>();
        self->state.drains.push_back(rp);
        deliver_drains(self);
        return rp;
      },
  };
}

} // namespace directory_parts

using directory_parts::directory;

directory_actor spawn_directory(caf::actor_system& sys, directory_options opts, std::string& error) {
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

