#pragma once
// Access control of kassad's clients (docs/security.md): who a connection is, after the
// `authenticate` challenge-response, and what that client may do. Pure: plain structs and
// functions over checked frames, used by the server on its I/O thread and by its sessions.
#include <cstdint>
#include <vector>

#include "runtime/wire/wire.hpp"

namespace kassa::runtime::access {

// Bit n stands for operation n. hello and authenticate are always allowed and never listed.
constexpr uint32_t operation_bit(wire::operation op) { return 1u << static_cast<uint16_t>(op); }
constexpr uint32_t operations_all = operation_bit(wire::operation::create_accounts) |
                                    operation_bit(wire::operation::create_transfers) |
                                    operation_bit(wire::operation::lookup_accounts) |
                                    operation_bit(wire::operation::lookup_transfers) |
                                    operation_bit(wire::operation::get_account_transfers) |
                                    operation_bit(wire::operation::get_account_balances) |
                                    operation_bit(wire::operation::submit_payments) |
                                    operation_bit(wire::operation::lookup_orders) |
                                    operation_bit(wire::operation::lookup_order_items);

// One entry of access.clients.
struct client {
  uint64_t id = 0; // non-zero: the client_id of its frames
  uint8_t key[wire::key_bytes] = {};
  uint32_t operations = operations_all;
  std::vector<uint32_t> ledgers; // empty: every ledger
  // The stores it may use: requests without the shadow flag go to the real store, with it to
  // the shadow store (a load tester needs no right to the real one).
  bool real_store = true;
  bool shadow_store = false;

  bool operation_allowed(wire::operation op) const;
  bool store_allowed(bool shadow) const { return shadow ? shadow_store : real_store; }
  bool every_ledger() const { return ledgers.empty(); }
  bool ledger_allowed(uint32_t ledger) const;
};

struct policy {
  bool required = false; // every connection authenticates before any request but hello
  uint32_t authentication_failures_max = 3; // failed authenticates before the connection closes
  std::vector<client> clients;              // ids unique

  const client* find(uint64_t id) const; // nullptr when no client has this id
};

// ok, or forbidden when `c` may not make this request: the store the shadow flag of `h` selects
// is not one of its stores, the operation is not in its list, or an event names a ledger it
// may not use. For a client limited to ledgers, an event with ledger 0 (a post or void that
// leaves the ledger to the pending transfer) is forbidden: it must state the ledger, or the
// check could not be made before the ledger applies the request. Every event is checked before
// any is applied, so a refused request changes nothing. pay and refund commands carry ledger 0
// and act on an existing order: they pass here, and the payment core refuses each one whose
// order is of a ledger not in `c.ledgers` (ledger_forbidden), before it stores anything.
wire::status check_request(const client& c, const wire::header& h, const uint8_t* body,
                           size_t body_bytes);

// The answer to an authenticate request on a connection whose hello sent `server_nonce`.
struct authentication {
  wire::status st = wire::status::authentication_failed; // ok, or authentication_failed
  const client* who = nullptr;                           // set when ok
  wire::authenticate_reply reply;                        // the body when ok
};
authentication authenticate(const policy& p, const uint8_t (&server_nonce)[wire::nonce_bytes],
                            const wire::header& h, const wire::authenticate_request& request);

// Drops the records of ledgers `c` may not use from a lookup's reply: for such a client they
// are as if they did not exist.
template <class Record>
void keep_allowed(const client& c, std::vector<Record>& records) {
  if (c.every_ledger()) return;
  size_t kept = 0;
  for (size_t i = 0; i < records.size(); ++i)
    if (c.ledger_allowed(records[i].ledger)) records[kept++] = records[i];
  records.resize(kept);
}

} // namespace kassa::runtime::access
