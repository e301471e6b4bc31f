#pragma once
// The ids the payment core derives from a payment row's sequence, so that every retry of a
// step (after a timeout, a crash, a restart) names the same ledger transfer and the same
// provider payment, and the ledger or the provider answers "already done" instead of doing
// it twice. The chart of accounts lives in kassa's reserved id corner (system_ids.hpp).
#include <cstdint>

#include "ledger/system_ids.hpp"
#include "ledger/u128.hpp"

namespace kassa::ledger::payments {

namespace sid = ledger::system_ids;

// --- provider payment ids ------------------------------------------------------------------
// "KASS" in the high bits, then what the call is; the low 64 bits are the row's sequence.
constexpr uint64_t payment_id_tag = 0x4B41'5353'0000'0000ull;
enum class call_role : uint8_t {
  main = 1,         // the row's own provider call (charge, payout or refund)
  compensation = 2, // the refund that gives back what the main call took (policy or duplicate)
};
inline constexpr u128 payment_id(uint64_t sequence, call_role role = call_role::main) {
  return make_u128(payment_id_tag | static_cast<uint64_t>(role), sequence);
}
inline constexpr bool is_payment_id(u128 id) {
  return (u128_hi(id) & ~0xFFull) == payment_id_tag && (u128_hi(id) & 0xFF) >= 1 && (u128_hi(id) & 0xFF) <= 2;
}
inline constexpr uint64_t payment_sequence(u128 id) { return u128_lo(id); }
inline constexpr call_role payment_role(u128 id) { return static_cast<call_role>(u128_hi(id) & 0xFF); }

// --- ledger transfer ids -------------------------------------------------------------------
// One per booking leg of a row: sequence << 8 | leg.
enum class leg : uint8_t {
  hold = 1,          // pending: the payer's funds (withdrawal, pay from balance, refund)
  hold_fee = 2,      // pending: the fee, linked with hold
  post = 3,          // posts hold
  post_fee = 4,
  void_hold = 5,     // voids hold
  void_fee = 6,
  book = 7,          // the main movement (topup credit, transfer, capture, refund)
  fee = 8,           // the fee
  forward = 9,       // pay from balance: from the payer's shard's escrow on to the merchant
  suspense = 10,     // provider money parked in suspense (mismatch, partial hold, duplicate)
  suspense_out = 11, // suspense given back (refunded to the provider)
  late = 12,         // a late success booked after the payment had failed
  compensation = 13, // money booked back after a compensating provider refund
};
// A booking's id: the row's sequence, the attempt and the leg. A booking across shards that
// the ledger undid (a leg refused, or its shard's commit failed) uses its id up: the ledger
// answers `id_already_failed` to it for good, so the payment core books it again under the
// next attempt (at most transfer_attempts). Attempts are tried in order, so a flow resumed
// after a restart finds the one that landed.
inline constexpr uint32_t transfer_attempts = 16;
inline constexpr u128 transfer_id(uint64_t sequence, leg l, uint32_t attempt = 0) {
  return make_u128(sid::high_base | static_cast<uint64_t>(sid::kind::payment),
                   (sequence << 8) | (uint64_t{attempt & 0xF} << 4) | static_cast<uint64_t>(l));
}
inline constexpr uint64_t transfer_sequence(u128 id) { return u128_lo(id) >> 8; }
inline constexpr uint32_t transfer_attempt(u128 id) { return uint32_t(u128_lo(id) >> 4) & 0xF; }
inline constexpr leg transfer_leg(u128 id) { return static_cast<leg>(u128_lo(id) & 0xF); }
static_assert(static_cast<uint8_t>(leg::compensation) < 16, "a leg fits in 4 bits");

// --- the chart of accounts -------------------------------------------------------------------
enum class role : uint8_t {
  provider_clearing = 1, // what a provider owes kassa (debit) or kassa owes it (credit)
  fees = 2,              // fee income
  suspense = 3,          // money whose owner is not settled yet: a reconciliation case is open
  escrow = 4,            // funds of pay-from-balance items between hold and capture
};
// One account per role, provider (index in the YAML, 0 for roles without one), shard and
// ledger: every booking of a payment can then stay within the payer's shard.
inline constexpr u128 account_id(role r, uint32_t provider, uint32_t shard, uint32_t ledger) {
  return make_u128(sid::high_base | static_cast<uint64_t>(sid::kind::payment_account),
                   (uint64_t{static_cast<uint8_t>(r)} << 56) | (uint64_t{provider & 0xFF} << 48) |
                       (uint64_t{shard & 0xFFFF} << 32) | ledger);
}
inline constexpr role account_role(u128 id) { return static_cast<role>(u128_lo(id) >> 56); }
inline constexpr uint32_t account_provider(u128 id) { return static_cast<uint32_t>((u128_lo(id) >> 48) & 0xFF); }
inline constexpr uint32_t account_shard(u128 id) { return static_cast<uint32_t>((u128_lo(id) >> 32) & 0xFFFF); }
inline constexpr uint32_t account_ledger(u128 id) { return static_cast<uint32_t>(u128_lo(id)); }
constexpr uint16_t account_code = 0xFA10; // the code stamped on the chart's accounts

} // namespace kassa::ledger::payments
