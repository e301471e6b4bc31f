// Resolving a reconciliation case, the pure part: which requests are well-formed (in the order
// of the result codes), the correcting transfer a `book` makes, and how the general ledger posts it.
#include <catch2/catch.hpp>

#include <cstring>

#include "ledger/payments/case_resolution.hpp"
#include "ledger/payments/gl.hpp"

using namespace kassa;
using namespace kassa::ledger::payments;

namespace {

constexpr uint8_t accept = uint8_t(case_action::accept), book = uint8_t(case_action::book);
constexpr uint8_t from = uint8_t(case_direction::from_suspense), to = uint8_t(case_direction::to_suspense);

case_facts parked_topup() {
  case_facts f;
  f.id = 7;
  f.parked = true;
  f.row_kind = kind::topup;
  f.account_id = 5;
  f.ledger = 840;
  f.code = uint16_t(kind::topup);
  f.business_id = 900;
  f.internal_amount = 1000;
  f.provider_amount = 1007;
  return f;
}

} // namespace

TEST_CASE("a resolution request is checked in the order of its result codes", "[ledger][cases]") {
  CHECK(check_request(accept, 0, 0, true) == case_result::ok);
  CHECK(check_request(book, 0, 0, true) == case_result::ok);
  CHECK(check_request(book, to, 5, true) == case_result::ok);
  CHECK(check_request(0, 9, 5, false) == case_result::action_unknown);
  CHECK(check_request(4, 0, 0, true) == case_result::action_unknown);
  CHECK(check_request(book, 9, 0, false) == case_result::note_missing);
  CHECK(check_request(book, 3, 5, true) == case_result::direction_invalid);
  CHECK(check_request(accept, from, 5, true) == case_result::direction_invalid);
  CHECK(check_request(book, 0, 5, true) == case_result::direction_invalid);
  CHECK(check_request(accept, 0, 5, true) == case_result::amount_invalid);
  CHECK(check_request(book, from, 0, true) == case_result::amount_invalid);
  CHECK(name(case_result::booking_differs) == "booking_differs");
  CHECK(uint32_t(case_result::ledger_refused) == 12);
  CHECK(uint32_t(case_result::case_booked) == 13);
}

TEST_CASE("book from a parked case moves all it parked: into the account for money that came in, out of it for "
          "money that went out", "[ledger][cases]") {
  case_facts f = parked_topup();
  case_direction d = case_direction::none;
  u128 amount = 0;
  ledger::transfer t{};
  REQUIRE(plan_booking(f, 99, d, amount, t) == case_result::ok);
  CHECK(d == case_direction::from_suspense);
  CHECK(amount == 1007);
  CHECK(t.id == case_transfer_id(7));
  CHECK(t.debit_account_id == 99);
  CHECK(t.credit_account_id == 5);
  CHECK(t.amount == 1007);
  CHECK(t.ledger == 840);
  CHECK(t.user_data_128 == 900);
  CHECK(t.user_data_64 == 7);
  CHECK(t.flags == 0);

  f.row_kind = kind::withdrawal;
  d = case_direction::none;
  amount = 0;
  REQUIRE(plan_booking(f, 99, d, amount, t) == case_result::ok);
  CHECK(d == case_direction::to_suspense);
  CHECK(t.debit_account_id == 5);
  CHECK(t.credit_account_id == 99);

  // given explicitly: as given, whatever the case
  d = case_direction::from_suspense;
  amount = 3;
  REQUIRE(plan_booking(f, 99, d, amount, t) == case_result::ok);
  CHECK(t.amount == 3);
  CHECK(t.credit_account_id == 5);
}

TEST_CASE("book needs the direction and amount of a case that does not tell them, and an account", "[ledger][cases]") {
  case_facts f = parked_topup();
  f.parked = false; // e.g. an amount_mismatch from a statement
  case_direction d = case_direction::none;
  u128 amount = 0;
  ledger::transfer t{};
  CHECK(plan_booking(f, 99, d, amount, t) == case_result::booking_unknown);
  f = parked_topup();
  f.row_kind = kind::none; // no payment row
  CHECK(plan_booking(f, 99, d, amount, t) == case_result::booking_unknown);
  f.account_id = 0;
  d = case_direction::to_suspense;
  amount = 5;
  CHECK(plan_booking(f, 99, d, amount, t) == case_result::account_unknown);
}

TEST_CASE("a case's correcting transfer id is one per case and no row's booking id", "[ledger][cases]") {
  CHECK(case_transfer_id(1) != case_transfer_id(2));
  CHECK(case_transfer_id(1) == case_transfer_id(1));
  for (leg l : {leg::hold, leg::book, leg::suspense, leg::suspense_out, leg::late, leg::compensation})
    CHECK(transfer_id(1, l) != case_transfer_id(1));
  CHECK(transfer_leg(case_transfer_id(42)) == leg::case_correction);
}

TEST_CASE("a book resolution posts between GL suspense and customer funds the way its transfer moved the money; "
          "an accept posts nothing", "[ledger][cases][gl]") {
  const gl_case_rule* out = gl_rule_for_case(book, from);
  REQUIRE(out != nullptr);
  // out of suspense to the user, as book_suspense_in posts it
  CHECK(out->debit == gl_account::suspense);
  CHECK(out->credit == gl_account::customer_funds);
  CHECK(out->step == "case_to_account");
  char step[step_bytes] = {};
  std::memcpy(step, "book_suspense_in", step_bytes);
  const gl_rule* in = gl_rule_for(step, uint16_t(kind::topup));
  REQUIRE(in != nullptr);
  CHECK((in->debit == out->debit && in->credit == out->credit));
  const gl_case_rule* back = gl_rule_for_case(book, to);
  REQUIRE(back != nullptr);
  CHECK(back->debit == gl_account::customer_funds);
  CHECK(back->credit == gl_account::suspense);
  CHECK(back->step == "case_to_suspense");
  CHECK(gl_rule_for_case(accept, 0) == nullptr);
  CHECK(gl_rule_for_case(book, 0) == nullptr);
  CHECK(gl_rule_for_case(book, 3) == nullptr);
  CHECK(gl_rule_for_case(0, from) == nullptr);
}

namespace {
constexpr uint8_t refund = uint8_t(case_action::refund);

case_facts refundable() {
  case_facts f = parked_topup();
  f.payment_id = 0xABC;
  f.provider_known = true;
  return f;
}
} // namespace

TEST_CASE("a refund request takes no direction and may leave the amount to the case", "[ledger][cases]") {
  CHECK(check_request(refund, 0, 0, true) == case_result::ok);
  CHECK(check_request(refund, 0, 5, true) == case_result::ok);
  CHECK(check_request(refund, 0, 0, false) == case_result::note_missing);
  CHECK(check_request(refund, from, 0, true) == case_result::direction_invalid);
  CHECK(check_request(4, 0, 0, true) == case_result::action_unknown);
  CHECK(name(case_action::refund) == "refund");
  // appended after case_booked: numbers never change
  CHECK(uint32_t(case_result::refund_not_possible) == 14);
  CHECK(uint32_t(case_result::refund_exceeds_parked) == 15);
  CHECK(uint32_t(case_result::provider_declined) == 16);
  CHECK(uint32_t(case_result::refund_outcome_unknown) == 17);
  CHECK(uint32_t(case_result::provider_unavailable) == 18);
  CHECK(name(case_result::refund_outcome_unknown) == "refund_outcome_unknown");
}

TEST_CASE("a refund gives back what a provider brought in and kassa parked, never more", "[ledger][cases]") {
  case_facts f = refundable();
  u128 amount = 0;
  REQUIRE(plan_refund(f, amount) == case_result::ok);
  CHECK(amount == 1007); // all that was parked
  amount = 500;
  REQUIRE(plan_refund(f, amount) == case_result::ok);
  CHECK(amount == 500);
  amount = 1008;
  CHECK(plan_refund(f, amount) == case_result::refund_exceeds_parked);
  f.row_kind = kind::pay;
  amount = 0;
  CHECK(plan_refund(f, amount) == case_result::ok);
  for (kind k : {kind::withdrawal, kind::refund, kind::transfer, kind::none}) {
    f = refundable();
    f.row_kind = k; // money that went out (or never came in through a provider)
    amount = 0;
    CHECK(plan_refund(f, amount) == case_result::refund_not_possible);
  }
  f = refundable();
  f.parked = false; // a statement's case: kassa holds nothing in suspense for it
  CHECK(plan_refund(f, amount) == case_result::refund_not_possible);
  f = refundable();
  f.payment_id = 0;
  CHECK(plan_refund(f, amount) == case_result::refund_not_possible);
  f = refundable();
  f.provider_known = false;
  CHECK(plan_refund(f, amount) == case_result::refund_not_possible);
  f = refundable();
  f.provider_amount = 0; // an unknown outcome's case: nothing was parked
  CHECK(plan_refund(f, amount) == case_result::refund_not_possible);
}

TEST_CASE("a refund books what the provider confirmed, at most what was asked; anything else leaves the case open",
          "[ledger][cases]") {
  u128 booked = 9;
  CHECK(refund_outcome(1, false, 1007, 1007, booked) == case_result::ok);
  CHECK(booked == 1007);
  CHECK(refund_outcome(2, false, 600, 1007, booked) == case_result::ok); // partial
  CHECK(booked == 600);
  CHECK(refund_outcome(1, false, 2000, 1007, booked) == case_result::ok); // more than asked: as asked
  CHECK(booked == 1007);
  CHECK(refund_outcome(1, false, 0, 1007, booked) == case_result::refund_outcome_unknown);
  CHECK(refund_outcome(3, false, 0, 1007, booked) == case_result::provider_declined);
  for (uint8_t s : {uint8_t(4), uint8_t(5), uint8_t(6), uint8_t(0)})
    CHECK(refund_outcome(s, false, 1007, 1007, booked) == case_result::refund_outcome_unknown);
  CHECK(refund_outcome(7, true, 0, 1007, booked) == case_result::provider_unavailable);
  CHECK(refund_outcome(8, true, 0, 1007, booked) == case_result::provider_unavailable);
  CHECK(refund_outcome(8, false, 0, 1007, booked) == case_result::refund_outcome_unknown);
  CHECK(booked == 0);

  ledger::transfer t{};
  const case_facts f = refundable();
  REQUIRE(plan_refund_booking(f, 99, 77, 1007, t) == case_result::ok);
  CHECK(t.id == case_transfer_id(7));
  CHECK(t.debit_account_id == 99);  // out of suspense
  CHECK(t.credit_account_id == 77); // to the provider's clearing account
  CHECK(t.amount == 1007);
  CHECK(t.ledger == 840);
  CHECK(t.user_data_64 == 7);
  CHECK(plan_refund_booking(f, 0, 77, 1007, t) == case_result::refund_not_possible);
  CHECK(plan_refund_booking(f, 99, 0, 1007, t) == case_result::refund_not_possible);
}

TEST_CASE("a refund resolution posts out of GL suspense against what the provider owes, like book_suspense_out",
          "[ledger][cases][gl]") {
  const gl_case_rule* r = gl_rule_for_case(refund, 0);
  REQUIRE(r != nullptr);
  CHECK(r->debit == gl_account::suspense);              // the liability shrinks
  CHECK(r->credit == gl_account::provider_receivable);  // the provider owes kassa less
  CHECK(r->step == "case_refund");
  char step[step_bytes] = {};
  std::memcpy(step, "book_suspense_ou", step_bytes);
  const gl_rule* out = gl_rule_for(step, uint16_t(kind::topup));
  REQUIRE(out != nullptr);
  CHECK((out->debit == r->debit && out->credit == r->credit));
  CHECK(gl_rule_for_case(refund, from) == nullptr);
}
