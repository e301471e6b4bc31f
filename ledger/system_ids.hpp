#pragma once
// Ids kassa reserves for its own accounts and transfers: inter-shard clearing accounts, the
// sub-accounts of split hot accounts, and the transfers kassa itself writes (the legs of a
// transfer across shards, their posts and voids, sweeps). They live in one corner of the id
// space that clients may not use: the high 64 bits are 0xFFFF_FFFF_FFFF_FF<kind>, kind 1..6.
// A client event that names such an id is refused (see docs/ledger.md and docs/sharding.md).
#include <cstdint>

#include "ledger/id_map.hpp"
#include "primitives/reserved_ids.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger::system_ids {

enum class kind : uint8_t {
  none = 0,
  clearing = 1, // an inter-shard clearing account
  sub = 2,      // a sub-account of a split hot account
  transfer = 3, // a transfer kassa writes itself
  payment = 4,  // a transfer the payment core writes (ledger/payments/ids.hpp)
  payment_account = 5, // an account of the payment core's chart (ledger/payments/ids.hpp)
  clearing_two_phase = 6, // an inter-shard clearing account of pending transfers (since saga
                          // log format 3): its legs carry the client's flags, `pending` too
};

constexpr uint64_t high_base = reserved_ids_high_base;

// True for every id in the reserved corner (including ids of kinds not yet in use), and
// false for u128_max, which is refused on its own terms.
inline constexpr bool reserved(u128 id) { return id_reserved(id); }

inline constexpr kind kind_of(u128 id) {
  if (!reserved(id)) return kind::none;
  const uint64_t k = u128_hi(id) & 0xFF;
  return k >= 1 && k <= 6 ? static_cast<kind>(k) : kind::none;
}

// The code stamped on accounts kassa creates for itself.
constexpr uint16_t clearing_code = 0xC1EA;
constexpr uint16_t sub_code = 0x5AB0;

// The account in shard `from` through which money leaves for, or arrives from, shard `to`,
// one per ledger. Its balance in `from` mirrors (negated) the balance of clearing(to, from)
// in `to`: that is the cross-shard invariant `kassa verify` checks.
// A pending transfer across shards has its legs go through a pair of their own
// (`two_phase`), so that they are told apart from the pending legs a kassa before saga log
// format 2 wrote for plain transfers.
inline constexpr u128 clearing(uint32_t from, uint32_t to, uint32_t ledger, bool two_phase = false) {
  return make_u128(high_base | static_cast<uint64_t>(two_phase ? kind::clearing_two_phase : kind::clearing),
                   (uint64_t{from & 0xFFFF} << 48) | (uint64_t{to & 0xFFFF} << 32) | ledger);
}
inline constexpr bool is_clearing(u128 id) {
  return kind_of(id) == kind::clearing || kind_of(id) == kind::clearing_two_phase;
}
inline constexpr bool is_two_phase_clearing(u128 id) { return kind_of(id) == kind::clearing_two_phase; }
inline constexpr uint32_t clearing_from(u128 id) { return static_cast<uint32_t>(u128_lo(id) >> 48); }
inline constexpr uint32_t clearing_to(u128 id) {
  return static_cast<uint32_t>((u128_lo(id) >> 32) & 0xFFFF);
}
inline constexpr uint32_t clearing_ledger(u128 id) { return static_cast<uint32_t>(u128_lo(id)); }

// Sub-account `index` (0..255) of hot account `parent`. The sub-account's row names its parent
// in user_data_128 and its index in user_data_32, so the split survives a restart.
inline u128 sub(u128 parent, uint32_t index) {
  const uint64_t h = id_hash(parent) & 0x00FF'FFFF'FFFF'FFFFull;
  return make_u128(high_base | static_cast<uint64_t>(kind::sub), (h << 8) | (index & 0xFF));
}

// A transfer id kassa writes itself; `sequence` must never repeat (the directory draws it
// from a clock that only moves forward).
inline constexpr u128 transfer(uint64_t sequence) {
  return make_u128(high_base | static_cast<uint64_t>(kind::transfer), sequence);
}

} // namespace kassa::ledger::system_ids
