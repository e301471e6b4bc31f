#pragma once
// Accounts and transfers, modelled on TigerBeetle's: fixed 128-byte records whose layout is
// the wire and disk format (little-endian hosts only; see docs/ledger.md).
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "primitives/u128.hpp"

namespace kassa::ledger {

enum account_flags : uint16_t {
  account_linked = 1u << 0,
  account_debits_must_not_exceed_credits = 1u << 1,
  account_credits_must_not_exceed_debits = 1u << 2,
  account_history = 1u << 3,
  account_closed = 1u << 4,
  account_flags_known = (1u << 5) - 1,
};

enum transfer_flags : uint16_t {
  transfer_linked = 1u << 0,
  transfer_pending = 1u << 1,
  transfer_post_pending = 1u << 2,
  transfer_void_pending = 1u << 3,
  transfer_balancing_debit = 1u << 4,
  transfer_balancing_credit = 1u << 5,
  transfer_closing_debit = 1u << 6,
  transfer_closing_credit = 1u << 7,
  transfer_flags_known = (1u << 8) - 1,
};

struct account {
  u128 id;
  u128 debits_pending;
  u128 debits_posted;
  u128 credits_pending;
  u128 credits_posted;
  u128 user_data_128;
  uint64_t user_data_64;
  uint32_t user_data_32;
  uint32_t reserved;
  uint32_t ledger;
  uint16_t code;
  uint16_t flags;
  uint64_t timestamp; // assigned by kassa on creation; must be zero on input
};

struct transfer {
  u128 id;
  u128 debit_account_id;
  u128 credit_account_id;
  u128 amount;
  u128 pending_id; // for post/void: the pending transfer this one resolves
  u128 user_data_128;
  uint64_t user_data_64;
  uint32_t user_data_32;
  uint32_t timeout; // seconds, pending transfers only; 0 = never expires
  uint32_t ledger;
  uint16_t code;
  uint16_t flags;
  uint64_t timestamp; // assigned by kassa; must be zero on input
};

static_assert(sizeof(account) == 128, "account is a 128-byte record");
static_assert(sizeof(transfer) == 128, "transfer is a 128-byte record");
static_assert(offsetof(account, timestamp) == 120);
static_assert(offsetof(transfer, timestamp) == 120);
static_assert(std::is_trivially_copyable_v<account>);
static_assert(std::is_trivially_copyable_v<transfer>);

// The state of a pending transfer. Stored beside the transfer so that a second post or void
// of the same pending id is refused.
enum class pending_status : uint8_t {
  none = 0, // not a pending transfer
  pending = 1,
  posted = 2,
  voided = 3,
  expired = 4,
};

inline bool has(uint16_t flags, uint16_t flag) { return (flags & flag) != 0; }

// A balance snapshot of an account with the `history` flag, taken after each transfer.
struct account_balance {
  u128 debits_pending;
  u128 debits_posted;
  u128 credits_pending;
  u128 credits_posted;
  uint64_t timestamp;
  uint64_t reserved;
};
static_assert(sizeof(account_balance) == 80);

constexpr uint64_t ns_per_s = 1'000'000'000ull;

} // namespace kassa::ledger
