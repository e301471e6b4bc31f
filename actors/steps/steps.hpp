#pragma once
// The step plugins kassa ships. A new step is one new file here (a class deriving from
// pay::step and a make_ function) plus one line in registry.cpp and one row, its money
// effects, in ledger/payments/flow_check.cpp (tests/actors/flow_check_test.cpp holds the two
// to the same steps).
#include "actors/payments_core.hpp"

namespace kassa::actors::pay {

std::unique_ptr<step> make_check_accounts();
std::unique_ptr<step> make_check_limits();
std::unique_ptr<step> make_route();
std::unique_ptr<step> make_fetch_credentials();
std::unique_ptr<step> make_hold_funds();
std::unique_ptr<step> make_release_hold();
std::unique_ptr<step> make_settle_hold();
std::unique_ptr<step> make_provider_call();
std::unique_ptr<step> make_provider_refund();
std::unique_ptr<step> make_book_topup();
std::unique_ptr<step> make_book_transfer();
std::unique_ptr<step> make_capture();
std::unique_ptr<step> make_book_refund();

// Shared by the steps: voids every hold the row has (none: ok); moves `amount` the provider
// took in for this row from its clearing account into suspense (journal: book_suspense).
void release_holds(flow_actor* self, std::function<void(payment_result)> then);
void to_suspense(flow_actor* self, u128 amount, std::function<void(payment_result)> then);

} // namespace kassa::actors::pay
