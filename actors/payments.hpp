#pragma once
// The payment core: the transaction core (orders that aggregate payment items and relate to
// their refunds) and the payment core proper (topup, withdrawal, refund and transfer flows
// through channels, booked in the ledger). Its entry point is one gateway actor:
//   submit_payments_request -> payments_reply, lookup_orders_request -> orders_reply
//   (actors/payment_messages.hpp), and provider_event from the channels.
// Behind it: an order actor per business order, a flow supervisor actor per running payment
// (its steps are plugins named in the YAML, see actors/steps/), the channels, the payments
// store writer. See docs/payments.md.
#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "config/config.hpp"
#include "ledger/store/payments_store.hpp"

namespace kassa::actors {

struct payments_options {
  config::payments_config cfg;
  uint32_t shards = 1;
  directory_actor directory; // the ledger
  caf::actor writer;     // spawn_payments_writer over `store`
  caf::actor reconciler; // optional: receives open_case for suspense bookings
  std::vector<caf::actor> channels; // one per cfg.providers[i], same order
  std::shared_ptr<ledger::store::payments_store> store;
  std::function<uint64_t()> clock; // ns since the unix epoch
  std::function<void(const std::string&)> log_info, log_error;
};

// Checks every flow's step names against the registered steps, then its money invariants
// (ledger/payments/flow_check.hpp); throws config_error (with the step's file and line, and
// the invariant in words) for an unknown step or the first invariant a flow breaks.
void check_flows(const config::payments_config& cfg);

// Spawns the gateway. Before it takes commands it creates the chart of accounts in the
// ledger and resumes every payment a crash left unfinished (asynchronously: commands that
// arrive meanwhile wait).
caf::actor spawn_payments(caf::actor_system& sys, payments_options opts);

} // namespace kassa::actors
