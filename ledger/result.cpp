#include "ledger/result.hpp"

#include <array>

namespace kassa::ledger {
namespace {

#define KASSA_NAME_ITEM(name) #name,
constexpr std::array<std::string_view, account_result_count> account_names{
    KASSA_ACCOUNT_RESULTS(KASSA_NAME_ITEM)};
constexpr std::array<std::string_view, transfer_result_count> transfer_names{
    KASSA_TRANSFER_RESULTS(KASSA_NAME_ITEM)};
#undef KASSA_NAME_ITEM

template <class Result, size_t N>
bool parse(const std::array<std::string_view, N>& names, std::string_view text, Result& out) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == text) {
      out = static_cast<Result>(i);
      return true;
    }
  }
  return false;
}

} // namespace

std::string_view name(account_result r) {
  auto i = static_cast<uint32_t>(r);
  return i < account_names.size() ? account_names[i] : std::string_view{"unknown"};
}

std::string_view name(transfer_result r) {
  auto i = static_cast<uint32_t>(r);
  return i < transfer_names.size() ? transfer_names[i] : std::string_view{"unknown"};
}

bool parse_account_result(std::string_view text, account_result& out) {
  return parse(account_names, text, out);
}

bool parse_transfer_result(std::string_view text, transfer_result& out) {
  return parse(transfer_names, text, out);
}

} // namespace kassa::ledger
