#include "ledger/payments/booking_check.hpp"

#include <algorithm>
#include <string_view>

namespace kassa::ledger::payments {

namespace {

// A booking step of the journal and the legs it booked with the noted amount. A fee step
// books the fee leg (withdrawal: the fee hold's post); "hold" of a withdrawal also holds the fee.
struct step_legs {
  std::string_view step;
  leg first;
  leg second; // == first: one leg only
  bool main;  // the booking that takes money to its payee
};

constexpr step_legs step_table[] = {
    {"hold", leg::hold, leg::hold, false},
    {"book_topup", leg::book, leg::book, true},
    {"book_transfer", leg::book, leg::book, true},
    {"book_withdrawal", leg::post, leg::post, true},
    {"book_capture_prv", leg::book, leg::book, true},
    {"book_capture_bal", leg::post, leg::forward, true},
    {"book_refund_prv", leg::post, leg::post, true},
    {"book_refund_bal", leg::book, leg::book, true},
    {"book_suspense", leg::suspense, leg::suspense, false},
    {"book_suspense_out", leg::suspense_out, leg::suspense_out, false},
    {"book_late", leg::late, leg::late, true},
};

void expect(std::vector<expected_booking>& out, leg l, u128 amount) {
  for (expected_booking& b : out)
    if (b.l == l) {
      b.amount = amount;
      return;
    }
  out.push_back({l, amount});
}

} // namespace

booking_expectation expected_bookings(kind k, order_state state, u128 fee, u128 amount_captured,
                                      const std::vector<booking_note>& notes) {
  booking_expectation e;
  bool main_noted = false;
  for (const booking_note& n : notes) {
    if (n.amount == 0) continue;
    if (step_is(n.step, "book_fee")) {
      expect(e.bookings, k == kind::withdrawal ? leg::post_fee : leg::fee, n.amount);
      continue;
    }
    for (const step_legs& s : step_table) {
      if (!step_is(n.step, s.step)) continue;
      expect(e.bookings, s.first, n.amount);
      if (s.second != s.first) expect(e.bookings, s.second, n.amount);
      if (s.first == leg::hold && k == kind::withdrawal && fee != 0) expect(e.bookings, leg::hold_fee, fee);
      main_noted |= s.main;
      break;
    }
  }
  const bool moves_money = k == kind::topup || k == kind::withdrawal || k == kind::transfer || k == kind::pay ||
                           k == kind::refund;
  if (moves_money && state == order_state::completed && amount_captured != 0 && !main_noted) {
    e.main_any = {leg::book, leg::post, leg::late};
    e.amount_captured = amount_captured;
  }
  if (moves_money && state == order_state::failed) {
    for (leg l : {leg::book, leg::post, leg::forward, leg::fee, leg::post_fee}) {
      const bool noted = std::any_of(e.bookings.begin(), e.bookings.end(),
                                     [l](const expected_booking& b) { return b.l == l; });
      if (!noted) e.forbidden.push_back(l);
    }
  }
  return e;
}

void record_booking(std::map<leg, found_booking>& found, u128 id, u128 amount) {
  found_booking& f = found[transfer_leg(id)];
  if (f.attempts == 0 || transfer_attempt(id) < transfer_attempt(f.id)) f.id = id;
  if (!add_checked(f.amount, amount, f.amount)) f.amount = u128_max;
  ++f.attempts;
}

std::vector<u128> booking_ids(uint64_t sequence, const booking_expectation& e) {
  std::vector<u128> ids;
  auto every_attempt = [&](leg l) {
    for (uint32_t a = 0; a < transfer_attempts; ++a) ids.push_back(transfer_id(sequence, l, a));
  };
  for (const expected_booking& b : e.bookings) every_attempt(b.l);
  for (leg l : e.main_any) every_attempt(l);
  for (leg l : e.forbidden) every_attempt(l);
  return ids;
}

std::vector<booking_finding> compare_bookings(uint64_t sequence, const booking_expectation& e,
                                              const std::map<leg, found_booking>& found) {
  std::vector<booking_finding> out;
  for (const expected_booking& b : e.bookings) {
    auto it = found.find(b.l);
    if (it == found.end())
      out.push_back({booking_finding_kind::missing_booking, transfer_id(sequence, b.l), b.amount, 0});
    else if (it->second.amount != b.amount)
      out.push_back({booking_finding_kind::amount_mismatch, it->second.id, b.amount, it->second.amount});
  }
  const bool main_found =
      std::any_of(e.main_any.begin(), e.main_any.end(), [&found](leg l) { return found.count(l) != 0; });
  if (!e.main_any.empty() && !main_found)
    out.push_back({booking_finding_kind::missing_booking, transfer_id(sequence, e.main_any[0]), e.amount_captured, 0});
  for (leg l : e.forbidden) {
    auto it = found.find(l);
    if (it != found.end())
      out.push_back({booking_finding_kind::row_status_mismatch, it->second.id, 0, it->second.amount});
  }
  return out;
}

} // namespace kassa::ledger::payments
