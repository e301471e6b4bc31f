// The flow supervisor: one actor per running payment. It runs the pipeline the YAML declares
// for the payment's kind, step by step (adjacent steps of one group in parallel), each with
// its timeout; when a step fails it runs the compensations of the steps done so far in
// reverse; when a provider's outcome is unknown it parks the payment and asks the provider
// until it knows. Every step is idempotent (ids derive from the row's sequence), so a flow
// cut short by a crash is run again from its first step at the next start; as a resumed flow
// it must reach the end its first life reached, so a step that says "not now" runs again
// instead of failing, and the steps whose answer could differ ask the ledger or the provider
// what the first life did (docs/payments.md, "Durability and recovery").
#include <algorithm>
#include <cstring>

#include "actors/payments_core.hpp"
#include "actors/payments_writer.hpp"
#include "actors/unexpected.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors::pay {

namespace {

constexpr uint32_t step_reruns_max = 20; // a timed-out booking is run again at most this often
constexpr uint32_t booking_retry_ms = 100; // before a booking the ledger turned away runs again

config::flow_name flow_of(kind k) {
  switch (k) {
    case kind::topup: return config::flow_name::topup;
    case kind::withdrawal: return config::flow_name::withdrawal;
    case kind::transfer: return config::flow_name::transfer;
    case kind::pay: return config::flow_name::pay;
    default: return config::flow_name::refund;
  }
}

void advance(flow_actor* self);
void fail(flow_actor* self, payment_result r);
void park(flow_actor* self);
void finish(flow_actor* self, order_state s, payment_result r);

} // namespace

// Writes the row and the journal gathered so far; `then` runs once durable (or with the
// error's result when the store failed).
void persist(flow_actor* self, std::function<void(bool)> then) {
  auto& st = self->state;
  st.row.updated_ns = st.e->clock();
  payments_write w;
  w.batch.rows.push_back(st.row);
  w.batch.journal = std::move(st.journal);
  st.journal.clear();
  self->request(st.e->writer, caf::infinite, std::move(w))
      .then([self, then](payments_written& done) {
        if (!done.error.ok()) self->state.e->log_error("payments store: " + done.error.message);
        then(done.error.ok());
      },
      [self, then](caf::error& err) {
        self->state.e->log_error("payments writer: " + self->system().render(err));
        then(false);
      });
}

namespace {

void report(flow_actor* self, bool final) {
  auto& st = self->state;
  self->send(st.owner, flow_report{st.row, st.result, final, {}});
}

// A step that cannot get through now and must not fail (a booking that may have landed, a
// resumed flow's step its first life went past): the row stays processing, and the next start
// resumes it.
void leave_for_next_start(flow_actor* self, const std::string& step, std::string_view why) {
  auto& st = self->state;
  st.e->log_error(st.tag() + "step " + step + " " + std::string(why) + " repeatedly; left processing until the next start");
  st.finished = true;
  report(self, true);
  self->quit();
}

// Runs the steps from st.next: one, or a run of adjacent steps of the same non-zero group.
void advance(flow_actor* self) {
  auto& st = self->state;
  const auto& p = *st.pipeline;
  if (st.next >= p.size()) {
    if (st.on_hold && st.row.state == uint16_t(order_state::partially_paid)) {
      // a partial payment held per policy: tell the client, refund it when the hold expires
      persist(self, [self](bool) {
        report(self, false);
        self->delayed_send(self, std::chrono::milliseconds(self->state.e->cfg.exceptions.partial_hold_ms),
                           hold_atom::value);
      });
      return;
    }
    finish(self, st.row.state == uint16_t(order_state::processing) ? order_state::completed : order_state(st.row.state), st.result);
    return;
  }
  size_t end = st.next + 1;
  if (p[st.next].group != 0)
    while (end < p.size() && p[end].group == p[st.next].group) ++end;
  const uint64_t run = ++st.run_id;
  struct batch {
    size_t outstanding = 0;
    payment_result worst = payment_result::ok;
    bool unknown = false;
    std::vector<bool> completed;
    std::vector<uint32_t> reruns;
  };
  auto b = std::make_shared<batch>();
  b->outstanding = end - st.next;
  b->completed.assign(end - st.next, false);
  b->reruns.assign(end - st.next, 0);
  const size_t first = st.next;
  // steps that finished stay alive until the flow ends: one may still be on the stack
  // (a step that calls done() from run() starts the next batch from inside itself)
  for (auto& r : st.running) st.retired.push_back(std::move(r));
  st.running.clear();
  for (size_t i = first; i < end; ++i) {
    auto f = steps().find(p[i].step);
    KASSA_ASSERT(f != steps().end()); // check_flows() ran at boot
    st.running.push_back(f->second());
  }
  auto complete = std::make_shared<std::function<void(size_t, payment_result)>>();
  std::weak_ptr<std::function<void(size_t, payment_result)>> again = complete; // no cycle: see below
  *complete = [self, b, run, first, end, again](size_t i, payment_result r) {
    auto& st = self->state;
    if (st.run_id != run || b->completed[i - first]) return; // late, after a timeout
    // A booking the ledger turned away for a moment (busy, a failed commit) runs again like
    // one that timed out: failing it would compensate money that has moved (a payout made).
    // A resumed flow runs any step again that said "not now": its first life went past it.
    step* s = st.running[i - first].get();
    if (s->transient(r) && (s->rerun_on_timeout() || st.resume)) {
      if (b->reruns[i - first]++ < step_reruns_max) {
        after(self, booking_retry_ms, [self, b, run, first, i, again] {
          auto& st = self->state;
          auto c = again.lock(); // the batch's timeout handler keeps it while the batch runs
          if (!c || st.run_id != run || b->completed[i - first]) return;
          st.running[i - first]->run(self, [c, i](payment_result res) { (*c)(i, res); });
        });
        return;
      }
      if (st.resume) {
        leave_for_next_start(self, (*st.pipeline)[i].step, ledger::payments::name(r));
        return;
      }
    }
    b->completed[i - first] = true;
    if (r == payment_result::in_progress) b->unknown = true;
    else if (r != payment_result::ok && b->worst == payment_result::ok) b->worst = r;
    if (--b->outstanding != 0) return;
    ++st.run_id; // later answers and timeouts of this batch are stale
    // steps that ran count as done for compensation, whatever their outcome
    for (size_t k = first; k < end; ++k) st.done_steps.push_back(k);
    st.next = end;
    if (b->worst != payment_result::ok) fail(self, b->worst);
    else if (b->unknown) park(self);
    else advance(self);
  };
  // timeouts: a provider step's outcome becomes unknown; a booking is run again (its ids make
  // a second run harmless) up to step_reruns_max; anything else fails the flow
  struct timeout_ctx {
    std::shared_ptr<batch> b;
    std::shared_ptr<std::function<void(size_t, payment_result)>> complete;
    size_t first;
  };
  auto tctx = std::make_shared<timeout_ctx>(timeout_ctx{b, complete, first});
  self->state.on_timeout = [self, tctx, run](uint64_t r, uint64_t i) {
    auto& st = self->state;
    if (r != run || st.run_id != run || i < tctx->first || tctx->b->completed[i - tctx->first]) return;
    const auto& cfg = (*st.pipeline)[i];
    step* s = st.running[i - tctx->first].get();
    st.note(cfg.step.c_str(), uint32_t(payment_result::in_progress), 0);
    if (s->uncertain()) {
      ++st.call_epoch; // a failover under way must not send the payment elsewhere now
      (*tctx->complete)(i, payment_result::in_progress);
    } else if (s->rerun_on_timeout() && tctx->b->reruns[i - tctx->first]++ < step_reruns_max) {
      self->delayed_send(self, std::chrono::milliseconds(cfg.timeout_ms), step_timeout_atom::value, run, i);
      auto complete = tctx->complete;
      s->run(self, [complete, i](payment_result res) { (*complete)(i, res); });
    } else if (s->rerun_on_timeout()) {
      // the booking may or may not have landed: leave the row processing for the next start
      leave_for_next_start(self, cfg.step, "timed out");
    } else {
      (*tctx->complete)(i, payment_result::busy);
    }
  };
  for (size_t i = first; i < end; ++i) {
    const auto& cfg = p[i];
    step* s = st.running[i - first].get();
    self->delayed_send(self, std::chrono::milliseconds(cfg.timeout_ms), step_timeout_atom::value, run, uint64_t(i));
    s->run(self, [complete, i](payment_result r) { (*complete)(i, r); });
  }
}

// Runs a compensation; one that says "not now" (the ledger turned it away for a moment: busy,
// a failed commit) runs again, or a hold it voids would stay pending for good.
void run_compensation(flow_actor* self, std::shared_ptr<step> s, std::function<void(payment_result)> next, uint32_t tries) {
  s->run(self, [self, s, next, tries](payment_result cr) {
    if (s->transient(cr) && tries < step_reruns_max) {
      after(self, booking_retry_ms, [self, s, next, tries] { run_compensation(self, s, next, tries + 1); });
      return;
    }
    next(cr);
  });
}

// Compensations of the steps done, newest first, then the row fails.
void compensate(flow_actor* self, std::shared_ptr<std::vector<size_t>> todo, payment_result r) {
  auto& st = self->state;
  while (!todo->empty()) {
    const size_t i = todo->back();
    todo->pop_back();
    const auto& cfg = (*st.pipeline)[i];
    if (cfg.compensate.empty()) continue;
    auto f = steps().find(cfg.compensate);
    KASSA_ASSERT(f != steps().end());
    auto s = std::shared_ptr<step>(f->second());
    const uint64_t run = ++st.run_id;
    auto called = std::make_shared<bool>(false);
    auto next = [self, todo, r, s, called, run](payment_result cr) {
      if (*called) return;
      *called = true;
      if (cr != payment_result::ok)
        self->state.e->log_error(self->state.tag() + "compensation failed: " +
                                 std::string(ledger::payments::name(cr)));
      compensate(self, todo, r);
    };
    run_compensation(self, s, next, 0);
    return;
  }
  // a compensation that could not give money back parked it in suspense: a case, not a failure
  finish(self, st.row.state == uint16_t(order_state::in_review) ? order_state::in_review : order_state::failed, r);
}

void fail(flow_actor* self, payment_result r) {
  auto& st = self->state;
  st.result = r;
  st.note("failed", uint32_t(r), 0);
  if (st.limit_reserved) {
    self->send(st.e->gateway, limit_release{st.row.id});
    st.limit_reserved = false;
  }
  auto todo = std::make_shared<std::vector<size_t>>(st.done_steps);
  st.done_steps.clear();
  compensate(self, todo, r);
}

void resolved(flow_actor* self, const call_result& cr) {
  auto& st = self->state;
  st.parked = false;
  st.provider_known = true;
  st.provider_result = cr;
  st.row.provider_amount = cr.status == call_status::succeeded || cr.status == call_status::partial ? cr.amount : 0;
  st.row.state = uint16_t(order_state::processing);
  st.note("resolved", uint32_t(payment_result::ok), st.row.provider_amount);
  if (cr.status == call_status::declined || cr.status == call_status::not_found) fail(self, payment_result::provider_declined);
  else advance(self);
}

void park(flow_actor* self) {
  auto& st = self->state;
  st.parked = true;
  st.queries = 0;
  st.row.state = uint16_t(order_state::unknown);
  st.note("parked", uint32_t(payment_result::in_progress), 0);
  persist(self, [self](bool) {
    report(self, false);
    const auto* ch = self->state.channel();
    self->delayed_send(self, std::chrono::milliseconds(ch ? ch->cfg.status_query.interval_ms : 500), query_atom::value);
  });
}

void finish(flow_actor* self, order_state s, payment_result r) {
  auto& st = self->state;
  if (st.finished) return;
  st.row.state = uint16_t(s);
  if (r != payment_result::ok && r != payment_result::in_progress) st.row.result = uint32_t(r);
  st.result = r;
  // a failed payment charged no fee: its fee hold (a withdrawal's) was voided with the rest
  if (s == order_state::failed) st.row.fee = 0;
  if (s == order_state::failed && st.limit_reserved) {
    self->send(st.e->gateway, limit_release{st.row.id});
    st.limit_reserved = false;
  }
  st.note("finished", uint32_t(r), st.row.amount_captured);
  if (st.row.kind == uint16_t(kind::pay) || st.row.kind == uint16_t(kind::refund)) {
    // An item of an order: the order actor writes its final row with the order's own, in one
    // write, so that a crash cannot leave the item final and the order without it (the item
    // would not run again at the next start, and the order would never count it).
    st.finished = true;
    st.row.updated_ns = st.e->clock();
    self->send(st.owner, flow_report{st.row, st.result, true, std::move(st.journal)});
    st.journal.clear();
    self->quit();
    return;
  }
  persist(self, [self](bool ok) {
    auto& st = self->state;
    st.finished = true;
    if (!ok) st.result = payment_result::store_unavailable; // the row stays as last durable
    report(self, true);
    self->quit();
  });
}

} // namespace

void after(flow_actor* self, uint32_t ms, std::function<void()> fn) {
  const uint64_t id = ++self->state.timer_next;
  self->state.timers.emplace(id, std::move(fn));
  self->delayed_send(self, std::chrono::milliseconds(ms), timer_atom::value, id);
}

std::string flow_state::tag() const {
  static const char* digits = "0123456789abcdef";
  std::string trace(32, '0');
  for (int i = 0; i < 32; ++i) trace[size_t(i)] = digits[(ctx.trace_id >> (4 * (31 - i))) & 0xF];
  return "payment=" + to_string_u128(row.id) + " order=" + to_string_u128(row.parent_id != 0 ? row.parent_id : row.id) +
         " trace=" + trace + ": ";
}

void fire_timer(flow_actor* self, uint64_t id) {
  auto& timers = self->state.timers;
  auto it = timers.find(id);
  if (it == timers.end()) return;
  auto fn = std::move(it->second);
  timers.erase(it);
  fn();
}

void flow_state::note(const char* step, uint32_t result, u128 amount) {
  journal.push_back(entry(*e, ctx, row, "flow", step, result, amount));
}

void follow_owner(flow_actor* self) {
  if (!self->state.owner) return;
  self->monitor(self->state.owner);
  self->set_down_handler([self](caf::down_msg& dm) {
    if (dm.source == self->state.owner.address()) self->quit(dm.reason);
  });
}

caf::actor spawn_flow(caf::actor_system& sys, env_ptr e, caf::actor owner, flow_start start) {
  return sys.spawn([](flow_actor* self, env_ptr e, caf::actor owner, flow_start start) -> caf::behavior {
    auto& st = self->state;
    st.e = e;
    st.owner = owner;
    follow_owner(self);
    st.ctx = start.ctx;
    st.cmd = start.cmd;
    st.row = start.row;
    st.parent = start.parent;
    st.item = start.item;
    st.k = static_cast<kind>(start.row.kind);
    st.pipeline = &e->cfg.flows.of(flow_of(st.k));
    st.resume = start.resume;
    st.row.state = uint16_t(order_state::processing);
    st.note(start.resume ? "resumed" : "started", 0, st.row.amount);
    drop_unexpected(self, [self](const std::string& m) { self->state.e->log_error(self->state.tag() + m); });
    self->send(self, flow_down_atom::value); // start once the behaviour is in place
    return {
        [self](flow_down_atom) {
          if (from_self(self)) advance(self);
        },
        [self](step_timeout_atom, uint64_t run, uint64_t i) {
          if (!from_self(self)) return;
          if (self->state.on_timeout) self->state.on_timeout(run, i);
        },
        [self](query_atom) {
          auto& st = self->state;
          if (!st.parked || !from_self(self)) return;
          const auto* ch = st.channel();
          if (!ch) return;
          if (st.queries++ >= ch->cfg.status_query.queries_max) {
            // never guess: the payment goes to review with a case; the reconciler and the
            // provider's late callbacks can still settle it
            st.parked = false;
            st.note("unresolved", uint32_t(payment_result::outcome_unknown), st.row.amount);
            open_case_unknown(self);
            finish(self, order_state::in_review, payment_result::outcome_unknown);
            return;
          }
          self->request(ch->channel, std::chrono::milliseconds(ch->cfg.timeout_ms * (ch->cfg.retries_max + 2)),
                        status_query{st.ctx, st.payment_id()})
              .then(
                  [self](call_result& cr) {
                    auto& st = self->state;
                    if (!st.parked) return;
                    if (cr.status == call_status::succeeded || cr.status == call_status::partial ||
                        cr.status == call_status::declined || cr.status == call_status::not_found) {
                      resolved(self, cr);
                      return;
                    }
                    self->delayed_send(self, std::chrono::milliseconds(st.channel()->cfg.status_query.interval_ms),
                                       query_atom::value);
                  },
                  [self](caf::error&) {
                    auto& st = self->state;
                    if (st.parked)
                      self->delayed_send(self, std::chrono::milliseconds(st.channel()->cfg.status_query.interval_ms),
                                         query_atom::value);
                  });
        },
        [self](flow_event& fe) {
          auto& st = self->state;
          if (fe.ev.payment_id != st.payment_id()) return;
          if (st.parked && fe.ev.status != call_status::pending && fe.ev.status != call_status::unknown) {
            call_result cr;
            cr.status = fe.ev.status;
            cr.payment_id = fe.ev.payment_id;
            cr.amount = fe.ev.amount;
            cr.provider_ref = fe.ev.provider_ref;
            resolved(self, cr);
          }
        },
        [self](hold_atom) {
          if (!from_self(self)) return;
          // moved out first: the callback may set a new one while it runs
          auto fn = std::move(self->state.on_hold);
          self->state.on_hold = nullptr;
          if (fn) fn();
        },
        [self](timer_atom, uint64_t id) {
          if (from_self(self)) fire_timer(self, id);
        },
    };
  }, e, owner, start);
}

} // namespace kassa::actors::pay
