#include "runtime/access.hpp"

#include <algorithm>
#include <cstring>

#include "ledger/payments/records.hpp"
#include "ledger/types.hpp"
#include "runtime/wire/crypto.hpp"

namespace kassa::runtime::access {

bool client::operation_allowed(wire::operation op) const {
  if (op == wire::operation::hello || op == wire::operation::authenticate) return true;
  return (operations & operation_bit(op)) != 0;
}

bool client::ledger_allowed(uint32_t ledger) const {
  return ledgers.empty() || std::find(ledgers.begin(), ledgers.end(), ledger) != ledgers.end();
}

const client* policy::find(uint64_t id) const {
  for (const client& c : clients)
    if (c.id == id) return &c;
  return nullptr;
}

namespace {

// The ledger field of every record of a body, read in place (bodies are not aligned).
template <class Record>
bool ledgers_allowed(const client& c, const uint8_t* body, size_t body_bytes) {
  constexpr size_t at = offsetof(Record, ledger);
  for (size_t offset = 0; offset + sizeof(Record) <= body_bytes; offset += sizeof(Record)) {
    uint32_t ledger;
    std::memcpy(&ledger, body + offset + at, sizeof ledger);
    if (ledger == 0 || !c.ledger_allowed(ledger)) return false;
  }
  return true;
}

// As ledgers_allowed, but pay and refund, which act on an existing order and carry ledger 0,
// pass: the payment core checks their order's ledger (result ledger_forbidden).
bool commands_allowed(const client& c, const uint8_t* body, size_t body_bytes) {
  namespace lp = ledger::payments;
  constexpr size_t command_bytes = sizeof(lp::payment_command);
  for (size_t offset = 0; offset + command_bytes <= body_bytes; offset += command_bytes) {
    uint32_t ledger;
    uint16_t kind;
    std::memcpy(&ledger, body + offset + offsetof(lp::payment_command, ledger), sizeof ledger);
    std::memcpy(&kind, body + offset + offsetof(lp::payment_command, kind), sizeof kind);
    const bool on_order = kind == uint16_t(lp::kind::pay) || kind == uint16_t(lp::kind::refund);
    if (ledger == 0 && on_order) continue;
    if (ledger == 0 || !c.ledger_allowed(ledger)) return false;
  }
  return true;
}

} // namespace

wire::status check_request(const client& c, const wire::header& h, const uint8_t* body,
                           size_t body_bytes) {
  const wire::operation op = h.op;
  if (!c.store_allowed(h.ctx.shadow) || !c.operation_allowed(op)) return wire::status::forbidden;
  if (c.every_ledger()) return wire::status::ok;
  bool allowed = true;
  switch (op) {
  case wire::operation::create_accounts:
    allowed = ledgers_allowed<ledger::account>(c, body, body_bytes);
    break;
  case wire::operation::create_transfers:
    allowed = ledgers_allowed<ledger::transfer>(c, body, body_bytes);
    break;
  case wire::operation::submit_payments:
    allowed = commands_allowed(c, body, body_bytes);
    break;
  default: // reads: their replies are filtered by the session (keep_allowed)
    break;
  }
  return allowed ? wire::status::ok : wire::status::forbidden;
}

authentication authenticate(const policy& p, const uint8_t (&server_nonce)[wire::nonce_bytes],
                            const wire::header& h, const wire::authenticate_request& request) {
  authentication out;
  const client* c = p.find(request.client_id);
  // An unknown id costs the same MAC as a known one, so timing does not tell which ids exist.
  static const uint8_t no_key[wire::key_bytes] = {};
  const auto expected = wire::auth_proof(wire::proof_side::client, c ? c->key : no_key, server_nonce,
                                         request.client_nonce, request.client_id);
  const bool proof_ok = wire::equal_constant_time(expected.data(), expected.size(), request.proof,
                                                    sizeof request.proof);
  if (c == nullptr || !proof_ok || h.ctx.client_id != request.client_id) return out;
  out.st = wire::status::ok;
  out.who = c;
  const auto proof = wire::auth_proof(wire::proof_side::server, c->key, server_nonce,
                                      request.client_nonce, request.client_id);
  std::memcpy(out.reply.proof, proof.data(), proof.size());
  out.reply.operations = c->operations | operation_bit(wire::operation::hello) |
                         operation_bit(wire::operation::authenticate);
  out.reply.ledgers_count = static_cast<uint32_t>(c->ledgers.size());
  return out;
}

} // namespace kassa::runtime::access
