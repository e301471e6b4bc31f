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

// Routing (route.cpp), shared with provider_call's failover. The channels that may take the
// row's payment, best priority first: the one the row names (when `tried` is empty), else
// those serving its ledger and amount, less those in `tried` (env::providers indexes).
std::vector<const env::provider*> route_candidates(const flow_state& st, const std::vector<int>& tried);
// Asks the candidates' health; then(the usable one of the best priority, least loaded) or
// then(nullptr) when none is usable.
void pick_channel(flow_actor* self, std::vector<const env::provider*> candidates,
                  std::function<void(const env::provider*)> then);
// Makes `p` the payment's channel and writes the row; then(true) once durable. On a failed
// write the row and the flow keep the channel they had.
void write_route(flow_actor* self, const env::provider* p, std::function<void(bool)> then);

} // namespace kassa::actors::pay
