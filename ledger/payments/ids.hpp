#pragma once
// The ids the payment core derives from a payment row's sequence, so that every retry of a
// step (after a timeout, a crash, a restart) names the same ledger transfer and the same
// provider payment, and the ledger or the provider answers "already done" instead of doing
// it twice. The chart of accounts lives in kassa's reserved id corner (system_ids.hpp).
#include <cstdint>
#include <vector>

#include "ledger/system_ids.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger::payments {

namespace sid = ledger::system_ids;

// --- provider payment ids ------------------------------------------------------------------
// What kassa sends a provider as a call's idempotency key. It must be unique across every
// installation and every restore that talks to the provider: a provider answers a repeated id
// with the first call's outcome, so an id sent twice for two payments books money that never
// moved. Since payments store format 2 (docs/storage.md) an id is
//   high 64 bits  the issuer: the installation id's high 32 bits, then the 32-bit nonce of the
//                 data directory's generation (random, drawn at creation and at each restore)
//   low 64 bits   the call role (8 bits), then the row's sequence (56 bits)
// Rows written before format 2 keep their legacy ids: "KASS" and the role in the high 64
// bits, the sequence in the low 64 bits.
enum class call_role : uint8_t {
  main = 1,         // the row's own provider call (charge, payout or refund)
  compensation = 2, // the refund that gives back what the main call took (policy or duplicate)
  // An operator's refund of money a reconciliation case parked in suspense: the sequence field
  // holds the CASE id, not a row's, under the newest generation's issuer (case_refund_id).
  case_refund = 3,
};
constexpr uint64_t payment_sequence_max = (uint64_t{1} << 56) - 1; // also transfer_id's bound
constexpr uint64_t legacy_payment_id_tag = 0x4B41'5353'0000'0000ull;

inline constexpr bool call_role_known(uint64_t r) { return r >= 1 && r <= 3; }
inline constexpr u128 legacy_payment_id(uint64_t sequence, call_role role = call_role::main) {
  return make_u128(legacy_payment_id_tag | static_cast<uint64_t>(role), sequence);
}
inline constexpr bool is_legacy_payment_id(u128 id) {
  return (u128_hi(id) & ~0xFFull) == legacy_payment_id_tag && call_role_known(u128_hi(id) & 0xFF);
}
// An installation id's high 32 bits are never zero nor "KASS": an issuer never looks legacy.
inline constexpr bool installation_id_valid(uint64_t installation_id) {
  return (installation_id >> 32) != 0 && (installation_id >> 32) != (legacy_payment_id_tag >> 32);
}
inline constexpr uint64_t issuer_of(uint64_t installation_id, uint32_t nonce) {
  return (installation_id & 0xFFFF'FFFF'0000'0000ull) | nonce;
}
inline constexpr u128 payment_id(uint64_t issuer, uint64_t sequence, call_role role = call_role::main) {
  return make_u128(issuer, (uint64_t{static_cast<uint8_t>(role)} << 56) | (sequence & payment_sequence_max));
}

// The parts of an id of either format; decode_payment_id is false for an id of neither.
struct payment_id_parts {
  bool legacy = false;
  uint64_t issuer = 0; // 0 for a legacy id
  uint64_t sequence = 0;
  call_role role = call_role::main;
};
bool decode_payment_id(u128 id, payment_id_parts& out);

// A restore also moves the row sequence on by this much: the original may have made rows after
// the backup, and a copy of the ledger taken after the payments store's holds their bookings,
// whose transfer ids (transfer_id) carry the sequence only. 2^40 rows between a backup and its
// restore are beyond reach; 2^16 restores fit below payment_sequence_max.
constexpr uint64_t restore_sequence_gap = uint64_t{1} << 40;

// One generation of a data directory: 1 when it was created (or upgraded to format 2), one
// more at each restore. The rows from sequence_first on, up to the next generation's first,
// were sent under its issuer.
struct id_generation {
  uint32_t number = 0;
  uint32_t nonce = 0;
  uint64_t sequence_first = 0;
};

// A data directory's provider ids: its installation id and its generations, oldest first.
// Without generations every id is legacy (a store of format 1).
class provider_ids {
public:
  provider_ids() = default;
  provider_ids(uint64_t installation_id, std::vector<id_generation> generations);

  uint64_t installation_id() const { return installation_id_; }
  const std::vector<id_generation>& generations() const { return generations_; }
  // The issuer of the newest generation (0 without one).
  uint64_t issuer() const;

  // The id of the call `role` of the row numbered `sequence`, under the generation the row
  // was created in (legacy for rows older than every generation).
  u128 id(uint64_t sequence, call_role role = call_role::main) const;
  // The id of the refund that gives back what reconciliation case `case_id` parked: under the
  // newest generation's issuer, so a restored copy (whose case ids start again where its backup
  // stood) never sends an id the original sent. 0 without a generation (a legacy store).
  u128 case_refund_id(uint64_t case_id) const;
  // True when `id` is one this data directory sends, with the row's sequence and the role:
  // an id of another installation or generation, or of a sequence its generation did not
  // create, is not. A case_refund id gives the CASE id in `sequence`, and only under the
  // newest generation's issuer (a refund sent before a restore is money this copy never asked
  // for: it becomes a case).
  bool decode(u128 id, uint64_t& sequence, call_role& role) const;

private:
  const id_generation* generation_of(uint64_t sequence) const;
  uint64_t installation_id_ = 0;
  std::vector<id_generation> generations_;
};

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
  // A reconciliation case's correcting transfer (case_resolution.hpp): the sequence field holds
  // the case id, not a row's; no row books under this leg.
  case_correction = 14,
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
static_assert(static_cast<uint8_t>(leg::case_correction) < 16, "a leg fits in 4 bits");
// Every id transfer_id can make lies in [transfer_id_min, transfer_id_end): the ledger's
// payments id range, which reconciliation scans for bookings no row made.
inline constexpr u128 transfer_id_min = make_u128(sid::high_base | static_cast<uint64_t>(sid::kind::payment), 0);
inline constexpr u128 transfer_id_end = make_u128(sid::high_base | (static_cast<uint64_t>(sid::kind::payment) + 1), 0);
// True for an id of the range that names a row's booking: a case's correcting transfer carries
// a case id where the sequence would be.
inline constexpr bool is_row_booking(u128 id) {
  return id >= transfer_id_min && id < transfer_id_end && transfer_leg(id) != leg::case_correction;
}

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
