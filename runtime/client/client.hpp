#pragma once
// The C++ client of kassad: one TCP connection, a background io thread, pipelined requests
// matched to replies by request_id (docs/protocol.md). `connection` is asynchronous (futures
// or callbacks); `blocking_client` wraps it for scripts, tools and tests.
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ledger/payments/records.hpp"
#include "ledger/result.hpp"
#include "ledger/types.hpp"
#include "runtime/wire/wire.hpp"

namespace kassa::client {

struct options {
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect + hello
  std::chrono::milliseconds request_timeout{30000}; // per request, including busy retries
  uint32_t busy_retries_max = 8;                    // then `busy` is surfaced as an error
  std::chrono::milliseconds busy_backoff_min{10};   // doubles per retry, up to the max
  std::chrono::milliseconds busy_backoff_max{1000};
  uint64_t client_id = 0;             // put in every request whose context has none
  bool shadow = false;                // set the shadow flag on every request (the shadow store)
  bool deadline_from_timeout = false; // send deadline_ns = now + request_timeout when unset
  // The client's secret (access.clients[].key of kassad's configuration): 32 bytes, or empty
  // to not authenticate. With a key, connect() authenticates as `client_id` right after hello
  // (challenge-response: the key never leaves this process) and checks that the server holds
  // the key too; it throws client::error with status authentication_failed when refused.
  std::vector<uint8_t> key;
};

enum class error_kind {
  status,     // the server answered with a frame status other than ok (see `status`)
  timeout,    // no reply within the timeout (the outcome of a create_* is unknown)
  connection, // connect failed, or the connection was lost (outcome unknown)
  protocol,   // the server sent something this client cannot read; the connection is closed
};

// An operating failure of a request. Business outcomes (per-event result codes) are never
// errors: they are the returned outcomes.
class error : public std::runtime_error {
public:
  error(error_kind kind, wire::status st, const std::string& message)
      : std::runtime_error(message), kind(kind), status(st) {}
  error_kind kind;
  wire::status status; // ok unless kind == error_kind::status
};

// A successful (status ok) reply: its header and raw body.
struct reply {
  wire::header h;
  std::vector<uint8_t> body;
};

class connection {
public:
  // Connects to host:port (only the addresses that name resolves to) and says hello.
  // Throws client::error (connection or timeout, or status for a refused hello).
  static std::unique_ptr<connection> connect(const std::string& host, uint16_t port,
                                             const options& o = {});
  ~connection(); // closes; requests still open fail with error_kind::connection
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // One frame. `done` runs on the io thread (never block in it) with either an error or the
  // ok reply. Requests beyond the server's requests_inflight_max wait in the client.
  using callback = std::function<void(std::exception_ptr, reply)>;
  void send(wire::operation op, std::vector<uint8_t> body, uint32_t event_count,
            const wire::context& ctx, callback done);
  std::future<reply> send(wire::operation op, std::vector<uint8_t> body, uint32_t event_count,
                          const wire::context& ctx = {});

  // Typed operations, any size: split into frames of at most batch_events_max events (never
  // inside a linked chain) sent one after another, results merged with indexes into the
  // input. create_* return only the events that did not return ok, like the wire.
  std::future<std::vector<ledger::create_account_outcome>>
  create_accounts(std::vector<ledger::account> accounts, const wire::context& ctx = {});
  std::future<std::vector<ledger::create_transfer_outcome>>
  create_transfers(std::vector<ledger::transfer> transfers, const wire::context& ctx = {});
  std::future<std::vector<ledger::account>> lookup_accounts(std::vector<u128> ids,
                                                            const wire::context& ctx = {});
  std::future<std::vector<ledger::transfer>> lookup_transfers(std::vector<u128> ids,
                                                              const wire::context& ctx = {});
  // One page (at most filter.limit records); see docs/protocol.md for paging.
  std::future<std::vector<ledger::transfer>> get_account_transfers(const wire::filter& f,
                                                                   const wire::context& ctx = {});
  std::future<std::vector<ledger::account_balance>>
  get_account_balances(const wire::filter& f, const wire::context& ctx = {});
  // Payment commands: one reply per command, in order, with `index` into `commands`. A
  // server without the payment core answers status payments_disabled.
  std::future<std::vector<ledger::payments::payment_reply>>
  submit_payments(std::vector<ledger::payments::payment_command> commands,
                  const wire::context& ctx = {});
  // The orders found, in request order; ids not found are left out.
  std::future<std::vector<ledger::payments::order>> lookup_orders(std::vector<u128> ids,
                                                                  const wire::context& ctx = {});
  // The pay items and refunds of the orders named, each order's by sequence; one frame per
  // order. An order with more items than a reply frame holds: status too_many_events.
  std::future<std::vector<ledger::payments::order_item>> lookup_order_items(std::vector<u128> ids,
                                                                            const wire::context& ctx = {});
  // Reconciliation cases: one page (at most filter.limit, which must not exceed
  // wire::cases_per_reply_max of the hello's limits); and one resolution, whose reply's
  // `result` is the business outcome (ledger::payments::case_result).
  std::future<std::vector<wire::case_record>> get_cases(const wire::cases_filter& f, const wire::context& ctx = {});
  std::future<wire::resolve_reply> resolve_case(const ledger::store::recon_resolution& r,
                                                const wire::context& ctx = {});

  const wire::hello_reply& server_limits() const; // from the hello reply
  // The answer to this connection's authenticate (operations and ledger count); nullptr when
  // it did not authenticate.
  const wire::authenticate_reply* authenticated() const;
  bool is_open() const;
  void close(); // idempotent; must not be called from a callback

  struct impl;

private:
  explicit connection(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// Synchronous wrapper: each call waits for its result and throws client::error on failure.
class blocking_client {
public:
  explicit blocking_client(options o = {}) : options_(o) {}
  void connect(const std::string& host, uint16_t port,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  void close();
  bool connected() const { return conn_ && conn_->is_open(); }
  connection& async(); // the underlying connection, for pipelining

  std::vector<ledger::create_account_outcome> create_accounts(
      const std::vector<ledger::account>& accounts, const wire::context& ctx = {});
  std::vector<ledger::create_transfer_outcome> create_transfers(
      const std::vector<ledger::transfer>& transfers, const wire::context& ctx = {});
  std::vector<ledger::account> lookup_accounts(const std::vector<u128>& ids,
                                               const wire::context& ctx = {});
  std::vector<ledger::transfer> lookup_transfers(const std::vector<u128>& ids,
                                                 const wire::context& ctx = {});
  std::vector<ledger::transfer> get_account_transfers(const wire::filter& f,
                                                      const wire::context& ctx = {});
  std::vector<ledger::account_balance> get_account_balances(const wire::filter& f,
                                                            const wire::context& ctx = {});
  std::vector<ledger::payments::payment_reply> submit_payments(
      const std::vector<ledger::payments::payment_command>& commands, const wire::context& ctx = {});
  std::vector<ledger::payments::order> lookup_orders(const std::vector<u128>& ids,
                                                     const wire::context& ctx = {});
  std::vector<ledger::payments::order_item> lookup_order_items(const std::vector<u128>& ids,
                                                               const wire::context& ctx = {});
  std::vector<wire::case_record> get_cases(const wire::cases_filter& f, const wire::context& ctx = {});
  wire::resolve_reply resolve_case(const ledger::store::recon_resolution& r, const wire::context& ctx = {});

private:
  options options_;
  std::unique_ptr<connection> conn_;
};

// The 32-byte key of `text` (64 hex digits). Throws std::invalid_argument naming `what`.
std::vector<uint8_t> key_of_hex(const std::string& what, const std::string& text);
// The key a key file holds (64 hex digits, surrounding white space ignored); a file others may
// read is refused. Throws std::invalid_argument saying what to do.
std::vector<uint8_t> key_of_file(const std::string& path);

// Where a batch of `count` events with these flags is cut into frames of at most `max`
// events: the start index of each frame. A cut never falls inside a linked chain unless
// the chain alone is longer than `max`.
std::vector<size_t> batch_starts(const std::vector<uint16_t>& flags, size_t max);

} // namespace kassa::client
