#pragma once
// The corner of the 128-bit id space kassa keeps for its own accounts and transfers: every id
// whose high 64 bits are 0xFFFF_FFFF_FFFF_FFxx, but u128_max (refused on its own terms).
// config/ refuses such an id in the YAML, the ledger in a client's event; the kinds that
// live in the corner are ledger/system_ids.hpp.
#include <cstdint>

#include "primitives/u128.hpp"

namespace kassa {

constexpr uint64_t reserved_ids_high_base = 0xFFFF'FFFF'FFFF'FF00ull;

inline constexpr bool id_reserved(u128 id) {
  return (u128_hi(id) & ~0xFFull) == reserved_ids_high_base && id != u128_max;
}

} // namespace kassa
