#pragma once
// Result codes of create_accounts and create_transfers. Each enum is ordered: the order of
// the enumerators *is* the validation precedence, so when an event breaks several rules the
// code returned is the smallest one. docs/ledger.md lists them with their meaning; the
// numeric values are part of the wire protocol and never change.
#include <cstdint>
#include <string_view>

namespace kassa::ledger {

#define KASSA_ACCOUNT_RESULTS(X)                                                             \
  X(ok)                                                                                      \
  X(linked_event_failed)                                                                     \
  X(linked_event_chain_open)                                                                 \
  X(timestamp_must_be_zero)                                                                  \
  X(reserved_field)                                                                          \
  X(reserved_flag)                                                                           \
  X(id_must_not_be_zero)                                                                     \
  X(id_must_not_be_int_max)                                                                  \
  X(exists_with_different_flags)                                                             \
  X(exists_with_different_user_data_128)                                                     \
  X(exists_with_different_user_data_64)                                                      \
  X(exists_with_different_user_data_32)                                                      \
  X(exists_with_different_ledger)                                                            \
  X(exists_with_different_code)                                                              \
  X(exists)                                                                                  \
  X(flags_are_mutually_exclusive)                                                            \
  X(debits_pending_must_be_zero)                                                             \
  X(debits_posted_must_be_zero)                                                              \
  X(credits_pending_must_be_zero)                                                            \
  X(credits_posted_must_be_zero)                                                             \
  X(ledger_must_not_be_zero)                                                                 \
  X(code_must_not_be_zero)                                                                   \
  X(id_must_not_be_reserved)                                                                 \
  X(not_supported_across_shards)

#define KASSA_TRANSFER_RESULTS(X)                                                            \
  X(ok)                                                                                      \
  X(linked_event_failed)                                                                     \
  X(linked_event_chain_open)                                                                 \
  X(timestamp_must_be_zero)                                                                  \
  X(reserved_flag)                                                                           \
  X(id_must_not_be_zero)                                                                     \
  X(id_must_not_be_int_max)                                                                  \
  X(exists_with_different_flags)                                                             \
  X(exists_with_different_pending_id)                                                        \
  X(exists_with_different_timeout)                                                           \
  X(exists_with_different_debit_account_id)                                                  \
  X(exists_with_different_credit_account_id)                                                 \
  X(exists_with_different_amount)                                                            \
  X(exists_with_different_user_data_128)                                                     \
  X(exists_with_different_user_data_64)                                                      \
  X(exists_with_different_user_data_32)                                                      \
  X(exists_with_different_ledger)                                                            \
  X(exists_with_different_code)                                                              \
  X(exists)                                                                                  \
  X(flags_are_mutually_exclusive)                                                            \
  X(debit_account_id_must_not_be_zero)                                                       \
  X(debit_account_id_must_not_be_int_max)                                                    \
  X(credit_account_id_must_not_be_zero)                                                      \
  X(credit_account_id_must_not_be_int_max)                                                   \
  X(accounts_must_be_different)                                                              \
  X(pending_id_must_be_zero)                                                                 \
  X(pending_id_must_not_be_zero)                                                             \
  X(pending_id_must_not_be_int_max)                                                          \
  X(pending_id_must_be_different)                                                            \
  X(timeout_reserved_for_pending_transfer)                                                   \
  X(closing_transfer_must_be_pending)                                                        \
  X(amount_must_not_be_zero)                                                                 \
  X(ledger_must_not_be_zero)                                                                 \
  X(code_must_not_be_zero)                                                                   \
  X(debit_account_not_found)                                                                 \
  X(credit_account_not_found)                                                                \
  X(accounts_must_have_the_same_ledger)                                                      \
  X(transfer_must_have_the_same_ledger_as_accounts)                                          \
  X(pending_transfer_not_found)                                                              \
  X(pending_transfer_not_pending)                                                            \
  X(pending_transfer_has_different_debit_account_id)                                         \
  X(pending_transfer_has_different_credit_account_id)                                        \
  X(pending_transfer_has_different_ledger)                                                   \
  X(pending_transfer_has_different_code)                                                     \
  X(exceeds_pending_transfer_amount)                                                         \
  X(pending_transfer_has_different_amount)                                                   \
  X(pending_transfer_already_posted)                                                         \
  X(pending_transfer_already_voided)                                                         \
  X(pending_transfer_expired)                                                                \
  X(debit_account_already_closed)                                                            \
  X(credit_account_already_closed)                                                           \
  X(overflows_debits_pending)                                                                \
  X(overflows_credits_pending)                                                               \
  X(overflows_debits_posted)                                                                 \
  X(overflows_credits_posted)                                                                \
  X(overflows_debits)                                                                        \
  X(overflows_credits)                                                                       \
  X(overflows_timeout)                                                                       \
  X(exceeds_credits)                                                                         \
  X(exceeds_debits)                                                                          \
  X(id_must_not_be_reserved)                                                                 \
  X(accounts_must_not_be_reserved)                                                           \
  X(id_already_failed)                                                                       \
  X(not_supported_across_shards)

#define KASSA_ENUM_ITEM(name) name,
enum class account_result : uint32_t { KASSA_ACCOUNT_RESULTS(KASSA_ENUM_ITEM) };
enum class transfer_result : uint32_t { KASSA_TRANSFER_RESULTS(KASSA_ENUM_ITEM) };
#undef KASSA_ENUM_ITEM

constexpr uint32_t account_result_count = static_cast<uint32_t>(account_result::not_supported_across_shards) + 1;
constexpr uint32_t transfer_result_count = static_cast<uint32_t>(transfer_result::not_supported_across_shards) + 1;

std::string_view name(account_result r);
std::string_view name(transfer_result r);
// Inverse of name(); false when the text names no code.
bool parse_account_result(std::string_view text, account_result& out);
bool parse_transfer_result(std::string_view text, transfer_result& out);

// The outcome of one event of a batch, as TigerBeetle reports it: only failures are listed
// on the wire, but in memory every event gets one.
struct create_account_outcome {
  uint32_t index;
  account_result result;
};
struct create_transfer_outcome {
  uint32_t index;
  transfer_result result;
};

} // namespace kassa::ledger
