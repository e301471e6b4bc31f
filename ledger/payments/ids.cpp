#include "ledger/payments/ids.hpp"

#include <utility>

#include "primitives/assert.hpp"

namespace kassa::ledger::payments {

bool decode_payment_id(u128 id, payment_id_parts& out) {
  if (is_legacy_payment_id(id)) {
    out = payment_id_parts{true, 0, u128_lo(id), static_cast<call_role>(u128_hi(id) & 0xFF)};
    return true;
  }
  const uint64_t issuer = u128_hi(id);
  if (!installation_id_valid(issuer) || !call_role_known(u128_lo(id) >> 56)) return false;
  out = payment_id_parts{false, issuer, u128_lo(id) & payment_sequence_max, static_cast<call_role>(u128_lo(id) >> 56)};
  return true;
}

provider_ids::provider_ids(uint64_t installation_id, std::vector<id_generation> generations)
    : installation_id_(installation_id), generations_(std::move(generations)) {
  KASSA_ASSERT(generations_.empty() || installation_id_valid(installation_id_));
  for (size_t i = 1; i < generations_.size(); ++i) {
    KASSA_ASSERT(generations_[i].number > generations_[i - 1].number);
    KASSA_ASSERT(generations_[i].sequence_first >= generations_[i - 1].sequence_first);
  }
}

uint64_t provider_ids::issuer() const {
  return generations_.empty() ? 0 : issuer_of(installation_id_, generations_.back().nonce);
}

const id_generation* provider_ids::generation_of(uint64_t sequence) const {
  for (size_t i = generations_.size(); i-- > 0;)
    if (generations_[i].sequence_first <= sequence) return &generations_[i];
  return nullptr;
}

u128 provider_ids::id(uint64_t sequence, call_role role) const {
  KASSA_ASSERT(sequence <= payment_sequence_max);
  KASSA_ASSERT(role != call_role::case_refund); // its sequence is a case id: case_refund_id
  const id_generation* g = generation_of(sequence);
  return g ? payment_id(issuer_of(installation_id_, g->nonce), sequence, role) : legacy_payment_id(sequence, role);
}

u128 provider_ids::case_refund_id(uint64_t case_id) const {
  KASSA_ASSERT(case_id <= payment_sequence_max);
  return generations_.empty() ? 0 : payment_id(issuer(), case_id, call_role::case_refund);
}

bool provider_ids::decode(u128 id, uint64_t& sequence, call_role& role) const {
  payment_id_parts p;
  if (!decode_payment_id(id, p) || p.sequence > payment_sequence_max) return false;
  if (p.role == call_role::case_refund) {
    if (p.legacy || generations_.empty() || p.issuer != issuer()) return false;
    sequence = p.sequence; // the case id
    role = p.role;
    return true;
  }
  // only the id this directory gives that row: legacy before the first generation, else the
  // issuer of the row's own generation
  if (generation_of(p.sequence) == nullptr ? !p.legacy : this->id(p.sequence, p.role) != id) return false;
  sequence = p.sequence;
  role = p.role;
  return true;
}

} // namespace kassa::ledger::payments
