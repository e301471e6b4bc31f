#pragma once
// kassad's TCP front end. Boost.Asio owns the sockets on one I/O thread: it reads frames,
// checks them with the wire codec, and hands each request to the connection's session actor,
// which asks the ledger (the directory, or in tests a shard) and writes the reply back through
// the I/O thread. Limits enforced
// here: connections, frame size, events per frame, requests in flight per connection; and
// access: authentication (answered on the I/O thread, like hello) and each client's
// operations and ledgers, checked before a request reaches any actor.
#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "metrics/registry.hpp"
#include "runtime/access.hpp"

namespace kassa::runtime {

struct server_options {
  std::string address = "127.0.0.1";
  uint16_t port = 3100; // 0: the OS picks one (see server::port())
  uint32_t connections_max = 1024;
  uint32_t frame_bytes_max = 1u << 20;
  uint32_t batch_events_max = 8190;
  uint32_t requests_inflight_max = 64;
  // Takes every request: the directory (actors/directory.hpp), which maps accounts to shards;
  // anything that answers the shard's messages the way a shard does will serve.
  actors::ledger_client_actor ledger;
  // Takes submit_payments and lookup_orders (actors/payment_messages.hpp): the payment core's
  // gateway (actors/payments.hpp). Unset when payments are disabled: those operations are
  // then answered `payments_disabled`.
  caf::actor payments;
  // The shadow store (docs/protocol.md, shadow flag): requests with the flag go to these and
  // never to `ledger` or `payments`. An unset shadow_ledger answers them `shadow_disabled`; an
  // unset shadow_payments answers their payment operations `payments_disabled`.
  actors::ledger_client_actor shadow_ledger;
  caf::actor shadow_payments;
  // Takes get_cases and resolve_case (actors/reconciler.hpp). Unset when reconciliation is off:
  // those operations are then answered `reconciliation_disabled` (so are they with the shadow
  // flag: the shadow store has no reconciliation).
  caf::actor reconciler;
  // Who may connect and what each client may do (docs/security.md). The default takes every
  // request from anyone, as before access control.
  access::policy access;
  // Where the front end records requests, replies, connections and the decode and encode
  // stages (docs/operations.md#metrics).
  metrics::registry* metrics = &metrics::process_registry();
};

class server {
public:
  server(caf::actor_system& sys, server_options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds, listens and starts the I/O thread. False with `error` set when it cannot bind.
  bool start(std::string& error);
  uint16_t port() const;

  // Stops accepting; requests arriving from now on are answered `shutting_down`. Then waits,
  // at most `timeout`, until every request in flight is answered, and closes every
  // connection. Returns the number of requests still unanswered at the timeout (0: drained).
  size_t drain(std::chrono::milliseconds timeout);

  size_t connections() const;
  size_t requests_inflight() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace kassa::runtime
