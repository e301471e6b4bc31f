// provider_call: the payment's one call to its provider (charge for topup and pay, payout for
// withdrawal, refund for refunds), under a payment id derived from the row, so a repeat after
// a timeout or a restart is the same payment at the provider. Declined: the flow fails and
// compensates. Unknown (timeout, broken connection) or pending: the supervisor parks the
// payment and asks the provider until it knows; never a guess. Money out (payout, refund)
// is sent only when hold_funds placed the payer's hold: otherwise funds_not_held, nothing sent.
// Refused with proof that the provider never saw it (not_sent): the next usable channel takes
// it (failover, below).
// provider_refund (a compensation): gives back what provider_call took, when it took any.
#include "actors/payments_core.hpp"
#include "actors/steps/steps.hpp"

namespace kassa::actors::pay {

namespace lp = ledger::payments;

namespace {

// How often one payment may go to another channel after its channel refused the call unsent.
constexpr size_t failovers_max = 2;

call_kind call_of(kind k) {
  switch (k) {
    case kind::withdrawal: return call_kind::payout;
    case kind::refund: return call_kind::refund;
    default: return call_kind::charge;
  }
}

class provider_call : public step {
public:
  bool uncertain() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    if (!uses_provider(st)) {
      done(payment_result::ok);
      return;
    }
    if (call_of(st.k) != call_kind::charge && !st.held) {
      // Money out (a payout, a refund) leaves only from a durable hold: without one the payer
      // could have spent it already. kassad refuses such a flow at boot; this is the last guard.
      st.e->log_error(st.tag() + "provider_call: " + std::string(call_of(st.k) == call_kind::payout ? "payout" : "refund") +
                      " with no hold placed before it (hold_funds): not sent");
      done(payment_result::funds_not_held);
      return;
    }
    const auto* ch = st.channel();
    if (!ch) {
      done(payment_result::no_channel_available);
      return;
    }
    if (st.resume && call_of(st.k) == call_kind::charge) {
      check_compensation(self, done);
      return;
    }
    send_call(self, done);
  }

private:
  // Asks the provider about `id` until an answer tells (`decide` returns true); one that does
  // not, or no answer, is asked again after status_query.interval_ms, at most queries_max
  // times. Still unclear then: "not now" (busy: a resumed flow runs the step again, then leaves
  // the row for the next start); parking would let the charge's success book what may have
  // been given back.
  static void ask_until_told(flow_actor* self, u128 id, step_done done, std::function<bool(call_result&)> decide,
                             uint32_t n = 0) {
    auto& st = self->state;
    auto again = [self, id, done, decide, n] {
      const auto* ch = self->state.channel();
      if (n + 1 >= ch->cfg.status_query.queries_max) done(payment_result::busy);
      else after(self, ch->cfg.status_query.interval_ms, [self, id, done, decide, n] { ask_until_told(self, id, done, decide, n + 1); });
    };
    self->request(st.channel()->channel, caf::infinite, status_query{st.ctx, id})
        .then([decide, again](call_result& r) { if (!decide(r)) again(); }, [again](caf::error&) { again(); });
  }

  // Resumed after a restart: the flow may have failed and given the charge back (the
  // compensation refund) before the stop cut off its last write. Then the payment failed;
  // taking the charge's success now would book money the payer has back. So the provider is
  // asked first; never a guess.
  void check_compensation(flow_actor* self, step_done done) {
    ask_until_told(self, self->state.payment_id(lp::call_role::compensation), done,
                   [this, self, done](call_result& r) {
                     switch (r.status) {
                       case call_status::not_found: send_call(self, done); return true;
                       case call_status::succeeded:
                       case call_status::partial:
                       case call_status::pending:
                       case call_status::declined:
                         // The first life gave the charge back (or tried): the payment failed.
                         // What the charge took is learnt again, so that the compensation
                         // (provider_refund) makes the first life's bookings again: into
                         // suspense, and out when the refund went through.
                         learn_charge(self, done);
                         return true;
                       default: return false;
                     }
                   });
  }

  static void learn_charge(flow_actor* self, step_done done) {
    ask_until_told(self, self->state.payment_id(), done, [self, done](call_result& r) {
      auto& st = self->state;
      if (r.status == call_status::declined || r.status == call_status::not_found) {
        done(payment_result::provider_failed); // it took nothing
        return true;
      }
      if (r.status != call_status::succeeded && r.status != call_status::partial) return false;
      st.provider_result = r;
      st.provider_known = true;
      st.row.provider_amount = r.amount;
      done(payment_result::provider_failed);
      return true;
    });
  }

  static void send_call(flow_actor* self, step_done done) {
    auto& st = self->state;
    const auto* ch = st.channel();
    payment_call call;
    call.ctx = st.ctx;
    call.payment_id = st.payment_id();
    call.kind = call_of(st.k);
    call.amount = st.row.amount;
    call.ledger = st.row.ledger;
    call.account_id = st.row.account_id;
    if (st.k == kind::refund) call.refund_of = st.payment_id_of(st.item);
    call.credential = st.credential;
    st.note("provider_call", 0, st.row.amount);
    const bool resume = st.resume;
    const uint64_t epoch = st.call_epoch;
    self->request(ch->channel, caf::infinite, std::move(call))
        .then(
            [self, done, resume, epoch](call_result& r) {
              auto& st = self->state;
              st.provider_result = r;
              switch (r.status) {
                case call_status::succeeded:
                case call_status::partial:
                  st.provider_known = true;
                  st.row.provider_amount = r.amount;
                  st.note("provider_ok", 0, r.amount);
                  done(payment_result::ok);
                  return;
                case call_status::declined:
                  st.provider_known = true;
                  st.note("provider_declined", uint32_t(payment_result::provider_declined), 0);
                  done(payment_result::provider_declined);
                  return;
                case call_status::rejected:
                case call_status::failed: {
                  // not sent now; after a restart it may have been sent before: ask, never guess
                  if (resume) {
                    done(payment_result::in_progress);
                    return;
                  }
                  const payment_result r_fail = r.status == call_status::rejected ? payment_result::no_channel_available
                                                                                   : payment_result::provider_failed;
                  if (r.not_sent && may_fail_over(st) && st.call_epoch == epoch) fail_over(self, done, r_fail, r.detail);
                  else done(r_fail);
                  return;
                }
                default: // pending, unknown, not_found (a call never answers that)
                  st.note("provider_unknown", uint32_t(payment_result::in_progress), 0);
                  done(payment_result::in_progress);
              }
            },
            [done](caf::error&) { done(payment_result::in_progress); });
  }

  // Whether the payment may go to another channel: its route chose the channel (the command
  // named none), and no hold names the channel's account (a top-up, a pay item charged
  // through a provider). A refund goes back through the channel that took the charge; a
  // withdrawal's hold names its channel's clearing account.
  static bool may_fail_over(const flow_state& st) {
    if (st.cmd.provider[0] != 0) return false;
    return st.k == kind::topup || (st.k == kind::pay && st.row.source == uint16_t(source::provider));
  }

  // The channel refused the call and proved the provider never saw it (nothing sent, or every
  // connection refused): the next usable channel of the route takes the payment, written to
  // the row before its provider hears of it, at most failovers_max times. Anything less than
  // proof (a timeout, a broken connection, an unreadable answer) never comes here: that
  // payment stays with its channel until the channel can tell (it could be paid twice).
  static void fail_over(flow_actor* self, step_done done, payment_result otherwise, const std::string& why) {
    auto& st = self->state;
    const auto* from = st.channel();
    st.refused_by.push_back(st.provider);
    if (st.refused_by.size() > failovers_max) {
      done(otherwise);
      return;
    }
    const uint64_t epoch = st.call_epoch;
    pick_channel(self, route_candidates(st, st.refused_by), [self, done, otherwise, epoch, from, why](const env::provider* p) {
      auto& st = self->state;
      if (st.call_epoch != epoch) return; // the step timed out: the flow went on without it
      if (!p) {
        done(otherwise);
        return;
      }
      st.note("failover", uint32_t(otherwise), st.row.amount);
      st.e->log_info(st.tag() + "channel " + from->name + " refused the call unsent (" + why + "); the payment goes to " +
                     p->name);
      write_route(self, p, [self, done, otherwise, epoch](bool ok) {
        auto& st = self->state;
        if (st.call_epoch != epoch) return;
        if (!ok) {
          done(otherwise); // the row still names the channel that refused: nothing moved
          return;
        }
        st.credential.clear(); // the new channel fetches its own, if its provider wants one
        send_call(self, done);
      });
    });
  }
};

class provider_refund : public step {
public:
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    if (!uses_provider(st) || st.row.provider_amount == 0 || st.k == kind::withdrawal || st.k == kind::refund) {
      done(payment_result::ok); // nothing taken, or money went out (not in): nothing to give back
      return;
    }
    // Through suspense, like every charge kassa gives back: a flow resumed after a restart that
    // finds the compensation at the provider makes the same bookings again, whichever path its
    // first life took. If the provider keeps the money, it waits in suspense with a case open
    // and the row goes to review instead of failing with the money unbooked.
    const u128 taken = st.row.provider_amount;
    to_suspense(self, taken, [self, taken, done](payment_result r) {
      if (r != payment_result::ok) {
        done(r); // busy or a failed commit: the compensation runs again
        return;
      }
      refund_from_suspense(self, taken, [self, done](bool ok) {
        if (!ok) self->state.row.state = uint16_t(order_state::in_review);
        done(ok ? payment_result::ok : payment_result::provider_failed);
      });
    });
  }
};

} // namespace

namespace {

// One try of a compensation refund; the refund's id is idempotent at the provider, so asking
// again after an unclear answer is safe (at most status_query.queries_max tries). `then` is
// told what the provider gave back: all of `amount`, part of it (a partial refund is final:
// asking again answers the same), or nothing.
void compensation_attempt(flow_actor* self, payment_call call, u128 amount, std::function<void(u128)> then, uint32_t n) {
  auto& st = self->state;
  self->request(st.channel()->channel, caf::infinite, call)
      .then(
          [self, call, amount, then, n](call_result& r) {
            auto& st = self->state;
            if (r.status == call_status::succeeded) {
              // What moved: a provider that confirms less than asked gave back that much (the
              // rest stays parked, with a case); one that confirms more is booked as asked, and
              // its statement line then shows the difference as a case.
              const u128 moved = r.amount == 0 || r.amount >= amount ? amount : r.amount;
              st.note("compensated", 0, moved);
              then(moved);
              return;
            }
            if (r.status == call_status::partial && r.amount > 0 && r.amount < amount) {
              st.note("compensated", 0, r.amount);
              then(r.amount);
              return;
            }
            if (r.status == call_status::declined || n + 1 >= st.channel()->cfg.status_query.queries_max) {
              st.note("compensation_failed", uint32_t(payment_result::provider_failed), amount);
              then(0);
              return;
            }
            after(self, st.channel()->cfg.status_query.interval_ms,
                  [self, call, amount, then, n]() { compensation_attempt(self, call, amount, then, n + 1); });
          },
          [then](caf::error&) { then(0); });
}

} // namespace

void compensation_refund(flow_actor* self, u128 amount, std::function<void(u128)> then) {
  auto& st = self->state;
  const auto* ch = st.channel();
  if (!ch) {
    then(0);
    return;
  }
  payment_call call;
  call.ctx = st.ctx;
  call.payment_id = st.payment_id(lp::call_role::compensation);
  call.kind = call_kind::refund;
  call.amount = amount;
  call.ledger = st.row.ledger;
  call.account_id = st.row.account_id;
  call.refund_of = st.payment_id();
  call.credential = st.credential;
  compensation_attempt(self, std::move(call), amount, std::move(then), 0);
}

void refund_from_suspense(flow_actor* self, u128 amount, std::function<void(bool)> then) {
  compensation_refund(self, amount, [self, amount, then](u128 moved) {
    auto& st = self->state;
    if (moved == 0) {
      open_case(self, amount, amount);
      then(false);
      return;
    }
    // What the provider gave back leaves suspense; what it kept (a partial refund) stays there
    // with a case open, and the row goes to review.
    const u128 suspense = chart_account(*st.e, lp::role::suspense, 0, st.row.account_id, st.row.ledger);
    const u128 clearing =
        chart_account(*st.e, lp::role::provider_clearing, uint32_t(st.provider), st.row.account_id, st.row.ledger);
    book(self, {make_transfer(st, lp::leg::suspense_out, suspense, clearing, moved)}, [self, amount, moved, then](payment_result r) {
      if (r != payment_result::ok) {
        then(false);
        return;
      }
      self->state.note("book_suspense_out", 0, moved);
      if (moved < amount) {
        open_case(self, amount, amount - moved);
        then(false);
        return;
      }
      then(true);
    });
  });
}

std::unique_ptr<step> make_provider_call() { return std::make_unique<provider_call>(); }
std::unique_ptr<step> make_provider_refund() { return std::make_unique<provider_refund>(); }

} // namespace kassa::actors::pay
