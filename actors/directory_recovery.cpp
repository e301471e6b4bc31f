// The directory's recovery (actors/directory.hpp): the saga log finished at start, rounds a
// shard did not take applied again, sweeps of split accounts, and expiry of pending transfers.
#include "actors/directory_parts.hpp"

namespace kassa::actors::directory_parts {

// ------------------------------------------------------------------ recovery and sweeps

// Finishes sagas from the log (at start) or whose resolution failed (later): every leg
// applied and none voided or expired -> post the pending ones; otherwise void them. Calls
// `done(ok)` when every leg is resolved (ok) or something could not be read or written.
void resolve_legs(directory_self self, std::vector<store::saga> sagas, std::function<void(bool)> done);

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

// Applies redo records again, one after the other in id order: every shard is sent its part
// (kassa's own accounts, then the transfers) and each event must answer ok or exists, since
// the directory decided them all before the record was written.
void redo_logged(directory_self self, std::shared_ptr<std::vector<store::saga>> records, size_t next,
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
void resolve_logged(directory_self self, std::vector<store::saga> sagas, std::function<void(bool)> done) {
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

void resolve_legs(directory_self self, std::vector<store::saga> sagas, std::function<void(bool)> done) {
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
void recovered(directory_self self) {
  auto& st = self->state;
  st.ready = true;
  auto reads = std::move(st.after_recovery);
  st.after_recovery.clear();
  for (auto& read : reads) read();
}

// At start: kassa's own accounts (clearing accounts, the sub-accounts that give the splits
// back), then the sagas the log holds. Requests wait in the queue meanwhile.
void recover(directory_self self) {
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

bool redo_due(directory_self self) {
  auto& st = self->state;
  if ((st.stuck.empty() && st.stuck_accounts.empty()) || st.round_busy || !st.ready || st.failed) return false;
  return st.opts.clock() >= st.redo_retry_ns;
}

void retry_unresolved(directory_self self) {
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
void sweep(directory_self self) {
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
void expiry_arm(directory_self self, uint64_t deadline_ns) {
  auto& st = self->state;
  if (deadline_ns == 0 || (st.expiry_timer_ns != 0 && st.expiry_timer_ns <= deadline_ns)) return;
  const uint64_t now = st.opts.clock();
  st.expiry_timer_ns = deadline_ns;
  self->delayed_send(self, std::chrono::nanoseconds(deadline_ns > now ? deadline_ns - now : 0), expire_atom::value);
}

// Asks every shard which pending transfers are due at the directory's clock and queues their
// expiry like any request (plan_expiry decides each in its round). One poll at a time.
void expiry_poll(directory_self self) {
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

} // namespace kassa::actors::directory_parts
