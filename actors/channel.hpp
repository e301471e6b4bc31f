#pragma once
// The channel actor: one per provider, the payment core's only way to a provider. It is a
// bulkhead: its own in-flight limit, timeouts, retries with backoff, circuit breaker and
// health. Every call is asynchronous: a flow sends a message and waits for the answer
// message; no thread waits on the network. docs/channels.md describes the behaviour.
#include <caf/all.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "primitives/u128.hpp"

namespace kassa::actors {

// What the payment core asks a provider to do with money.
enum class call_kind : uint8_t {
  charge = 1, // take money from the user's card/bank into kassa (topup, pay by provider)
  payout = 2, // send money out to the user (withdrawal)
  refund = 3, // give back (part of) an earlier charge
};

// How a call (or a status query, or a callback) ended, as far as kassa can tell.
enum class call_status : uint8_t {
  succeeded = 1, // the provider moved `amount` (which may differ from what was asked)
  partial = 2,   // the provider moved less than asked and says so (amount < requested)
  declined = 3,  // the provider refused; nothing moved
  pending = 4,   // the provider accepted and will tell later (callback or status query)
  not_found = 5, // status query: the provider never saw this payment id
  unknown = 6,   // timeout or broken connection after the request may have arrived
  rejected = 7,  // kassa did not send it: in-flight limit, breaker open, shutting down
  failed = 8,    // the provider answered with an error that is not a decline (4xx/5xx)
};

struct payment_call {
  request_context ctx;
  u128 payment_id = 0;    // idempotency key at the provider: repeated calls are one payment
  call_kind kind = call_kind::charge;
  u128 amount = 0;        // minor units
  uint32_t ledger = 0;    // currency
  u128 account_id = 0;    // the user, for the provider's records
  u128 refund_of = 0;     // refund: the payment id of the charge being refunded
  std::string credential; // token from a credentials call, if the provider wants one
};

struct call_result {
  call_status status = call_status::unknown;
  u128 payment_id = 0;
  u128 amount = 0;          // what the provider says moved
  std::string provider_ref; // the provider's own reference
  uint32_t attempts = 0;    // sends made (retries included)
  std::string detail;       // a human-readable reason for logs ("timeout after 2000 ms", ...)
  // rejected or failed, and proven that the provider never saw the call: nothing was sent
  // (in-flight limit, breaker open, no credential) or every attempt's connection was refused.
  // Only then may the payment go to another channel (docs/payments.md, "Failover").
  bool not_sent = false;
};

// A pre-payment credential (a token the provider wants on the payment call).
struct credential_request {
  request_context ctx;
};
struct credential_reply {
  bool ok = false;
  std::string token;
  std::string detail;
};

// The payment's status as the provider sees it now (used while an outcome is unknown).
struct status_query {
  request_context ctx;
  u128 payment_id = 0;
};

// A callback from the provider (delivered through its event feed): may be late, may repeat.
struct provider_event {
  std::string provider;
  uint64_t sequence = 0; // the provider's event number
  u128 payment_id = 0;
  call_kind kind = call_kind::charge;
  call_status status = call_status::unknown;
  u128 amount = 0;
  std::string provider_ref;
};

// One line of the provider's settlement statement.
struct statement_entry {
  uint64_t sequence = 0;
  u128 payment_id = 0;
  call_kind kind = call_kind::charge;
  call_status status = call_status::succeeded; // succeeded or partial: money moved
  u128 amount = 0;
  uint32_t ledger = 0;
  std::string provider_ref;
};
struct statement_request {
  uint64_t after = 0; // entries with sequence > after
  uint32_t limit = 1000;
};
struct statement_reply {
  bool ok = false;
  std::vector<statement_entry> entries;
  std::string detail;
};

enum class health_state : uint8_t {
  healthy = 0,   // breaker closed
  degraded = 1,  // breaker half-open: probing
  down = 2,      // breaker open: calls are rejected without being sent
};
struct health_request {};
struct health_reply {
  std::string provider;
  health_state state = health_state::healthy;
  uint32_t inflight = 0;
  uint32_t inflight_max = 0;
  uint64_t calls = 0, failures = 0, rejected = 0;
};

// Where the channel sends provider_event messages (the payment core's dispatcher).
struct subscribe_events {
  caf::actor subscriber;
  uint64_t after = 0; // deliver events with sequence > after (a cursor kept across restarts)
};

// ------------------------------------------------------------------ serialisation
// Each message also has an `inspect` overload, so that CAF can serialise it.

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_call& x) {
  return f(caf::meta::type_name("kassa.payment_call"), x.ctx, serial::wide{&x.payment_id}, serial::enum_of(x.kind),
           serial::wide{&x.amount}, x.ledger, serial::wide{&x.account_id}, serial::wide{&x.refund_of}, x.credential);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_result& x) {
  return f(caf::meta::type_name("kassa.call_result"), serial::enum_of(x.status), serial::wide{&x.payment_id},
           serial::wide{&x.amount}, x.provider_ref, x.attempts, x.detail, x.not_sent);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credential_request& x) {
  return f(caf::meta::type_name("kassa.credential_request"), x.ctx);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credential_reply& x) {
  return f(caf::meta::type_name("kassa.credential_reply"), x.ok, x.token, x.detail);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_query& x) {
  return f(caf::meta::type_name("kassa.status_query"), x.ctx, serial::wide{&x.payment_id});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, provider_event& x) {
  return f(caf::meta::type_name("kassa.provider_event"), x.provider, x.sequence, serial::wide{&x.payment_id},
           serial::enum_of(x.kind), serial::enum_of(x.status), serial::wide{&x.amount}, x.provider_ref);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, statement_entry& x) {
  return f(caf::meta::type_name("kassa.statement_entry"), x.sequence, serial::wide{&x.payment_id},
           serial::enum_of(x.kind), serial::enum_of(x.status), serial::wide{&x.amount}, x.ledger, x.provider_ref);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, statement_request& x) {
  return f(caf::meta::type_name("kassa.statement_request"), x.after, x.limit);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, statement_reply& x) {
  return f(caf::meta::type_name("kassa.statement_reply"), x.ok, x.entries, x.detail);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_request&) {
  return f(caf::meta::type_name("kassa.health_request"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_reply& x) {
  return f(caf::meta::type_name("kassa.health_reply"), x.provider, serial::enum_of(x.state), x.inflight,
           x.inflight_max, x.calls, x.failures, x.rejected);
}
// The subscriber travels as CAF serialises any actor handle (its node and actor id).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subscribe_events& x) {
  return f(caf::meta::type_name("kassa.subscribe_events"), x.subscriber, x.after);
}

// Set up from the provider's entry in the YAML (config::provider_config).
struct channel_options {
  std::string name;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path_prefix;          // e.g. "/p/alpha"
  uint32_t inflight_max = 256;      // calls sent and not yet answered; beyond: rejected
  uint32_t connections_max = 16;    // HTTP keep-alive connections
  uint32_t timeout_ms = 2000;       // per attempt
  uint32_t retries_max = 3;         // extra attempts after a transport failure
  uint32_t backoff_ms_min = 50;
  uint32_t backoff_ms_max = 2000;
  uint32_t breaker_failures_min = 5;   // failures within the window that open the breaker
  uint32_t breaker_window_ms = 10000;
  uint32_t breaker_open_ms = 5000;     // how long it stays open before probing
  uint32_t events_poll_ms = 200;       // how often the callback feed is read; 0: never
  uint32_t credential_ttl_ms = 60000;  // cached token lifetime
  bool credentials = false;            // the provider wants a credential on payment calls
  uint64_t seed = 0;                   // backoff jitter (deterministic per seed and payment)
  // Where the channel tells what an operator should know: its breaker opening (`warning`),
  // probing and closing, with the reason. kassad writes it to its log; unset: not told.
  std::function<void(bool warning, const std::string& message)> log;
};

// Spawns the channel actor. It answers payment_call -> call_result, status_query ->
// call_result, credential_request -> credential_reply, statement_request -> statement_reply,
// health_request -> health_reply, and sends provider_event to its subscriber.
caf::actor spawn_channel(caf::actor_system& sys, channel_options opts);

} // namespace kassa::actors
