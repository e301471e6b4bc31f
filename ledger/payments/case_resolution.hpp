#pragma once
// Resolving a reconciliation case (docs/accounting.md, "Resolving cases"): which requests are
// well-formed, the correcting transfer a `book` makes between the case's account and the
// suspense account of its ledger, and what a `refund` asks the provider to give back and books
// once it confirmed. Pure: the reconciler looks up the case and its row, asks here, and calls
// and books what comes back.
#include <cstdint>
#include <string_view>

#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/types.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger::payments {

// How an operator settled a case. Numbers are kept in the reconciliation store and on the
// wire; new actions take new numbers.
enum class case_action : uint8_t {
  none = 0,
  accept = 1, // closed, nothing booked
  book = 2,   // closed with a correcting transfer between the case's account and suspense
  refund = 3, // closed once the provider gave the parked money back to the payer, booked out of suspense
};
// Which way a `book` moves money: out of suspense to the account, or from the account into it.
enum class case_direction : uint8_t { none = 0, from_suspense = 1, to_suspense = 2 };

// The answer to a resolution, in validation order: the smallest failing code wins. Numbers
// are on the wire (docs/protocol.md) and never change.
#define KASSA_CASE_RESULTS(X)                                                                 \
  X(ok, 0)                                                                                    \
  X(case_not_found, 1)      /* no case has this id */                                         \
  X(action_unknown, 2)      /* not accept, book or refund */                                  \
  X(note_missing, 3)        /* every resolution says why */                                   \
  X(direction_invalid, 4)   /* unknown, given with accept or refund, or missing beside a book's amount */ \
  X(amount_invalid, 5)      /* given with accept, or 0 beside a direction */                  \
  X(case_resolved, 6)       /* resolved before: nothing is done again */                      \
  X(booking_unknown, 7)     /* the case does not tell direction and amount: give both */      \
  X(account_unknown, 8)     /* the case names no payment row with an account */               \
  X(ledger_forbidden, 9)    /* the client may not use the case's ledger */                    \
  X(insufficient_funds, 10) /* the account cannot cover a booking to suspense */              \
  X(booking_differs, 11)    /* the case's correcting transfer exists with other fields */     \
  X(ledger_refused, 12)     /* the ledger refused the correcting transfer otherwise */        \
  X(case_booked, 13)        /* accept, but a booking of the case landed: resolve it as booked */ \
  X(refund_not_possible, 14) /* not money a provider brought in and kassa parked (a suspense  \
                               case of a topup or pay), or no provider, payment id or amount */ \
  X(refund_exceeds_parked, 15) /* the amount asked is more than the case parked */            \
  X(provider_declined, 16)  /* the provider refused the refund; nothing moved */              \
  X(refund_outcome_unknown, 17) /* the provider did not say it refunded (timeout, pending,    \
                                   error): resolve again later, the same refund is asked */   \
  X(provider_unavailable, 18) /* the refund was not sent (channel down, busy, no credential) */

#define KASSA_CASE_ENUM_ITEM(name, value) name = value,
enum class case_result : uint32_t { KASSA_CASE_RESULTS(KASSA_CASE_ENUM_ITEM) };
#undef KASSA_CASE_ENUM_ITEM

std::string_view name(case_action a);
std::string_view name(case_direction d);
std::string_view name(case_result r);

// The id of a case's one correcting transfer: the case id under a leg no payment row books
// with, so asking again (a retry after a lost reply) answers `exists`, never a second booking.
inline constexpr u128 case_transfer_id(uint64_t case_id) { return transfer_id(case_id, leg::case_correction); }

// What a request asks, before the case is looked at: ok, or the first of action_unknown,
// note_missing, direction_invalid, amount_invalid. A refund takes no direction; its amount may
// be 0 (all that was parked).
case_result check_request(uint8_t action, uint8_t direction, u128 amount, bool note_given);

// The case as a booking needs it.
struct case_facts {
  uint64_t id = 0;
  bool parked = false;  // the payment core parked the money in suspense (a suspense case)
  kind row_kind = kind::none; // of the payment row; none when the case has none
  u128 account_id = 0;  // the row's account (a refund's: its order's); 0 when none
  uint32_t ledger = 0;
  uint16_t code = 0;    // stamped on the transfer: the row's kind
  u128 business_id = 0; // the row's order
  u128 internal_amount = 0, provider_amount = 0;
  u128 payment_id = 0;        // the provider payment id of the row's main call (the case's)
  bool provider_known = false; // the case's provider has a channel
};

// The correcting transfer of a `book`: `direction` and `amount` as asked, or, both left 0, from
// a case the payment core parked in suspense: all of what it parked (provider_amount), into the
// account for money that came in (topup, pay), out of it for money that went out (withdrawal,
// refund). Any other case needs both given. ok fills `t`, `direction` and `amount`.
case_result plan_booking(const case_facts& f, u128 suspense_account, case_direction& direction, u128& amount,
                         transfer& t);

// What a `refund` asks the provider to give back: `amount` as asked (0: all the case parked,
// provider_amount), never more than parked. Only money a provider brought in (topup, pay) that
// the payment core parked in suspense, with its payment id and a known provider and account.
case_result plan_refund(const case_facts& f, u128& amount);

// What the provider's answer to the refund means. `status` is the channel's call_status
// (actors/channel.hpp: 1 succeeded, 2 partial, 3 declined, 4 pending, 5 not_found, 6 unknown,
// 7 rejected, 8 failed); `not_sent`: the channel proved the call never reached the provider.
// ok: `booked` is what leaves suspense: what the provider confirmed, never more than `asked`
// (a provider that gives back more than asked is booked as asked: its statement line then
// shows the difference as an amount_mismatch case).
case_result refund_outcome(uint8_t status, bool not_sent, u128 confirmed, u128 asked, u128& booked);

// The booking of a confirmed refund: `amount` out of suspense to the provider's clearing
// account, under the case's correcting transfer id.
case_result plan_refund_booking(const case_facts& f, u128 suspense_account, u128 clearing_account, u128 amount,
                                transfer& t);

} // namespace kassa::ledger::payments
