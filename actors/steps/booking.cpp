// The bookings that finish a flow: book_topup (money in, to the user, less the fee),
// book_transfer (user to user, with the fee), capture (a pay item counts towards its order,
// if the order still needs it) and book_refund. Money a provider moved in that does not
// match what was asked follows the YAML: a partial payment is accepted, refunded or held;
// an amount mismatch goes to suspense with a reconciliation case; a duplicate payment of an
// order already paid is refunded (or kept on the payer's balance).
#include "actors/payments_core.hpp"
#include "actors/steps/steps.hpp"

namespace kassa::actors::pay {

namespace lp = ledger::payments;

namespace {

u128 clearing_near(const flow_state& st, u128 near) {
  return chart_account(*st.e, lp::role::provider_clearing, uint32_t(st.provider), near, st.row.ledger);
}

// What came in goes back through the provider: suspense, then the compensation refund.
void give_back(flow_actor* self, u128 amount, payment_result result, step_done done) {
  to_suspense(self, amount, [self, amount, result, done](payment_result r) {
    if (r != payment_result::ok) {
      done(r);
      return;
    }
    refund_from_suspense(self, amount, [self, result, done](bool ok) {
      auto& st = self->state;
      if (ok) {
        st.row.state = uint16_t(order_state::failed);
        st.result = result;
      } else {
        st.row.state = uint16_t(order_state::in_review);
        st.result = payment_result::outcome_unknown;
      }
      done(payment_result::ok);
    });
  });
}

// The provider's answer did not match the request. Returns true when it took care of it.
bool exception_path(flow_actor* self, step_done done) {
  auto& st = self->state;
  const u128 got = st.row.provider_amount;
  if (st.provider_result.status == call_status::partial && got < st.row.amount) {
    switch (st.e->cfg.exceptions.partial_payment) {
      case config::partial_payment_policy::accept: return false; // booked as it came
      case config::partial_payment_policy::refund:
        st.note("partial", uint32_t(payment_result::partial_payment_refunded), got);
        give_back(self, got, payment_result::partial_payment_refunded, done);
        return true;
      case config::partial_payment_policy::hold:
        st.note("partial_hold", 0, got);
        to_suspense(self, got, [self, got, done](payment_result r) {
          auto& st = self->state;
          if (r != payment_result::ok) {
            done(r);
            return;
          }
          st.row.state = uint16_t(order_state::partially_paid);
          // when the hold expires without the rest, the payment goes back
          st.on_hold = [self, got]() {
            refund_from_suspense(self, got, [self](bool ok) {
              auto& st = self->state;
              st.row.state = uint16_t(ok ? order_state::failed : order_state::in_review);
              st.result = ok ? payment_result::partial_payment_refunded : payment_result::outcome_unknown;
              st.row.result = uint32_t(st.result);
              st.note("hold_expired", uint32_t(st.result), 0);
              self->send(self, flow_down_atom::value); // past the last step: finishes
            });
          };
          done(payment_result::ok);
        });
        return true;
    }
  }
  if (got != st.row.amount) {
    // an amount mismatch: nobody's balance moves until a person looks at it
    st.note("amount_mismatch", uint32_t(payment_result::amount_mismatch), got);
    to_suspense(self, got, [self, got, done](payment_result r) {
      auto& st = self->state;
      if (r != payment_result::ok) {
        done(r);
        return;
      }
      open_case(self, st.row.amount, got);
      st.row.state = uint16_t(order_state::in_review);
      st.result = payment_result::amount_mismatch;
      done(payment_result::ok);
    });
    return true;
  }
  return false;
}

// A topup's fee, on what arrived; never more than that (also when it overflows).
u128 topup_fee(const flow_state& st, u128 amount) {
  u128 fee = 0;
  if (!fee_for(*st.e, payment_type_of(st.k), st.row.ledger, amount, fee) || fee > amount) return amount;
  return fee;
}

class book_topup : public step {
public:
  bool rerun_on_timeout() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    if (!st.provider_known) {
      done(payment_result::in_progress);
      return;
    }
    if (exception_path(self, done)) return;
    const u128 amount = st.row.provider_amount;
    const u128 fee = topup_fee(st, amount); // a topup never takes more than it brings
    std::vector<ledger::transfer> ts{make_transfer(st, lp::leg::book, clearing_near(st, st.row.account_id), st.row.account_id, amount)};
    if (fee != 0)
      ts.push_back(make_transfer(st, lp::leg::fee, st.row.account_id,
                                 chart_account(*st.e, lp::role::fees, 0, st.row.account_id, st.row.ledger), fee));
    book(self, std::move(ts), [self, amount, fee, done](payment_result r) {
      auto& st = self->state;
      if (r == payment_result::ok) {
        st.row.amount_captured = amount;
        st.row.fee = fee;
        st.note("book_topup", 0, amount);
        if (fee != 0) st.note("book_fee", 0, fee);
      }
      done(r);
    });
  }
};

class book_transfer : public step {
public:
  bool rerun_on_timeout() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    std::vector<ledger::transfer> ts{make_transfer(st, lp::leg::book, st.row.account_id, st.row.counterparty_id, st.row.amount)};
    if (st.row.fee != 0)
      ts.push_back(make_transfer(st, lp::leg::fee, st.row.account_id,
                                 chart_account(*st.e, lp::role::fees, 0, st.row.account_id, st.row.ledger), st.row.fee));
    book(self, std::move(ts), [self, done](payment_result r) {
      auto& st = self->state;
      if (r == payment_result::ok) {
        st.row.amount_captured = st.row.amount;
        st.note("book_transfer", 0, st.row.amount);
        if (st.row.fee != 0) st.note("book_fee", 0, st.row.fee);
      }
      done(r);
    });
  }
};

class capture : public step {
public:
  bool rerun_on_timeout() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    const bool by_provider = st.row.source == uint16_t(source::provider);
    if (by_provider && !st.provider_known) {
      done(payment_result::in_progress);
      return;
    }
    if (by_provider && exception_path(self, done)) return;
    const u128 amount = by_provider ? st.row.provider_amount : st.row.amount;
    if (st.resume) {
      resumed(self, amount, by_provider, done);
      return;
    }
    ask_order(self, amount, by_provider, false, done);
  }

private:
  // Whether the item may count towards its order: the order's mailbox decides. `force`: the
  // ledger shows the first life counted it (the money went to the merchant): it counts.
  static void ask_order(flow_actor* self, u128 amount, bool by_provider, bool force, step_done done) {
    auto& st = self->state;
    self->request(st.owner, caf::infinite, capture_request{st.row.id, amount, force})
        .then(
            [self, amount, by_provider, done](capture_reply& cr) {
              if (cr.ok) counted(self, amount, by_provider, done);
              else if (by_provider) duplicate(self, amount, done);
              else refused(done, self);
            },
            [done](caf::error&) { done(payment_result::busy); });
  }

  // A flow resumed after a restart: the order's answer may differ from the one its first life
  // got (the order was reloaded, other items came meanwhile), so what the ledger shows the
  // first life booked decides, and only a capture that left no trace asks the order again.
  static void resumed(flow_actor* self, u128 amount, bool by_provider, step_done done) {
    find_bookings(self, {lp::leg::book, lp::leg::post, lp::leg::void_hold, lp::leg::suspense},
                  [self, amount, by_provider, done](payment_result r, const bookings& found) {
                    if (r != payment_result::ok) {
                      done(r);
                      return;
                    }
                    auto book = found.find(lp::leg::book);
                    if (by_provider) {
                      if (book != found.end() && book->second.credit_account_id == self->state.row.counterparty_id)
                        ask_order(self, amount, by_provider, true, done); // booked to the merchant
                      else if (book != found.end() || found.count(lp::leg::suspense))
                        duplicate(self, amount, done); // kept, or given back
                      else
                        ask_order(self, amount, by_provider, false, done);
                      return;
                    }
                    if (found.count(lp::leg::post)) ask_order(self, amount, by_provider, true, done); // hold posted
                    else if (found.count(lp::leg::void_hold)) refused(done, self);                    // hold voided
                    else ask_order(self, amount, by_provider, false, done);
                  });
  }

  // The item counts: the money goes to the merchant.
  static void counted(flow_actor* self, u128 amount, bool by_provider, step_done done) {
    auto& st = self->state;
    const u128 merchant = st.row.counterparty_id;
    std::vector<ledger::transfer> ts;
    if (by_provider) {
      ts.push_back(make_transfer(st, lp::leg::book, clearing_near(st, merchant), merchant, amount));
    } else {
      const u128 escrow = chart_account(*st.e, lp::role::escrow, 0, st.row.account_id, st.row.ledger);
      ts.push_back(make_transfer(st, lp::leg::post, st.row.account_id, escrow, amount, ledger::transfer_post_pending,
                                 lp::transfer_id(st.row.sequence, lp::leg::hold)));
    }
    book(self, std::move(ts), [self, amount, by_provider, merchant, done](payment_result r) {
      auto& st = self->state;
      if (r != payment_result::ok || by_provider) {
        if (r == payment_result::ok) {
          st.row.amount_captured = amount;
          st.note("book_capture_prv", 0, amount);
        }
        done(r);
        return;
      }
      // from the payer's shard's escrow on to the merchant (a plain transfer may cross shards;
      // the hold could not)
      const u128 escrow = chart_account(*st.e, lp::role::escrow, 0, st.row.account_id, st.row.ledger);
      book(self, {make_transfer(st, lp::leg::forward, escrow, merchant, amount)}, [self, amount, done](payment_result r2) {
        auto& st = self->state;
        if (r2 == payment_result::ok) {
          st.row.amount_captured = amount;
          st.note("book_capture_bal", 0, amount);
        }
        done(r2);
      });
    });
  }

  // A duplicate payment: the order was paid by another item meanwhile.
  static void duplicate(flow_actor* self, u128 amount, step_done done) {
    auto& st = self->state;
    st.note("duplicate", 0, amount);
    if (st.e->cfg.exceptions.duplicate_payment == config::duplicate_payment_policy::refund) {
      give_back(self, amount, payment_result::ok, [self, done](payment_result r) {
        auto& st = self->state;
        if (st.row.state == uint16_t(order_state::failed)) st.row.state = uint16_t(order_state::refunded);
        done(r);
      });
      return;
    }
    book(self, {make_transfer(st, lp::leg::book, clearing_near(st, st.row.account_id), st.row.account_id, amount)},
         [self, amount, done](payment_result r) {
           if (r == payment_result::ok) self->state.note("book_topup", 0, amount);
           done(r);
         });
  }

  // Paid from the balance, but the order needs it no more: nothing moved yet; the hold goes back.
  static void refused(step_done done, flow_actor* self) {
    release_holds(self, [done](payment_result r) { done(r == payment_result::ok ? payment_result::order_not_payable : r); });
  }
};

// A refund through a provider books what the provider confirmed, never more than was asked:
// the merchant's hold is posted for the smaller of the two (the rest of it is released and
// stays refundable); what the provider gave back beyond the request goes to suspense. Any
// difference opens a case (amount_mismatch); a refund confirmed for nothing books nothing.
void book_provider_refund(flow_actor* self, step_done done) {
  auto& st = self->state;
  const u128 merchant = st.parent.account_id;
  const u128 asked = st.row.amount, confirmed = st.row.provider_amount;
  const u128 moved = confirmed < asked ? confirmed : asked;
  const u128 excess = confirmed - moved;
  auto mismatch = [self, asked, confirmed] {
    auto& st = self->state;
    if (confirmed == asked) return;
    open_case(self, asked, confirmed);
    st.result = payment_result::amount_mismatch;
    st.row.result = uint32_t(payment_result::amount_mismatch);
  };
  if (moved == 0) {
    release_holds(self, [self, done, mismatch](payment_result r) {
      if (r == payment_result::ok) {
        mismatch();
        self->state.row.state = uint16_t(order_state::in_review);
      }
      done(r);
    });
    return;
  }
  const u128 clearing = clearing_near(st, merchant);
  std::vector<ledger::transfer> ts{make_transfer(st, lp::leg::post, merchant, clearing, moved,
                                                 ledger::transfer_post_pending,
                                                 lp::transfer_id(st.row.sequence, lp::leg::hold))};
  if (excess != 0)
    ts.push_back(make_transfer(st, lp::leg::suspense_out,
                               chart_account(*st.e, lp::role::suspense, 0, merchant, st.row.ledger), clearing, excess));
  book(self, std::move(ts), [self, done, moved, excess, mismatch](payment_result r) {
    auto& st = self->state;
    if (r == payment_result::ok) {
      st.row.amount_captured = moved;
      st.note("book_refund_prv", 0, moved);
      if (excess != 0) st.note("book_suspense_out", 0, excess);
      mismatch();
    }
    done(r);
  });
}

class book_refund : public step {
public:
  bool rerun_on_timeout() const override { return true; }
  void run(flow_actor* self, step_done done) override {
    auto& st = self->state;
    const u128 merchant = st.parent.account_id;
    if (st.row.source == uint16_t(source::provider)) {
      if (!st.provider_known) {
        done(payment_result::in_progress);
        return;
      }
      book_provider_refund(self, done);
      return;
    }
    book(self, {make_transfer(st, lp::leg::book, merchant, st.row.account_id, st.row.amount)}, [self, done](payment_result r) {
      auto& st = self->state;
      if (r == payment_result::ok) {
        st.row.amount_captured = st.row.amount;
        st.note("book_refund_bal", 0, st.row.amount);
      }
      done(r);
    });
  }
};

} // namespace

// Moves `amount` that the provider took in into suspense: its owner is not settled.
void to_suspense(flow_actor* self, u128 amount, std::function<void(payment_result)> then) {
  auto& st = self->state;
  const u128 near = st.row.account_id;
  book(self,
       {make_transfer(st, lp::leg::suspense, clearing_near(st, near),
                      chart_account(*st.e, lp::role::suspense, 0, near, st.row.ledger), amount)},
       [self, amount, then](payment_result r) {
         if (r == payment_result::ok) self->state.note("book_suspense", 0, amount);
         then(r);
       });
}

std::unique_ptr<step> make_book_topup() { return std::make_unique<book_topup>(); }
std::unique_ptr<step> make_book_transfer() { return std::make_unique<book_transfer>(); }
std::unique_ptr<step> make_capture() { return std::make_unique<capture>(); }
std::unique_ptr<step> make_book_refund() { return std::make_unique<book_refund>(); }

} // namespace kassa::actors::pay
