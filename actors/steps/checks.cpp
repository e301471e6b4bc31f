// check_accounts: the accounts a payment names exist in the payment's ledger (before any
// provider is asked to move money). check_limits: the per-payment and per-day limits of the
// YAML; the day counters belong to the gateway, whose mailbox orders concurrent payments.
#include "actors/payments_core.hpp"
#include "actors/steps/steps.hpp"

namespace kassa::actors::pay {

namespace {

class check_accounts : public step {
public:
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    std::vector<u128> ids;
    switch (st.k) {
      case kind::topup:
      case kind::withdrawal: ids = {st.row.account_id}; break;
      case kind::transfer:
      case kind::pay: ids = {st.row.account_id, st.row.counterparty_id}; break;
      default: done(payment_result::ok); return; // a refund's accounts are its item's
    }
    self->request(st.e->directory, caf::infinite, lookup_accounts_request{st.ctx, ids})
        .then(
            [self, ids, done](accounts_reply& r) {
              if (r.status != outcome::ok) {
                done(payment_result::busy);
                return;
              }
              for (u128 id : ids) {
                const ledger::account* a = nullptr;
                for (const auto& x : r.accounts)
                  if (x.id == id) a = &x;
                if (!a) {
                  done(payment_result::account_not_found);
                  return;
                }
                if (a->ledger != self->state.row.ledger) {
                  done(payment_result::account_ledger_mismatch);
                  return;
                }
              }
              done(payment_result::ok);
            },
            [done](caf::error&) { done(payment_result::busy); });
  }
};

class check_limits : public step {
public:
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    if (st.k == kind::refund) {
      done(payment_result::ok);
      return;
    }
    const auto type = payment_type_of(st.k);
    const auto* l = st.e->limit(type, st.row.ledger);
    if (!l) {
      done(payment_result::ok);
      return;
    }
    if (l->payment_max != 0 && st.row.amount > l->payment_max) {
      done(payment_result::limit_exceeded);
      return;
    }
    if (l->account_day_max == 0 && l->account_day_count_max == 0) {
      done(payment_result::ok);
      return;
    }
    limit_reserve req{st.row.id, st.row.account_id, type, st.row.ledger,
                      ledger::payments::utc_day(st.row.created_ns), st.row.amount};
    self->request(st.e->gateway, caf::infinite, req)
        .then(
            [self, done](bool ok) {
              if (ok) self->state.limit_reserved = true;
              done(ok ? payment_result::ok : payment_result::limit_exceeded);
            },
            [done](caf::error&) { done(payment_result::busy); });
  }
};

} // namespace

std::unique_ptr<step> make_check_accounts() { return std::make_unique<check_accounts>(); }
std::unique_ptr<step> make_check_limits() { return std::make_unique<check_limits>(); }

} // namespace kassa::actors::pay
