#include "actors/recon_cases.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "actors/channel.hpp"
#include "actors/messages.hpp"
#include "ledger/result.hpp"

namespace kassa::actors {

namespace {

namespace ks = ledger::store;
namespace lp = ledger::payments;
using lp::case_result;

// Where a resolution's outcome goes: a client's request, or kassa itself.
struct reply_to {
  caf::response_promise rp;
  std::function<void(const recon_case_resolved&)> done;
};

void answer(reply_to& to, recon_case_resolved r) {
  if (to.done) to.done(r);
  else if (!to.rp.async()) to.rp.deliver(std::move(r));
}

void answer(reply_to& rp, case_result result) { answer(rp, recon_case_resolved{{}, result, {}}); }

// The ledger's answer to the correcting transfer: exists (asked before) is the booking done.
case_result booking_result(const create_reply& r) {
  using tr = ledger::transfer_result;
  for (const event_result& f : r.failures) {
    const auto code = static_cast<tr>(f.code);
    switch (code) {
      case tr::ok:
      case tr::exists: continue;
      case tr::exceeds_credits:
      case tr::exceeds_debits: return case_result::insufficient_funds;
      case tr::exists_with_different_amount:
      case tr::exists_with_different_debit_account_id:
      case tr::exists_with_different_credit_account_id:
      case tr::exists_with_different_user_data_128:
      case tr::exists_with_different_user_data_64:
      case tr::exists_with_different_user_data_32:
      case tr::exists_with_different_ledger:
      case tr::exists_with_different_code:
      case tr::exists_with_different_flags: return case_result::booking_differs;
      default: return case_result::ledger_refused;
    }
  }
  return case_result::ok;
}

// Marks the case resolved and journals `entry`, then answers.
void journal(caf::event_based_actor* self, const case_desk& desk, ks::recon_resolution entry,
             reply_to rp) {
  recon_write w;
  w.batch.resolutions.push_back(entry);
  self->request(desk.committer, caf::infinite, std::move(w))
      .then(
          [desk, entry, rp](recon_written& done) mutable {
            if (desk.written) desk.written(done);
            if (!done.error.ok()) return answer(rp, recon_case_resolved{done.error, case_result::ok, {}});
            // another resolution of the same case was journaled first; a booking both asked
            // for was made once (the second answered exists)
            if (done.batch.resolutions_applied.empty() || !done.batch.resolutions_applied[0])
              return answer(rp, case_result::case_resolved);
            answer(rp, recon_case_resolved{{}, case_result::ok, entry});
          },
          [rp](caf::error& e) mutable {
            answer(rp, recon_case_resolved{{ks::errc::io, "reconciliation committer failed: " + to_string(e)},
                                           case_result::ok, {}});
          });
}

// The case's account and row as a booking needs them; false on a store failure.
bool facts_of(const case_desk& desk, const ks::recon_case& c, lp::case_facts& f, ks::error& err) {
  f.id = c.id;
  f.parked = c.kind == uint8_t(ks::case_kind::suspense);
  f.ledger = c.ledger;
  f.internal_amount = c.internal_amount;
  f.provider_amount = c.provider_amount;
  if (c.row_id == 0 || !desk.payments) return true;
  lp::order row{};
  bool found = false;
  if (!(err = desk.payments->get_row(c.row_id, row, found)).ok()) return false;
  if (!found) return true;
  f.row_kind = lp::kind(row.kind);
  f.code = row.kind;
  f.business_id = row.parent_id != 0 ? row.parent_id : row.id;
  f.account_id = row.account_id;
  if (f.row_kind == lp::kind::refund && row.parent_id != 0) { // a refund debits its order's merchant
    lp::order parent{};
    if (!(err = desk.payments->get_row(row.parent_id, parent, found)).ok()) return false;
    f.account_id = found ? parent.account_id : 0;
  }
  if (f.ledger == 0) f.ledger = row.ledger;
  return true;
}

// Books the resolution's transfer (exists: booked before) and journals `entry`.
void book_and_journal(caf::event_based_actor* self, const case_desk& desk, request_context ctx, ledger::transfer t,
                      ks::recon_resolution entry, reply_to rp) {
  entry.transfer_id = t.id;
  entry.debit_account_id = t.debit_account_id;
  entry.credit_account_id = t.credit_account_id;
  self->request(desk.ledger, caf::infinite, create_transfers_request{ctx, {t}, {1}})
      .then(
          [self, desk, entry, rp](create_reply& r) mutable {
            if (r.status != outcome::ok)
              return answer(rp, recon_case_resolved{{ks::errc::io, "the ledger did not take the correcting transfer (outcome " +
                                                                       std::to_string(int(r.status)) + "): retry"},
                                                    case_result::ok, {}});
            const case_result booked = booking_result(r);
            if (booked != case_result::ok) return answer(rp, booked);
            journal(self, desk, entry, rp);
          },
          [rp](caf::error& e) mutable {
            answer(rp, recon_case_resolved{{ks::errc::io, "the ledger did not answer: " + to_string(e)},
                                           case_result::ok, {}});
          });
}

request_context context_of(const ks::recon_case& c, const lp::case_facts& f, const ks::recon_resolution& entry) {
  request_context ctx;
  ctx.trace_id = c.trace_id;
  ctx.business_id = f.business_id;
  ctx.client_id = entry.client_id;
  return ctx;
}

void book(caf::event_based_actor* self, const case_desk& desk, const ks::recon_case& c, ks::recon_resolution entry,
          reply_to rp) {
  lp::case_facts f;
  ks::error err;
  if (!facts_of(desk, c, f, err)) return answer(rp, recon_case_resolved{err, case_result::ok, {}});
  if (!desk.ledger || !desk.suspense_account) return answer(rp, case_result::ledger_refused);
  auto direction = lp::case_direction(entry.direction);
  ledger::transfer t{};
  const case_result planned =
      lp::plan_booking(f, f.account_id != 0 ? desk.suspense_account(f.account_id, f.ledger) : 0, direction,
                       entry.amount, t);
  if (planned != case_result::ok) return answer(rp, planned);
  entry.direction = uint8_t(direction);
  book_and_journal(self, desk, context_of(c, f, entry), t, entry, rp);
}

// --- refund ----------------------------------------------------------------------------------

// What a refund needs beside the case: the provider's channel and chart accounts.
struct refund_plan {
  caf::actor channel;
  bool credential = false; // the provider wants one on the call
  u128 suspense = 0, clearing = 0;
  payment_call call;
};

// The provider's answer: book what it gave back, or leave the case open with why.
void refund_answered(caf::event_based_actor* self, const case_desk& desk, const ks::recon_case& c,
                     const lp::case_facts& f, const refund_plan& p, ks::recon_resolution entry, reply_to rp,
                     const call_result& r) {
  u128 booked = 0;
  const case_result outcome = lp::refund_outcome(uint8_t(r.status), r.not_sent, r.amount, p.call.amount, booked);
  if (outcome != case_result::ok) return answer(rp, outcome);
  ledger::transfer t{};
  const case_result planned = lp::plan_refund_booking(f, p.suspense, p.clearing, booked, t);
  if (planned != case_result::ok) return answer(rp, planned);
  entry.amount = booked;
  book_and_journal(self, desk, context_of(c, f, entry), t, entry, rp);
}

void refund_call(caf::event_based_actor* self, const case_desk& desk, const ks::recon_case& c, const lp::case_facts& f,
                 const refund_plan& p, ks::recon_resolution entry, reply_to rp) {
  self->request(p.channel, std::chrono::milliseconds(desk.refund_timeout_ms), p.call)
      .then(
          [self, desk, c, f, p, entry, rp](call_result& r) mutable {
            refund_answered(self, desk, c, f, p, entry, rp, r);
          },
          // no answer in time: the provider may have refunded; asking again sends the same id
          [rp](caf::error&) mutable { answer(rp, case_result::refund_outcome_unknown); });
}

void refund(caf::event_based_actor* self, const case_desk& desk, const ks::recon_case& c, ks::recon_resolution entry,
            reply_to rp) {
  lp::case_facts f;
  ks::error err;
  if (!facts_of(desk, c, f, err)) return answer(rp, recon_case_resolved{err, case_result::ok, {}});
  refund_plan p;
  const std::string provider(c.provider, strnlen(c.provider, sizeof c.provider));
  for (const auto& [name, channel] : desk.channels)
    if (name == provider) p.channel = channel;
  p.credential = std::find(desk.credential_providers.begin(), desk.credential_providers.end(), provider) !=
                 desk.credential_providers.end();
  f.payment_id = c.payment_id;
  f.provider_known = p.channel && desk.clearing_account && desk.suspense_account && desk.ledger && desk.payments;
  u128 amount = entry.amount;
  const case_result planned = lp::plan_refund(f, amount);
  if (planned != case_result::ok) return answer(rp, planned);
  p.suspense = desk.suspense_account(f.account_id, f.ledger);
  p.clearing = desk.clearing_account(provider, f.account_id, f.ledger);
  p.call.ctx = context_of(c, f, entry);
  p.call.payment_id = desk.payments->ids().case_refund_id(c.id);
  p.call.kind = call_kind::refund;
  p.call.amount = amount;
  p.call.ledger = f.ledger;
  p.call.account_id = f.account_id;
  p.call.refund_of = c.payment_id;
  if (p.suspense == 0 || p.clearing == 0 || p.call.payment_id == 0) return answer(rp, case_result::refund_not_possible);
  entry.direction = 0;
  if (!p.credential) return refund_call(self, desk, c, f, p, entry, rp);
  self->request(p.channel, std::chrono::milliseconds(desk.refund_timeout_ms), credential_request{p.call.ctx})
      .then(
          [self, desk, c, f, p, entry, rp](credential_reply& r) mutable {
            if (!r.ok) return answer(rp, case_result::provider_unavailable);
            p.call.credential = r.token;
            refund_call(self, desk, c, f, p, entry, rp);
          },
          [rp](caf::error&) mutable { answer(rp, case_result::provider_unavailable); });
}

// A book whose journal entry was lost (kassad stopped in between) left the case open with its
// correcting transfer in the ledger: accepting it would journal "nothing booked".
void accept(caf::event_based_actor* self, const case_desk& desk, ks::recon_resolution entry, reply_to rp) {
  if (!desk.ledger) return journal(self, desk, entry, rp);
  self->request(desk.ledger, caf::infinite, lookup_transfers_request{{}, {lp::case_transfer_id(entry.case_id)}})
      .then(
          [self, desk, entry, rp](transfers_reply& r) mutable {
            if (r.status != outcome::ok)
              return answer(rp, recon_case_resolved{{ks::errc::io, "the ledger did not answer a lookup: retry"},
                                                    case_result::ok, {}});
            if (!r.transfers.empty()) return answer(rp, case_result::case_booked);
            journal(self, desk, entry, rp);
          },
          [rp](caf::error& e) mutable {
            answer(rp, recon_case_resolved{{ks::errc::io, "the ledger did not answer: " + to_string(e)},
                                           case_result::ok, {}});
          });
}

} // namespace

void resolve(caf::event_based_actor* self, case_desk desk, resolve_case r, caf::response_promise promise) {
  reply_to rp{std::move(promise), {}};
  ks::recon_case c;
  bool found = false;
  if (ks::error err = desk.store->get_case(r.id, c, found); !err.ok())
    return answer(rp, recon_case_resolved{err, case_result::ok, {}});
  if (!found) return answer(rp, case_result::case_not_found);
  const case_result checked = lp::check_request(r.action, r.direction, r.amount, !r.note.empty());
  if (checked != case_result::ok) return answer(rp, checked);
  if (c.status != uint8_t(ks::case_status::open)) return answer(rp, case_result::case_resolved);
  if (!r.ledgers.empty() && std::find(r.ledgers.begin(), r.ledgers.end(), c.ledger) == r.ledgers.end())
    return answer(rp, case_result::ledger_forbidden);
  ks::recon_resolution entry;
  entry.case_id = r.id;
  entry.resolved_ns = desk.now_ns;
  entry.client_id = r.client_id;
  entry.action = r.action;
  entry.direction = r.direction;
  entry.amount = r.amount;
  copy_text(entry.by, r.by);
  copy_text(entry.note, r.note);
  if (lp::case_action(r.action) == lp::case_action::accept) return accept(self, desk, entry, rp);
  if (lp::case_action(r.action) == lp::case_action::refund) return refund(self, desk, c, entry, rp);
  book(self, desk, c, entry, rp);
}

void settle_late_refund(caf::event_based_actor* self, case_desk desk, const ks::recon_case& c, u128 amount,
                        std::function<void(const recon_case_resolved&)> done) {
  reply_to rp{{}, std::move(done)};
  if (c.status != uint8_t(ks::case_status::open)) return answer(rp, case_result::case_resolved);
  lp::case_facts f;
  ks::error err;
  if (!facts_of(desk, c, f, err)) return answer(rp, recon_case_resolved{err, case_result::ok, {}});
  const std::string provider(c.provider, strnlen(c.provider, sizeof c.provider));
  f.payment_id = c.payment_id;
  f.provider_known = desk.clearing_account && desk.suspense_account && desk.ledger && desk.payments;
  if (amount == 0) return answer(rp, case_result::amount_invalid);
  const case_result planned = lp::plan_refund(f, amount);
  if (planned != case_result::ok) return answer(rp, planned);
  ledger::transfer t{};
  const case_result booking = lp::plan_refund_booking(f, desk.suspense_account(f.account_id, f.ledger),
                                                      desk.clearing_account(provider, f.account_id, f.ledger), amount, t);
  if (booking != case_result::ok) return answer(rp, booking);
  ks::recon_resolution entry;
  entry.case_id = c.id;
  entry.resolved_ns = desk.now_ns;
  entry.action = uint8_t(lp::case_action::refund);
  entry.amount = amount;
  copy_text(entry.by, resolved_by_kassa);
  copy_text(entry.note, "the provider's statement shows the compensating refund of " + to_string_u128(amount) +
                            " that the payment core had given up on");
  book_and_journal(self, desk, context_of(c, f, entry), t, entry, rp);
}

recon_cases_reply list_cases(const ks::recon_store& store, const recon_cases_request& r) {
  recon_cases_reply reply;
  reply.error = store.load_cases(r.open_only, r.id_min, r.limit, reply.cases);
  reply.resolutions.resize(reply.cases.size());
  for (size_t i = 0; i < reply.cases.size() && reply.error.ok(); ++i) {
    bool found = false;
    if (reply.cases[i].status == uint8_t(ks::case_status::resolved))
      reply.error = store.get_resolution(reply.cases[i].id, reply.resolutions[i], found);
  }
  return reply;
}

} // namespace kassa::actors
