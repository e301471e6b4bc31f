#pragma once
// The payment core's records: what a client sends (payment_command), what it gets back
// (payment_reply) and what it reads (order). Fixed-size, little-endian, copied as they are in
// memory: this layout is the wire format of submit_payments and lookup_orders
// (docs/protocol.md) and the meaning of every field is in docs/payments.md.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "primitives/u128.hpp"

namespace kassa::ledger::payments {

// What a command asks for. Numbers are part of the protocol and never change.
enum class kind : uint16_t {
  none = 0,
  create_order = 1, // a business order payable to a merchant account, paid by pay commands
  pay = 2,          // one payment item of an order: from the payer's balance or a provider
  topup = 3,        // money in from a provider to the user's account
  withdrawal = 4,   // money out of the user's account through a provider
  refund = 5,       // part or all of an order's captured items back to where they came from
  transfer = 6,     // between two users' accounts, within their limits
};
constexpr uint16_t kind_max = 6;

// Where a pay command takes money from.
enum class source : uint16_t {
  none = 0,
  balance = 1,  // the payer's account in the ledger
  provider = 2, // a charge through a channel (provider)
};

// The state of an order (create_order, topup, withdrawal, transfer) or of a refund. The
// transitions are listed in docs/payments.md. Numbers never change.
#define KASSA_ORDER_STATES(X)                                                                \
  X(none, 0)                                                                                 \
  X(created, 1)            /* an order waiting for its pay commands */                       \
  X(processing, 2)         /* a flow is running: provider call, hold, booking */             \
  X(unknown, 3)            /* the provider's outcome is unknown; kassa queries it */         \
  X(partially_paid, 4)     /* some items of an order are captured, not all */                \
  X(completed, 5)          /* paid in full / credited / paid out / transferred / refunded */ \
  X(failed, 6)             /* nothing moved, or what moved was compensated */                \
  X(partially_refunded, 7) /* an order with refunds below its captured amount */             \
  X(refunded, 8)           /* an order refunded in full */                                   \
  X(in_review, 9)          /* money is in suspense and a reconciliation case is open */

#define KASSA_PAYMENT_ENUM_ITEM(name, value) name = value,
enum class order_state : uint16_t { KASSA_ORDER_STATES(KASSA_PAYMENT_ENUM_ITEM) };
#undef KASSA_PAYMENT_ENUM_ITEM
constexpr uint16_t order_state_max = 9;

// Result codes of submit_payments, one per command. Ordered like the ledger's: when a command
// breaks several rules the smallest code is returned. Numbers never change; new codes are
// appended.
#define KASSA_PAYMENT_RESULTS(X)                                                             \
  X(ok)                              /* done: the state says how far */                      \
  X(in_progress)                     /* accepted; the outcome is not known yet: query it */  \
  X(exists)                          /* this key was seen with these fields: its result */   \
  X(exists_with_different_fields)    /* this key was seen with other fields */               \
  X(reserved_field)                                                                          \
  X(key_must_not_be_zero)                                                                    \
  X(key_must_not_be_int_max)                                                                 \
  X(kind_invalid)                                                                            \
  X(source_invalid)                                                                          \
  X(order_id_must_not_be_zero)                                                               \
  X(order_id_must_not_be_int_max)                                                            \
  X(account_id_must_not_be_zero)                                                             \
  X(counterparty_id_must_not_be_zero)                                                        \
  X(accounts_must_be_different)                                                              \
  X(amount_must_not_be_zero)                                                                 \
  X(ledger_not_served)                                                                       \
  X(provider_unknown)                                                                        \
  X(order_exists)                                                                            \
  X(order_not_found)                                                                         \
  X(order_kind_invalid)              /* pay on a topup, refund of a withdrawal, ... */       \
  X(order_not_payable)               /* paid already, failed, refunded, ... */               \
  X(order_not_refundable)            /* nothing captured yet, or in review */                \
  X(account_not_found)                                                                       \
  X(account_ledger_mismatch)                                                                 \
  X(amount_exceeds_order_remaining)                                                          \
  X(refund_exceeds_captured)                                                                 \
  X(limit_exceeded)                  /* a per-payment or per-day limit from the YAML */      \
  X(insufficient_funds)                                                                      \
  X(no_channel_available)            /* every route is down or none matches */              \
  X(provider_declined)                                                                       \
  X(provider_failed)                 /* the provider refused the call itself */              \
  X(amount_overflow)                                                                         \
  X(partial_payment_refunded)        /* the provider took less; policy: refunded it */       \
  X(amount_mismatch)                 /* the provider confirmed another amount: in review */  \
  X(busy)                            /* too many orders in flight: nothing done; retry */    \
  X(store_unavailable)               /* a commit failed: nothing done; retry */              \
  X(ledger_refused)                  /* the ledger refused a booking (see the order) */      \
  X(shutting_down)                                                                           \
  X(outcome_unknown)                 /* the provider never told: in review, case opened */   \
  X(ledger_forbidden)                /* pay/refund: the order's ledger is not the client's */ \
  X(funds_not_held)                  /* money out with no hold before it: nothing sent */

#define KASSA_PAYMENT_ENUM_ITEM(name) name,
enum class payment_result : uint32_t { KASSA_PAYMENT_RESULTS(KASSA_PAYMENT_ENUM_ITEM) };
#undef KASSA_PAYMENT_ENUM_ITEM
constexpr uint32_t payment_result_max = uint32_t(payment_result::funds_not_held); // the last code

std::string_view name(kind k);
std::string_view name(order_state s);
std::string_view name(payment_result r);
bool kind_known(uint16_t k);

// Provider names are up to 16 bytes, zero-padded; all zero = let the routing rules choose.
constexpr size_t provider_name_bytes = 16;

// One command of submit_payments (128 bytes). Which fields each kind uses is in
// docs/payments.md; unused fields must be zero.
struct payment_command {
  u128 key;             // the client's idempotency key: non-zero, unique per command
  u128 order_id;        // the order this command creates (create_order, topup, withdrawal,
                        // transfer) or acts on (pay, refund); client-chosen like all ids
  u128 account_id;      // the user: payee of topup, payer of pay/withdrawal/transfer,
                        // merchant of create_order
  u128 counterparty_id; // transfer: the receiving account; otherwise zero
  u128 amount;          // minor units; create_order: the order's total
  uint32_t ledger;      // currency (create_order, topup, withdrawal, transfer); else zero
  uint16_t kind;        // payments::kind
  uint16_t source;      // pay: payments::source; otherwise zero
  char provider[provider_name_bytes]; // a channel to use, or zero to route by the rules
  uint64_t user_data_64;
  uint64_t reserved[2];
};
static_assert(sizeof(payment_command) == 128);
static_assert(offsetof(payment_command, ledger) == 80);
static_assert(offsetof(payment_command, provider) == 88);
static_assert(offsetof(payment_command, user_data_64) == 104);
static_assert(std::is_trivially_copyable_v<payment_command>);

// The answer to one command (64 bytes), one per command, in order.
struct payment_reply {
  uint32_t index;   // of the command in the request
  uint32_t result;  // payment_result
  uint16_t state;   // order_state of the order (or refund) after the command
  uint16_t reserved;
  uint32_t reserved2;
  u128 order_id;    // the order the command created or acted on
  u128 amount;      // what the command moved: captured, credited, paid out, refunded
  u128 fee;         // the fee it charged
};
static_assert(sizeof(payment_reply) == 64);
static_assert(std::is_trivially_copyable_v<payment_reply>);

// An order as lookup_orders returns it (256 bytes). Every command that moves money has such a
// row: create_order, topup, withdrawal and transfer under their order_id; pay and refund under
// their key, with parent_id naming the order.
struct order {
  u128 id;
  u128 key;                  // the idempotency key of the command that created it
  u128 account_id;           // see payment_command
  u128 counterparty_id;
  u128 amount;               // requested total
  u128 amount_captured;      // what reached the payee (sum of captured items)
  u128 amount_refunded;      // completed refunds
  u128 amount_refund_pending; // refunds in flight: captured - refunded - pending >= 0 always
  u128 fee;
  u128 trace_id;             // the context of the command that created it
  u128 provider_amount;      // what the provider confirmed (differs on a mismatch)
  u128 parent_id;            // pay and refund rows: the order they belong to; else zero
  uint64_t created_ns;
  uint64_t updated_ns;
  uint64_t sequence;         // kassa's number of the order: names its ledger transfers
  uint32_t ledger;
  uint16_t kind;
  uint16_t state;
  uint32_t result;           // the last payment_result that was not ok / in_progress
  uint16_t items;            // pay items and refunds recorded under this order
  uint16_t source;           // pay and refund rows: payments::source
  char provider[provider_name_bytes]; // the channel used, if any
  uint64_t user_data_64;
};
static_assert(sizeof(order) == 256);
static_assert(offsetof(order, created_ns) == 192 && offsetof(order, provider) == 232);
static_assert(std::is_trivially_copyable_v<order>);

// One pay item or refund of an order as lookup_order_items returns it (256 bytes): what a
// person asks of an order's items, the provider's id for it included.
struct order_item {
  u128 id;                    // the item's row (the key of the pay or refund command)
  u128 order_id;              // the order it belongs to
  u128 account_id;            // pay: the payer; refund: who gets the money back
  u128 refund_of;             // refund: the pay item it gives back; pay: zero
  u128 amount;                // what the command asked
  u128 amount_moved;          // pay: captured; refund: given back (what the provider confirmed)
  u128 amount_refunded;       // pay: its completed refunds; refund: zero
  u128 amount_refund_pending; // pay: its refunds in flight; refund: zero
  u128 fee;                   // the fee charged: zero for a failed item
  u128 provider_payment_id;   // the id the provider knows it by; zero for a balance item
  char provider[provider_name_bytes]; // the channel used, if any
  uint64_t sequence;          // the row's sequence: order of the items
  uint32_t ledger;
  uint16_t kind;              // pay or refund
  uint16_t state;             // order_state
  uint32_t result;            // the last payment_result that was not ok / in_progress
  uint16_t source;            // payments::source
  uint8_t reserved[58];
};
static_assert(sizeof(order_item) == 256);
static_assert(offsetof(order_item, provider) == 160 && offsetof(order_item, sequence) == 176);
static_assert(offsetof(order_item, ledger) == 184 && offsetof(order_item, result) == 192);
static_assert(std::is_trivially_copyable_v<order_item>);

// The fee a row has charged, as every reader is shown it: none for a failed payment (rows
// written before failures cleared their fee still hold the fee asked at the start).
inline u128 fee_charged(const order& o) { return o.state == uint16_t(order_state::failed) ? 0 : o.fee; }

// An item row as order_item; `provider_payment_id` is the id its provider call was made under.
order_item item_of(const order& row, u128 provider_payment_id);

} // namespace kassa::ledger::payments
