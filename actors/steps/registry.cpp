// Every step a flow in the YAML may name: one line each. Each also has a row in the effects
// table the flow checker reads (ledger/payments/flow_check.cpp); a test keeps the two alike.
#include "actors/steps/steps.hpp"

namespace kassa::actors::pay {

const std::map<std::string, step_factory>& steps() {
  static const std::map<std::string, step_factory> registry{
      {"check_accounts", &make_check_accounts},
      {"check_limits", &make_check_limits},
      {"route", &make_route},
      {"fetch_credentials", &make_fetch_credentials},
      {"hold_funds", &make_hold_funds},
      {"release_hold", &make_release_hold},
      {"settle_hold", &make_settle_hold},
      {"provider_call", &make_provider_call},
      {"provider_refund", &make_provider_refund},
      {"book_topup", &make_book_topup},
      {"book_transfer", &make_book_transfer},
      {"capture", &make_capture},
      {"book_refund", &make_book_refund},
  };
  return registry;
}

} // namespace kassa::actors::pay
