#include "ledger/payments/case_resolution.hpp"

namespace kassa::ledger::payments {

std::string_view name(case_action a) {
  switch (a) {
    case case_action::none: return "none";
    case case_action::accept: return "accept";
    case case_action::book: return "book";
    case case_action::refund: return "refund";
  }
  return "unknown";
}

std::string_view name(case_direction d) {
  switch (d) {
    case case_direction::none: return "none";
    case case_direction::from_suspense: return "from_suspense";
    case case_direction::to_suspense: return "to_suspense";
  }
  return "unknown";
}

std::string_view name(case_result r) {
  switch (r) {
#define KASSA_CASE_NAME(n, v)                                                                \
  case case_result::n:                                                                       \
    return #n;
    KASSA_CASE_RESULTS(KASSA_CASE_NAME)
#undef KASSA_CASE_NAME
  }
  return "unknown";
}

case_result check_request(uint8_t action, uint8_t direction, u128 amount, bool note_given) {
  const auto a = static_cast<case_action>(action);
  if (a != case_action::accept && a != case_action::book && a != case_action::refund)
    return case_result::action_unknown;
  if (!note_given) return case_result::note_missing;
  const auto d = static_cast<case_direction>(direction);
  if (a == case_action::refund) return d == case_direction::none ? case_result::ok : case_result::direction_invalid;
  if (d != case_direction::none && (a != case_action::book || (d != case_direction::from_suspense &&
                                                               d != case_direction::to_suspense)))
    return case_result::direction_invalid;
  if (amount != 0 && a != case_action::book) return case_result::amount_invalid;
  if (d == case_direction::none && amount != 0) return case_result::direction_invalid;
  if (d != case_direction::none && amount == 0) return case_result::amount_invalid;
  return case_result::ok;
}

namespace {

// A case's one correcting transfer (a book's or a refund's): its id, the case's ledger, code
// and order, and the leg that marks it as no row's booking.
transfer correcting_transfer(const case_facts& f, u128 debit, u128 credit, u128 amount) {
  transfer t{};
  t.id = case_transfer_id(f.id);
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount = amount;
  t.user_data_128 = f.business_id;
  t.user_data_64 = f.id;
  t.user_data_32 = static_cast<uint32_t>(leg::case_correction);
  t.ledger = f.ledger;
  t.code = f.code;
  return t;
}

} // namespace

case_result plan_booking(const case_facts& f, u128 suspense_account, case_direction& direction, u128& amount,
                         transfer& t) {
  if (direction == case_direction::none) {
    const bool came_in = f.row_kind == kind::topup || f.row_kind == kind::pay;
    const bool went_out = f.row_kind == kind::withdrawal || f.row_kind == kind::refund;
    if (!f.parked || f.provider_amount == 0 || (!came_in && !went_out)) return case_result::booking_unknown;
    direction = came_in ? case_direction::from_suspense : case_direction::to_suspense;
    amount = f.provider_amount;
  }
  if (f.account_id == 0 || f.ledger == 0) return case_result::account_unknown;
  const bool out_of_suspense = direction == case_direction::from_suspense;
  t = correcting_transfer(f, out_of_suspense ? suspense_account : f.account_id,
                          out_of_suspense ? f.account_id : suspense_account, amount);
  return case_result::ok;
}

case_result plan_refund(const case_facts& f, u128& amount) {
  const bool came_in = f.row_kind == kind::topup || f.row_kind == kind::pay;
  if (!f.parked || !came_in || f.provider_amount == 0 || f.payment_id == 0 || !f.provider_known ||
      f.account_id == 0 || f.ledger == 0)
    return case_result::refund_not_possible;
  if (amount > f.provider_amount) return case_result::refund_exceeds_parked;
  if (amount == 0) amount = f.provider_amount;
  return case_result::ok;
}

case_result refund_outcome(uint8_t status, bool not_sent, u128 confirmed, u128 asked, u128& booked) {
  booked = 0;
  switch (status) {
    case 1: // succeeded
    case 2: // partial
      if (confirmed == 0) return case_result::refund_outcome_unknown;
      booked = confirmed < asked ? confirmed : asked;
      return case_result::ok;
    case 3: return case_result::provider_declined;
    case 7: return case_result::provider_unavailable; // rejected: never sent
    case 8: return not_sent ? case_result::provider_unavailable : case_result::refund_outcome_unknown;
    default: return case_result::refund_outcome_unknown; // pending, not_found, unknown
  }
}

case_result plan_refund_booking(const case_facts& f, u128 suspense_account, u128 clearing_account, u128 amount,
                                transfer& t) {
  if (suspense_account == 0 || clearing_account == 0 || amount == 0 || f.ledger == 0)
    return case_result::refund_not_possible;
  t = correcting_transfer(f, suspense_account, clearing_account, amount);
  return case_result::ok;
}

} // namespace kassa::ledger::payments
