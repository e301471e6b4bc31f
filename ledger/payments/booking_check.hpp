#pragma once
// What a payment row must have booked in the ledger, and how that compares with what the
// ledger holds: the rows <-> ledger side of reconciliation (docs/payments.md,
// "Reconciliation"). The row's own journal says which bookings it made: the payment core
// notes a booking step ("book_topup", "hold", ...) only after the ledger accepted it, and
// writes the note with the row, so every noted booking must be in the ledger under its
// deterministic id (ids.hpp), with the noted amount. Pure: no I/O.
#include <cstdint>
#include <map>
#include <vector>

#include "ledger/payments/gl.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger::payments {

// One journal entry of the row, as far as bookings go.
struct booking_note {
  char step[step_bytes] = {};
  u128 amount = 0;
};

struct expected_booking {
  leg l = leg::hold;
  u128 amount = 0;
};

struct booking_expectation {
  std::vector<expected_booking> bookings; // by leg, each leg once (the last note's amount)
  // The row says money reached its payee (completed, amount_captured > 0) but no note books it
  // (a failed write may lose notes, never the booking): one of these legs must be there.
  std::vector<leg> main_any;
  u128 amount_captured = 0;
  // Legs to look up that the row must not hold: a failed row that still holds one moved money.
  std::vector<leg> forbidden;
};

// The bookings `notes` (the row's journal) name for a row of kind `k` with fee `fee` in state
// `state`, and what else to look for. A note of amount 0 moved nothing and expects nothing.
booking_expectation expected_bookings(kind k, order_state state, u128 fee, u128 amount_captured,
                                      const std::vector<booking_note>& notes);

// What the ledger holds of one leg over every attempt: a leg booked under two attempts
// (money booked twice) holds the sum.
struct found_booking {
  u128 id = 0;     // the lowest attempt found
  u128 amount = 0; // summed over the attempts found; u128_max when the sum overflows
  uint32_t attempts = 0;
};
// Adds the booking `id` of `amount` the ledger holds to `found`, under its leg.
void record_booking(std::map<leg, found_booking>& found, u128 id, u128 amount);
// The ids to look up for `e`: every attempt of the legs it expects, of main_any and of the
// forbidden ones (a failed row's booking under any attempt moved money).
std::vector<u128> booking_ids(uint64_t sequence, const booking_expectation& e);

enum class booking_finding_kind : uint8_t {
  missing_booking = 1,     // a noted booking (or any main booking of a completed row) is absent
  amount_mismatch = 2,     // the booking is there with another amount (or twice)
  row_status_mismatch = 3, // a failed row holds a booking that moved money
};

struct booking_finding {
  booking_finding_kind kind = booking_finding_kind::missing_booking;
  u128 transfer_id = 0; // the booking's id (attempt 0 when absent); 0: no leg is known
  u128 expected = 0;    // what the row says
  u128 found = 0;       // what the ledger holds; 0 when absent
};

// Compares the expectation of the row numbered `sequence` with what the ledger holds.
std::vector<booking_finding> compare_bookings(uint64_t sequence, const booking_expectation& e,
                                              const std::map<leg, found_booking>& found);

} // namespace kassa::ledger::payments
