// The directory's reads (actors/directory.hpp): lookups, histories and balances, a split
// account read as one account with its sub-accounts.
#include "actors/directory_parts.hpp"

namespace kassa::actors::directory_parts {

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

caf::typed_response_promise<accounts_reply> lookup_accounts(directory_self self, lookup_accounts_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise<accounts_reply>();
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

caf::typed_response_promise<transfers_reply> lookup_transfers(directory_self self, lookup_transfers_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise<transfers_reply>();
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
caf::typed_response_promise<transfers_by_id_reply> transfers_by_id(directory_self self, const transfers_by_id_request& req) {
  auto rp = self->make_response_promise<transfers_by_id_reply>();
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

void history_step(directory_self self, std::shared_ptr<history_walk> walk) {
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

void history_read(directory_self self, const request_context& ctx, const store::account_filter& filter,
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
void split_history_read(directory_self self, const request_context& ctx, const store::account_filter& filter,
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

caf::typed_response_promise<transfers_reply> account_transfers(directory_self self, account_transfers_request& req) {
  auto rp = self->make_response_promise<transfers_reply>();
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
void read_all(directory_self self, uint32_t shard, request_context ctx, store::account_filter filter,
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
void row_balances_read(directory_self self, const request_context& ctx, u128 account_id, uint64_t lo, uint64_t hi,
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
void row_balances_count(directory_self self, const request_context& ctx, u128 sub, uint64_t hi, uint32_t page,
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
void sweeps_read(directory_self self, const request_context& ctx, u128 sub, uint32_t parent_shard, uint64_t lo,
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
void split_balances(directory_self self, const request_context& ctx, const store::account_filter& filter,
                    std::vector<split_history::record> records, std::unordered_set<u128, u128_hash> counted,
                    caf::typed_response_promise<balances_reply> rp) {
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
    if (o != outcome::ok) { rp.deliver(balances_reply{o, {}}); return; }
    std::vector<split_history::row_balances> rows;
    for (const auto& r : sub_rows) rows.push_back(std::move(*r));
    balances_reply out;
    for (const auto& r : *shared_records) {
      account_balance b;
      if (!split_history::aggregate_at(r.at(), *own, rows, *sweeps, b)) {
        rp.deliver(balances_reply{outcome::store_unavailable, {}});
        return;
      }
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

caf::typed_response_promise<balances_reply> account_balances(directory_self self, account_balances_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise<balances_reply>();
  if (subs_of(st, req.filter.account_id).empty()) {
    rp.delegate(st.opts.shards[shard_of(req.filter.account_id, st.shards)], std::move(req));
    return rp;
  }
  const request_context ctx = req.ctx;
  const store::account_filter filter = req.filter;
  split_history_read(self, ctx, filter, [self, rp, ctx, filter](outcome o, std::vector<split_history::record> records) mutable {
    if (o != outcome::ok || records.empty()) { rp.deliver(balances_reply{o, {}}); return; }
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
        if (reply.status != outcome::ok) { rp.deliver(balances_reply{reply.status, {}}); return; }
        for (const account& a : reply.accounts) {
          if (a.id == filter.account_id) history = has(a.flags, account_history);
          else if (!has(a.flags, account_history)) counted.insert(a.id);
        }
      }
      if (!history) { rp.deliver(balances_reply{}); return; }
      split_balances(self, ctx, filter, std::move(records), std::move(counted), rp);
    });
  });
  return rp;
}

} // namespace kassa::actors::directory_parts
