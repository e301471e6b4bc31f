// hold_funds: reserves the payer's money as pending transfers before a provider moves any:
// a withdrawal's amount and fee, a pay-from-balance item, a refund through a provider (the
// merchant's side). release_hold (a compensation) voids them; settle_hold posts a
// withdrawal's hold once the provider paid out.
#include "actors/payments_core.hpp"
#include "actors/steps/steps.hpp"

namespace kassa::actors::pay {

namespace lp = ledger::payments;
using ledger::transfer;

namespace {

// The pending transfers this row holds (empty when its kind holds nothing).
std::vector<transfer> holds_of(const flow_state& st) {
  const env& e = *st.e;
  const uint32_t p = st.provider >= 0 ? uint32_t(st.provider) : 0;
  std::vector<transfer> out;
  switch (st.k) {
    case kind::withdrawal:
      out.push_back(make_transfer(st, lp::leg::hold, st.row.account_id,
                                  chart_account(e, lp::role::provider_clearing, p, st.row.account_id, st.row.ledger),
                                  st.row.amount, ledger::transfer_pending));
      if (st.row.fee != 0)
        out.push_back(make_transfer(st, lp::leg::hold_fee, st.row.account_id,
                                    chart_account(e, lp::role::fees, 0, st.row.account_id, st.row.ledger), st.row.fee,
                                    ledger::transfer_pending));
      break;
    case kind::pay:
      if (st.row.source == uint16_t(source::balance))
        out.push_back(make_transfer(st, lp::leg::hold, st.row.account_id,
                                    chart_account(e, lp::role::escrow, 0, st.row.account_id, st.row.ledger),
                                    st.row.amount, ledger::transfer_pending));
      break;
    case kind::refund:
      if (st.row.source == uint16_t(source::provider)) {
        const u128 merchant = st.parent.account_id;
        out.push_back(make_transfer(st, lp::leg::hold, merchant,
                                    chart_account(e, lp::role::provider_clearing, p, merchant, st.row.ledger),
                                    st.row.amount, ledger::transfer_pending));
      }
      break;
    default: break;
  }
  return out;
}

// Posts (post = true) or voids every hold of the row. A hold that is not there (never
// written: the flow failed before) counts as voided.
void resolve_holds(flow_actor* self, bool post, std::function<void(payment_result)> then) {
  auto holds = holds_of(self->state);
  if (holds.empty()) {
    then(payment_result::ok);
    return;
  }
  std::vector<transfer> out;
  for (const auto& h : holds) {
    const auto hl = static_cast<lp::leg>(h.user_data_32);
    const lp::leg l = hl == lp::leg::hold ? (post ? lp::leg::post : lp::leg::void_hold)
                                          : (post ? lp::leg::post_fee : lp::leg::void_fee);
    out.push_back(make_transfer(self->state, l, h.debit_account_id, h.credit_account_id, h.amount,
                                post ? ledger::transfer_post_pending : ledger::transfer_void_pending, h.id));
  }
  auto& st = self->state;
  const size_t n = out.size();
  create_transfers_request req{st.ctx, std::move(out), std::vector<uint8_t>(n, 1)};
  self->request(st.e->directory, caf::infinite, std::move(req))
      .then(
          [self, post, then](create_reply& r) {
            if (r.status != outcome::ok) {
              then(payment_result::busy);
              return;
            }
            for (const auto& f : r.failures) {
              const auto tr = static_cast<ledger::transfer_result>(f.code);
              using R = ledger::transfer_result;
              if (!post && (tr == R::pending_transfer_not_found || tr == R::pending_transfer_already_voided ||
                            tr == R::pending_transfer_expired))
                continue;
              if (tr == R::exists) continue;
              if (post && tr == R::pending_transfer_already_posted) continue;
              self->state.e->log_error(self->state.tag() + "resolving a hold: " +
                                       std::string(ledger::name(tr)));
              then(payment_result::ledger_refused);
              return;
            }
            then(payment_result::ok);
          },
          [then](caf::error&) { then(payment_result::busy); });
}

class hold_funds : public step {
public:
  bool rerun_on_timeout() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    auto holds = holds_of(self->state);
    if (holds.empty()) {
      done(payment_result::ok);
      return;
    }
    if (!self->state.resume) {
      place(self, std::move(holds), done);
      return;
    }
    // Resumed after a restart: the flow may have failed and voided its hold before the stop cut
    // off its last write. The hold then answers `exists` but holds nothing: the payment failed,
    // and must not go on to the provider.
    find_bookings(self, {lp::leg::void_hold}, [self, holds, done](payment_result r, const bookings& found) mutable {
      if (r != payment_result::ok) done(r);
      else if (!found.empty()) done(payment_result::ledger_refused);
      else place(self, std::move(holds), done);
    });
  }

private:
  static void place(flow_actor* self, std::vector<transfer> holds, step_done done) {
    book(self, std::move(holds), [self, done](payment_result r) {
      auto& st = self->state;
      if (r == payment_result::ok) {
        st.held = true;
        st.note("hold", 0, st.row.amount);
      }
      done(r);
    });
  }
};

class release_hold : public step {
public:
  void run(flow_actor* self, step_done done) override {
    resolve_holds(self, false, [self, done](payment_result r) {
      if (r == payment_result::ok) self->state.note("release_hold", 0, self->state.row.amount);
      done(r);
    });
  }
};

class settle_hold : public step {
public:
  bool rerun_on_timeout() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    resolve_holds(self, true, [self, done](payment_result r) {
      auto& st = self->state;
      if (r != payment_result::ok) {
        done(r);
        return;
      }
      st.note("book_withdrawal", 0, st.row.amount);
      if (st.row.fee != 0) st.note("book_fee", 0, st.row.fee);
      st.row.amount_captured = st.row.amount;
      if (st.provider_known && st.row.provider_amount != st.row.amount) {
        // the provider paid out another amount than was asked: the books follow the request,
        // the difference is a case for reconciliation
        open_case(self, st.row.amount, st.row.provider_amount);
        st.row.state = uint16_t(order_state::in_review);
        st.result = payment_result::amount_mismatch;
      }
      done(payment_result::ok);
    });
  }
};

} // namespace

void release_holds(flow_actor* self, std::function<void(payment_result)> then) { resolve_holds(self, false, std::move(then)); }

std::unique_ptr<step> make_hold_funds() { return std::make_unique<hold_funds>(); }
std::unique_ptr<step> make_release_hold() { return std::make_unique<release_hold>(); }
std::unique_ptr<step> make_settle_hold() { return std::make_unique<settle_hold>(); }

} // namespace kassa::actors::pay
