// route: picks the channel for a payment that needs a provider: the one the command names,
// or the first by priority among those serving the ledger and amount, skipping channels
// whose breaker is open. None left: no_channel_available, at once. A channel it picks is
// written to the row before the flow goes on (a resumed flow keeps it). provider_call's
// failover routes again with the same functions, leaving out the channels that refused.
// fetch_credentials: the provider's pre-payment credential, when it wants one; runs in
// parallel with other steps of its group (hold_funds).
#include <algorithm>
#include <cstring>
#include <memory>

#include "actors/payments_core.hpp"
#include "actors/steps/steps.hpp"

namespace kassa::actors::pay {

namespace {

// A channel is usable when its breaker is not open and it has room for another call.
bool usable(const health_reply& r) {
  return r.state != health_state::down && (r.inflight_max == 0 || r.inflight < r.inflight_max);
}

// Load as a fraction of the channel's limit, compared without division.
bool lighter(const health_reply& x, const health_reply& y) {
  return uint64_t(x.inflight) * std::max<uint32_t>(1, y.inflight_max) <
         uint64_t(y.inflight) * std::max<uint32_t>(1, x.inflight_max);
}

// Among the usable candidates of the best priority, the least loaded; -1: none usable.
int best_of(const std::vector<const env::provider*>& candidates, const std::vector<health_reply>& health) {
  int best = -1;
  for (size_t k = 0; k < candidates.size(); ++k) {
    if (!usable(health[k])) continue;
    if (best < 0) best = int(k);
    else if (candidates[k]->cfg.priority == candidates[size_t(best)]->cfg.priority && lighter(health[k], health[size_t(best)]))
      best = int(k);
    else if (candidates[k]->cfg.priority != candidates[size_t(best)]->cfg.priority)
      break; // candidates are sorted by priority: the best group is done
  }
  return best;
}

} // namespace

std::vector<const env::provider*> route_candidates(const flow_state& st, const std::vector<int>& tried) {
  std::vector<const env::provider*> out;
  auto fresh = [&tried](const env::provider& p) {
    return std::find(tried.begin(), tried.end(), int(p.index)) == tried.end();
  };
  if (st.row.provider[0] != 0 && tried.empty()) { // named by the command, or the refunded item's channel
    if (const auto* p = st.e->find_provider(st.row.provider)) out.push_back(p);
    return out;
  }
  for (const auto& p : st.e->providers) {
    const auto& c = p.cfg;
    if (!fresh(p)) continue;
    if (std::find(c.ledgers.begin(), c.ledgers.end(), st.row.ledger) == c.ledgers.end()) continue;
    if (st.row.amount < c.amount_min || (c.amount_max != 0 && st.row.amount > c.amount_max)) continue;
    out.push_back(&p);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const env::provider* a, const env::provider* b) { return a->cfg.priority < b->cfg.priority; });
  return out;
}

void pick_channel(flow_actor* self, std::vector<const env::provider*> candidates,
                  std::function<void(const env::provider*)> then) {
  if (candidates.empty()) {
    then(nullptr);
    return;
  }
  struct gather {
    std::vector<health_reply> health;
    size_t outstanding;
  };
  auto g = std::make_shared<gather>(gather{std::vector<health_reply>(candidates.size()), candidates.size()});
  for (auto& h : g->health) h.state = health_state::down;
  for (size_t i = 0; i < candidates.size(); ++i) {
    auto finish = [g, candidates, then, i](health_reply h) {
      g->health[i] = h;
      if (--g->outstanding != 0) return;
      const int best = best_of(candidates, g->health);
      then(best < 0 ? nullptr : candidates[size_t(best)]);
    };
    self->request(candidates[i]->channel, std::chrono::milliseconds(500), health_request{})
        .then([finish](health_reply& h) { finish(h); },
              [finish](caf::error&) {
                health_reply down;
                down.state = health_state::down;
                finish(down);
              });
  }
}

void write_route(flow_actor* self, const env::provider* p, std::function<void(bool)> then) {
  auto& st = self->state;
  const int before = st.provider;
  char kept[sizeof st.row.provider];
  std::memcpy(kept, st.row.provider, sizeof kept);
  st.provider = int(p->index);
  std::memset(st.row.provider, 0, sizeof st.row.provider);
  std::memcpy(st.row.provider, p->name.data(), std::min(p->name.size(), sizeof st.row.provider));
  st.note("routed", 0, st.row.amount);
  // The choice is written before the provider hears of the payment: a flow resumed after a
  // restart must ask the same provider, which may have the payment already.
  persist(self, [self, before, kept, then](bool ok) {
    if (!ok) {
      // not durable: the choice is forgotten, or a run of this step again (a resumed flow's)
      // would take it for one the provider may know, and the next start would route afresh
      // while the provider has the payment
      auto& st = self->state;
      std::memcpy(st.row.provider, kept, sizeof st.row.provider);
      st.provider = before;
    }
    then(ok);
  });
}

namespace {

class route : public step {
public:
  bool transient(payment_result r) const override {
    return step::transient(r) || r == payment_result::no_channel_available;
  }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    if (!uses_provider(st)) {
      done(payment_result::ok);
      return;
    }
    if (st.row.provider[0] != 0 && st.resume) {
      // after a restart the provider may have this payment already: same channel, no choice
      if (const auto* p = st.e->find_provider(st.row.provider)) {
        st.provider = int(p->index);
        done(payment_result::ok);
      } else {
        done(payment_result::provider_unknown);
      }
      return;
    }
    const bool named = st.row.provider[0] != 0; // the accepted row holds it already
    pick_channel(self, route_candidates(st, {}), [self, done, named](const env::provider* p) {
      if (!p) {
        done(payment_result::no_channel_available);
        return;
      }
      auto& st = self->state;
      if (named) { // the accepted row holds it already
        st.provider = int(p->index);
        st.note("routed", 0, st.row.amount);
        done(payment_result::ok);
        return;
      }
      write_route(self, p, [done](bool ok) { done(ok ? payment_result::ok : payment_result::store_unavailable); });
    });
  }
};

class fetch_credentials : public step {
public:
  bool transient(payment_result r) const override { return step::transient(r) || r == payment_result::provider_failed; }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    const auto* ch = st.channel();
    if (!ch || !ch->cfg.credentials) {
      done(payment_result::ok);
      return;
    }
    self->request(ch->channel, caf::infinite, credential_request{st.ctx})
        .then(
            [self, done](credential_reply& r) {
              if (!r.ok) {
                done(payment_result::provider_failed);
                return;
              }
              self->state.credential = r.token;
              done(payment_result::ok);
            },
            [done](caf::error&) { done(payment_result::provider_failed); });
  }
};

} // namespace

std::unique_ptr<step> make_route() { return std::make_unique<route>(); }
std::unique_ptr<step> make_fetch_credentials() { return std::make_unique<fetch_credentials>(); }

} // namespace kassa::actors::pay
