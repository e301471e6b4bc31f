// What the steps share: bookings in the ledger, the chart of accounts, journal entries.
#include <cstring>

#include "actors/directory.hpp"
#include "actors/payments_core.hpp"

namespace kassa::actors::pay {

namespace lp = ledger::payments;

const env::provider* env::find_provider(const char* name16) const {
  std::string name(name16, strnlen(name16, lp::provider_name_bytes));
  for (const auto& p : providers)
    if (p.name == name) return &p;
  return nullptr;
}

const config::fee_config* env::fee(config::payment_type t, uint32_t ledger) const {
  for (const auto& f : cfg.fees)
    if (f.type == t && f.ledger == ledger) return &f;
  return nullptr;
}

const config::limit_config* env::limit(config::payment_type t, uint32_t ledger) const {
  for (const auto& l : cfg.limits)
    if (l.type == t && l.ledger == ledger) return &l;
  return nullptr;
}

config::payment_type payment_type_of(kind k) {
  switch (k) {
    case kind::withdrawal: return config::payment_type::withdrawal;
    case kind::transfer: return config::payment_type::transfer;
    case kind::pay: return config::payment_type::pay;
    default: return config::payment_type::topup;
  }
}

bool fee_for(const env& e, config::payment_type t, uint32_t ledger, u128 amount, u128& fee) {
  fee = 0;
  const auto* f = e.fee(t, ledger);
  if (!f) return true;
  const lp::fee_rule rule{f->fixed, f->rate_ppm,
                          f->rounding == config::fee_rounding::up     ? lp::rounding::up
                          : f->rounding == config::fee_rounding::down ? lp::rounding::down
                                                                      : lp::rounding::half_even,
                          f->min, f->max};
  return lp::fee_of(rule, amount, fee);
}

bool uses_provider(const flow_state& st) {
  switch (st.k) {
    case kind::topup:
    case kind::withdrawal: return true;
    case kind::pay:
    case kind::refund: return st.row.source == uint16_t(source::provider);
    default: return false;
  }
}

u128 chart_account(const env& e, lp::role r, uint32_t provider, u128 near, uint32_t ledger) {
  return lp::account_id(r, provider, shard_of(near, e.shards), ledger);
}

ledger::transfer make_transfer(const flow_state& st, lp::leg l, u128 debit, u128 credit, u128 amount, uint16_t flags,
                               u128 pending_id) {
  ledger::transfer t{};
  t.id = lp::transfer_id(st.row.sequence, l);
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount = amount;
  t.pending_id = pending_id;
  t.user_data_128 = st.row.parent_id != 0 ? st.row.parent_id : st.row.id; // the business id
  t.user_data_64 = u128_lo(st.ctx.trace_id);                               // the trace
  t.user_data_32 = static_cast<uint32_t>(l);
  t.ledger = st.row.ledger;
  t.code = static_cast<uint16_t>(st.row.kind);
  t.flags = flags;
  return t;
}

payment_result map_transfer_result(ledger::transfer_result r) {
  using tr = ledger::transfer_result;
  switch (r) {
    case tr::ok:
    case tr::exists: return payment_result::ok;
    case tr::exceeds_credits:
    case tr::exceeds_debits: return payment_result::insufficient_funds;
    case tr::debit_account_not_found:
    case tr::credit_account_not_found: return payment_result::account_not_found;
    case tr::accounts_must_have_the_same_ledger:
    case tr::transfer_must_have_the_same_ledger_as_accounts: return payment_result::account_ledger_mismatch;
    case tr::overflows_debits_pending:
    case tr::overflows_credits_pending:
    case tr::overflows_debits_posted:
    case tr::overflows_credits_posted:
    case tr::overflows_debits:
    case tr::overflows_credits: return payment_result::amount_overflow;
    default: return payment_result::ledger_refused;
  }
}

namespace {

void book_attempt(flow_actor* self, std::vector<ledger::transfer> transfers, uint32_t attempt,
                  std::function<void(payment_result)> then) {
  auto& st = self->state;
  const size_t n = transfers.size();
  auto sent = transfers;
  for (auto& t : sent) t.id = lp::transfer_id(lp::transfer_sequence(t.id), lp::transfer_leg(t.id), attempt);
  create_transfers_request req{st.ctx, std::move(sent), std::vector<uint8_t>(n, 1)};
  self->request(st.e->directory, caf::infinite, std::move(req))
      .then(
          [self, then, transfers = std::move(transfers), attempt](create_reply& r) mutable {
            if (r.status != outcome::ok) {
              then(r.status == outcome::busy ? payment_result::busy : payment_result::store_unavailable);
              return;
            }
            for (const auto& f : r.failures) {
              if (static_cast<ledger::transfer_result>(f.code) != ledger::transfer_result::id_already_failed) continue;
              // an earlier attempt across shards was undone: nothing of it moved; the next one
              if (attempt + 1 < lp::transfer_attempts) {
                book_attempt(self, std::move(transfers), attempt + 1, std::move(then));
                return;
              }
              break;
            }
            payment_result worst = payment_result::ok;
            for (const auto& f : r.failures) {
              const auto tr = static_cast<ledger::transfer_result>(f.code);
              if (tr == ledger::transfer_result::linked_event_failed) continue;
              const payment_result pr = map_transfer_result(tr);
              if (pr != payment_result::ok) {
                if (pr == payment_result::ledger_refused)
                  self->state.e->log_error(self->state.tag() + "the ledger refused a booking: " +
                                           std::string(ledger::name(tr)));
                worst = pr;
                break;
              }
            }
            then(worst);
          },
          [self, then](caf::error& err) {
            self->state.e->log_error("payment booking: " + self->system().render(err));
            then(payment_result::store_unavailable);
          });
}

} // namespace

void book(flow_actor* self, std::vector<ledger::transfer> transfers, std::function<void(payment_result)> then) {
  const size_t n = transfers.size();
  for (size_t i = 0; i + 1 < n; ++i) transfers[i].flags |= ledger::transfer_linked;
  book_attempt(self, std::move(transfers), 0, std::move(then));
}

void find_bookings(flow_actor* self, std::vector<lp::leg> legs, std::function<void(payment_result, const bookings&)> then) {
  auto& st = self->state;
  std::vector<u128> ids;
  for (lp::leg l : legs) ids.push_back(lp::transfer_id(st.row.sequence, l));
  self->request(st.e->directory, caf::infinite, lookup_transfers_request{st.ctx, std::move(ids)})
      .then(
          [then](transfers_reply& r) {
            bookings found;
            if (r.status != outcome::ok) {
              then(payment_result::busy, found);
              return;
            }
            for (const auto& t : r.transfers) found.emplace(lp::transfer_leg(t.id), t);
            then(payment_result::ok, found);
          },
          [then](caf::error&) { then(payment_result::busy, bookings{}); });
}

journal_entry entry(const env& e, const request_context& ctx, const order& row, const char* actor, const char* step,
                    uint32_t result, u128 amount) {
  journal_entry j{};
  j.timestamp_ns = e.clock();
  j.trace_id = ctx.trace_id != 0 ? ctx.trace_id : row.trace_id;
  j.business_id = row.parent_id != 0 ? row.parent_id : row.id;
  j.row_id = row.id;
  j.amount = amount;
  j.result = result;
  j.kind = row.kind;
  j.state = row.state;
  // zero-padded, cut at 16 bytes (docs/accounting.md names the cut step names)
  std::memcpy(j.actor, actor, strnlen(actor, sizeof j.actor));
  std::memcpy(j.step, step, strnlen(step, sizeof j.step));
  return j;
}

} // namespace kassa::actors::pay
