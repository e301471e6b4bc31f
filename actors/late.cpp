// A provider's success that arrives after kassa had failed the payment (a declined answer,
// then a success callback): the money did move, so the books follow it.
//  - topup: policy `accept` credits the user; `refund` gives it back through the provider.
//  - withdrawal (or a refund): the money went out although the hold was voided: the payer is
//    debited now; if the balance no longer covers it, suspense carries it with a case open.
//  - pay: the order was not charged for it: it is given back (a duplicate payment).
#include <cstring>

#include "actors/payments_core.hpp"
#include "actors/payments_writer.hpp"
#include "actors/reconciler.hpp"
#include "actors/steps/steps.hpp"
#include "actors/unexpected.hpp"

namespace kassa::actors::pay {

namespace lp = ledger::payments;

namespace {

constexpr uint32_t late_writes_max = 20;   // tries of the row's write
constexpr uint32_t late_write_retry_ms = 100;

// Writes the row with what the late success booked. A write that fails is tried again: the
// bookings are in the ledger, and a row left `failed` would not say so (until the provider's
// feed is read again at the next start and the late flow runs again, its bookings answering
// `exists`).
void late_write(flow_actor* self, payments_write w, uint32_t tries) {
  auto& st = self->state;
  self->request(st.e->writer, caf::infinite, w)
      .then(
          [self, w, tries](payments_written& done) {
            auto& st = self->state;
            if (!done.error.ok() && tries + 1 < late_writes_max) {
              after(self, late_write_retry_ms, [self, w, tries] { late_write(self, w, tries + 1); });
              return;
            }
            if (!done.error.ok())
              st.e->log_error(st.tag() + "a late success's row was not written: " + done.error.message +
                              "; its bookings are made, the row follows at the next start");
            self->send(st.e->gateway, flow_report{st.row, payment_result::ok, true, {}});
            self->quit();
          },
          [self](caf::error&) {
            self->send(self->state.e->gateway, flow_report{self->state.row, payment_result::ok, true, {}});
            self->quit();
          });
}

void late_done(flow_actor* self, order_state s) {
  auto& st = self->state;
  st.row.state = uint16_t(s);
  st.row.updated_ns = st.e->clock();
  payments_write w;
  w.batch.rows.push_back(st.row);
  w.batch.journal = std::move(st.journal);
  st.journal.clear();
  late_write(self, std::move(w), 0);
}

// A refund's end goes through its order's actor, which writes it with the order's counts.
void late_refund_done(flow_actor* self, order_state s) {
  auto& st = self->state;
  st.row.state = uint16_t(s);
  st.row.updated_ns = st.e->clock();
  late_refund msg{st.row, true, std::move(st.journal)};
  st.journal.clear();
  self->request(st.e->gateway, caf::infinite, std::move(msg))
      .then(
          [self](bool ok) {
            auto& st = self->state;
            if (!ok)
              st.e->log_error(st.tag() + "a late refund's row was not written with its order; its bookings are made, "
                              "the row follows at the next start");
            self->send(st.e->gateway, flow_report{st.row, payment_result::ok, true, {}});
            self->quit();
          },
          [self](caf::error&) {
            self->send(self->state.e->gateway, flow_report{self->state.row, payment_result::ok, true, {}});
            self->quit();
          });
}

// The money a late refund moved that its order cannot count, or its merchant cannot cover:
// suspense carries it (to the provider's clearing account), a case opens, a person follows up.
void late_refund_to_suspense(flow_actor* self, u128 clearing, u128 amount) {
  auto& st = self->state;
  const u128 suspense = chart_account(*st.e, lp::role::suspense, 0, st.parent.account_id, st.row.ledger);
  book(self, {make_transfer(st, lp::leg::suspense_out, suspense, clearing, amount)}, [self, amount](payment_result r) {
    if (r == payment_result::ok) self->state.note("book_suspense_out", 0, amount);
    open_case(self, self->state.row.amount, amount);
    late_refund_done(self, order_state::in_review);
  });
}

// A refund the provider made after kassa had failed it: the merchant pays it, at most what
// was asked (more goes to suspense, with a case), once its order has the room for it again;
// the order counts it as refunded. `earlier`: what an earlier run of this late flow booked
// before kassad stopped (its row not written yet), which this run follows rather than booking
// the same money a second way.
void late_refund_book(flow_actor* self, u128 clearing, const bookings& earlier) {
  auto& st = self->state;
  const bool merchant_paid = earlier.count(lp::leg::late) != 0;
  if (!merchant_paid && earlier.count(lp::leg::suspense_out) != 0) { // it went to suspense
    late_refund_to_suspense(self, clearing, st.row.provider_amount);
    return;
  }
  self->request(st.e->gateway, caf::infinite, late_refund{st.row, false, {}})
      .then(
          [self, clearing, merchant_paid](bool room) {
            auto& st = self->state;
            const u128 confirmed = st.row.provider_amount;
            if (!room && merchant_paid) {
              // the merchant paid it in the earlier run, and the order has no room for it now
              // (another refund took it meanwhile): it stands, uncounted, with a case
              st.note("book_late", 0, std::min(confirmed, st.row.amount));
              open_case(self, st.row.amount, confirmed);
              late_refund_done(self, order_state::in_review);
              return;
            }
            if (!room) {
              late_refund_to_suspense(self, clearing, confirmed);
              return;
            }
            const u128 moved = confirmed < st.row.amount ? confirmed : st.row.amount;
            const u128 excess = confirmed - moved;
            std::vector<ledger::transfer> ts{make_transfer(st, lp::leg::late, st.parent.account_id, clearing, moved)};
            if (excess != 0)
              ts.push_back(make_transfer(
                  st, lp::leg::suspense_out,
                  chart_account(*st.e, lp::role::suspense, 0, st.parent.account_id, st.row.ledger), clearing, excess));
            book(self, std::move(ts), [self, clearing, confirmed, moved, excess](payment_result r) {
              auto& st = self->state;
              if (r != payment_result::ok) { // the merchant cannot cover it
                late_refund_to_suspense(self, clearing, confirmed);
                return;
              }
              st.note("book_late", 0, moved);
              if (excess != 0) st.note("book_suspense_out", 0, excess);
              st.row.amount_captured = moved;
              st.row.result = 0;
              if (confirmed != st.row.amount) {
                open_case(self, st.row.amount, confirmed);
                st.row.result = uint32_t(payment_result::amount_mismatch);
              }
              late_refund_done(self, order_state::completed);
            });
          },
          [self](caf::error&) {
            // its order could not be asked: the row stays failed, the provider's feed brings the
            // success again at the next start
            self->send(self->state.e->gateway, flow_report{self->state.row, payment_result::ok, true, {}});
            self->quit();
          });
}

void late_refund_run(flow_actor* self, u128 clearing) {
  find_bookings(self, {lp::leg::late, lp::leg::suspense_out}, [self, clearing](payment_result r, const bookings& earlier) {
    if (r != payment_result::ok) { // the ledger did not answer: the success comes again at the next start
      self->send(self->state.e->gateway, flow_report{self->state.row, payment_result::ok, true, {}});
      self->quit();
      return;
    }
    late_refund_book(self, clearing, earlier);
  });
}

} // namespace

caf::actor spawn_late_flow(caf::actor_system& sys, env_ptr e, late_start start) {
  return sys.spawn([](flow_actor* self, env_ptr e, late_start start) -> caf::behavior {
    auto& st = self->state;
    st.e = e;
    st.owner = e->gateway;
    follow_owner(self);
    st.row = start.row;
    st.ctx = request_context{start.row.trace_id, start.row.parent_id ? start.row.parent_id : start.row.id, 0, 0, false};
    st.k = static_cast<kind>(start.row.kind);
    if (start.row.parent_id != 0) {
      bool found = false;
      e->store->get_row(start.row.parent_id, st.parent, found);
    }
    if (const auto* p = e->find_provider(start.row.provider)) st.provider = int(p->index);
    st.provider_known = true;
    st.provider_result.status = start.ev.status;
    st.provider_result.amount = start.ev.amount;
    st.row.provider_amount = start.ev.amount;
    st.row.fee = 0; // a late success books the amount alone: no fee is charged, none is shown
    st.note("late_success", 0, start.ev.amount);
    drop_unexpected(self, [self](const std::string& m) { self->state.e->log_error(self->state.tag() + m); });
    self->send(self, flow_down_atom::value);
    return {
        [self](flow_down_atom) {
          if (!from_self(self)) return;
          auto& st = self->state;
          const u128 amount = st.row.provider_amount;
          if (st.provider < 0) {
            open_case(self, 0, amount);
            late_done(self, order_state::in_review);
            return;
          }
          const u128 clearing =
              chart_account(*st.e, lp::role::provider_clearing, uint32_t(st.provider), st.row.account_id, st.row.ledger);
          if (st.k == kind::topup && st.e->cfg.exceptions.late_success == config::late_success_policy::accept) {
            book(self, {make_transfer(st, lp::leg::late, clearing, st.row.account_id, amount)}, [self, amount](payment_result r) {
              auto& st = self->state;
              if (r == payment_result::ok) {
                st.note("book_late", 0, amount);
                st.row.amount_captured = amount;
                st.row.result = 0;
                late_done(self, order_state::completed);
              } else {
                open_case(self, 0, amount);
                late_done(self, order_state::in_review);
              }
            });
            return;
          }
          if (st.k == kind::topup || st.k == kind::pay) {
            // give it back: suspense, then the compensation refund
            to_suspense(self, amount, [self, amount](payment_result r) {
              if (r != payment_result::ok) {
                open_case(self, 0, amount);
                late_done(self, order_state::in_review);
                return;
              }
              refund_from_suspense(self, amount, [self](bool ok) {
                late_done(self, ok ? order_state::failed : order_state::in_review);
              });
            });
            return;
          }
          if (st.k == kind::refund) {
            late_refund_run(self, clearing);
            return;
          }
          // money went out: a withdrawal
          const u128 payer = st.row.account_id;
          book(self, {make_transfer(st, lp::leg::late, payer, clearing, amount)}, [self, amount, clearing](payment_result r) {
            auto& st = self->state;
            if (r == payment_result::ok) {
              st.note("book_late", 0, amount);
              st.row.amount_captured = amount;
              st.row.result = 0;
              late_done(self, order_state::completed);
              return;
            }
            // the payer cannot cover it: suspense holds the claim, a person follows up
            const u128 suspense = chart_account(*st.e, lp::role::suspense, 0, st.row.account_id, st.row.ledger);
            book(self, {make_transfer(st, lp::leg::suspense_out, suspense, clearing, amount)}, [self, amount](payment_result r2) {
              if (r2 == payment_result::ok) self->state.note("book_suspense_out", 0, amount);
              open_case(self, 0, amount);
              late_done(self, order_state::in_review);
            });
          });
        },
        [self](timer_atom, uint64_t id) {
          if (from_self(self)) fire_timer(self, id);
        },
        // the same success again (a duplicate callback, the feed read again): already in hand
        [](flow_event&) {},
    };
  }, e, start);
}

void open_case(flow_actor* self, u128 amount_internal, u128 amount_provider) {
  auto& st = self->state;
  st.note("case_opened", 0, amount_provider);
  if (!st.e->reconciler) {
    st.e->log_error(st.tag() + "a reconciliation case is due but reconciliation is off");
    return;
  }
  actors::open_case msg;
  msg.payment_id = st.payment_id();
  msg.row_id = st.row.id;
  msg.ledger = st.row.ledger;
  msg.internal_amount = amount_internal;
  msg.provider_amount = amount_provider;
  msg.provider = std::string(st.row.provider, strnlen(st.row.provider, sizeof st.row.provider));
  msg.trace_id = st.ctx.trace_id;
  self->send(st.e->reconciler, std::move(msg));
}

void open_case_unknown(flow_actor* self) { open_case(self, self->state.row.amount, 0); }

} // namespace kassa::actors::pay
