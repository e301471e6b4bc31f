// What a payment row must have booked, from its journal (ledger/payments/booking_check.hpp):
// each booking step names its legs and amounts; a completed row with no booking note needs one
// of its main legs; a failed row must hold none that moved money. Tagged [payments].
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ledger/payments/booking_check.hpp"

using namespace kassa;
using namespace kassa::ledger::payments;

namespace {

booking_note note(const std::string& step, u128 amount) {
  booking_note n;
  std::memcpy(n.step, step.data(), std::min(step.size(), sizeof n.step)); // cut like the journal
  n.amount = amount;
  return n;
}

std::map<leg, u128> legs_of(const booking_expectation& e) {
  std::map<leg, u128> out;
  for (const auto& b : e.bookings) out[b.l] = b.amount;
  return out;
}

} // namespace

TEST_CASE("a row's booking notes name the legs and amounts it booked", "[payments]") {
  const auto payout = expected_bookings(kind::withdrawal, order_state::completed, 5, 500,
                                        {note("hold", 500), note("book_withdrawal", 500), note("book_fee", 5)});
  CHECK(legs_of(payout) == std::map<leg, u128>{{leg::hold, 500}, {leg::hold_fee, 5}, {leg::post, 500}, {leg::post_fee, 5}});
  CHECK(payout.main_any.empty());
  CHECK(payout.forbidden.empty());

  const auto capture = expected_bookings(kind::pay, order_state::completed, 0, 70, {note("hold", 70), note("book_capture_bal", 70)});
  CHECK(legs_of(capture) == std::map<leg, u128>{{leg::hold, 70}, {leg::post, 70}, {leg::forward, 70}});

  // "book_suspense_out" is stored cut to 16 bytes and still names its leg
  const auto back = expected_bookings(kind::topup, order_state::failed, 0, 0,
                                      {note("book_suspense", 9), note("book_suspense_out", 9), note("book_topup", 0)});
  CHECK(legs_of(back) == std::map<leg, u128>{{leg::suspense, 9}, {leg::suspense_out, 9}});
  CHECK(back.forbidden == std::vector<leg>{leg::book, leg::post, leg::forward, leg::fee, leg::post_fee});
}

TEST_CASE("the ledger's bookings against a row's: absent, another amount, twice, or held by a failed row", "[payments]") {
  const uint64_t seq = 42;
  const auto topup = expected_bookings(kind::topup, order_state::completed, 2, 100, {note("book_topup", 100), note("book_fee", 2)});
  std::map<leg, found_booking> found;
  record_booking(found, transfer_id(seq, leg::book), 100);
  record_booking(found, transfer_id(seq, leg::fee), 2);
  CHECK(compare_bookings(seq, topup, found).empty());

  record_booking(found, transfer_id(seq, leg::book, 1), 100); // booked a second time
  auto f = compare_bookings(seq, topup, found);
  REQUIRE(f.size() == 1);
  CHECK(f[0].kind == booking_finding_kind::amount_mismatch);
  CHECK(f[0].transfer_id == transfer_id(seq, leg::book));
  CHECK(f[0].found == 200);

  found.erase(leg::book);
  f = compare_bookings(seq, topup, found);
  REQUIRE(f.size() == 1);
  CHECK(f[0].kind == booking_finding_kind::missing_booking);
  CHECK(f[0].expected == 100);

  const auto unnoted = expected_bookings(kind::transfer, order_state::completed, 0, 300, {note("accepted", 300)});
  CHECK(compare_bookings(seq, unnoted, {}).size() == 1);
  std::map<leg, found_booking> booked;
  record_booking(booked, transfer_id(seq, leg::book, 3), 300);
  CHECK(compare_bookings(seq, unnoted, booked).empty());

  const auto failed = expected_bookings(kind::transfer, order_state::failed, 0, 0, {note("failed", 0)});
  CHECK(compare_bookings(seq, failed, {}).empty());
  std::map<leg, found_booking> kept;
  record_booking(kept, transfer_id(seq, leg::book), 300);
  f = compare_bookings(seq, failed, kept);
  REQUIRE(f.size() == 1);
  CHECK(f[0].kind == booking_finding_kind::row_status_mismatch);
  CHECK(f[0].found == 300);

  // A failed row's booking under a later attempt moved money all the same.
  std::map<leg, found_booking> later;
  record_booking(later, transfer_id(seq, leg::post, 3), 300);
  f = compare_bookings(seq, failed, later);
  REQUIRE(f.size() == 1);
  CHECK(f[0].kind == booking_finding_kind::row_status_mismatch);
  CHECK(f[0].transfer_id == transfer_id(seq, leg::post, 3));
  const auto failed_ids = booking_ids(seq, failed);
  CHECK(failed_ids.size() == failed.forbidden.size() * transfer_attempts);
  CHECK(std::count(failed_ids.begin(), failed_ids.end(), transfer_id(seq, leg::post, 3)) == 1);

  const auto ids = booking_ids(seq, topup);
  CHECK(ids.size() == 2 * transfer_attempts);
}

TEST_CASE("the payments id range holds every booking id; a case's correcting transfer is no row's booking",
          "[payments]") {
  for (leg l : {leg::hold, leg::book, leg::compensation})
    for (uint64_t seq : {uint64_t{1}, payment_sequence_max}) {
      CHECK(transfer_id(seq, l, 15) >= transfer_id_min);
      CHECK(transfer_id(seq, l, 15) < transfer_id_end);
      CHECK(is_row_booking(transfer_id(seq, l, 15)));
    }
  CHECK_FALSE(is_row_booking(transfer_id(7, leg::case_correction)));
  CHECK_FALSE(is_row_booking(transfer_id_end));
  CHECK_FALSE(is_row_booking(transfer_id_min - 1));
}
