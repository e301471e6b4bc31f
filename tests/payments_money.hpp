#pragma once
// The payment core's money check against a provider, shared by the end-to-end tests
// (tests/runtime/payments_e2e_test.cpp) and tests/reliability/payments_check.cpp: a
// provider's clearing account in kassa's books must hold exactly what the provider's own
// statement says moved (charges in, payouts and refunds out, docs/payments.md).
#include <functional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "ledger/types.hpp"
#include "primitives/u128.hpp"

namespace kassa::test {

// What kassa's books say the provider owes: debits - credits of its clearing account.
inline __int128 clearing_net(const ledger::account& a) {
  return static_cast<__int128>(a.debits_posted) - static_cast<__int128>(a.credits_posted);
}

// What the provider's statement (GET /p/<provider>/v1/statement, read a page of 10,000 at a
// time through `get`) says moved: charges - payouts - refunds. Throws std::runtime_error on
// an entry it cannot read.
inline __int128 statement_net(const std::function<nlohmann::json(const std::string& target)>& get,
                              const std::string& provider) {
  constexpr int pages_max = 10'000; // 100M entries: far beyond any test
  __int128 net = 0;
  uint64_t after = 0;
  for (int page = 0; page < pages_max; ++page) {
    const nlohmann::json j = get("/p/" + provider + "/v1/statement?after=" + std::to_string(after) + "&limit=10000");
    const auto& entries = j.at("entries");
    if (entries.empty()) return net;
    for (const auto& e : entries) {
      u128 amount = 0;
      if (!parse_u128(e.at("amount").get<std::string>(), amount))
        throw std::runtime_error("statement of " + provider + ": bad amount in " + e.dump());
      net += e.at("kind").get<std::string>() == "charge" ? static_cast<__int128>(amount) : -static_cast<__int128>(amount);
      after = e.at("sequence").get<uint64_t>();
    }
  }
  throw std::runtime_error("statement of " + provider + ": more pages than expected");
}

} // namespace kassa::test
