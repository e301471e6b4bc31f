#pragma once
// What each flow step does to money (one table, by step name) and the checker that walks every
// path a flow can take through the flow supervisor (success, refusal, decline, unknown outcome
// resolved either way or never, compensation) and proves the money-conservation invariants of
// its kind. kassad refuses a flow that breaks one (docs/payments.md, "Flows are checked").
// Pure: no CAF, no I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/payments/records.hpp"

namespace kassa::ledger::payments {

// The flows a step may appear in: one bit per kind.
constexpr uint8_t flow_bit(kind k) {
  switch (k) {
    case kind::topup: return 1;
    case kind::withdrawal: return 2;
    case kind::transfer: return 4;
    case kind::pay: return 8;
    case kind::refund: return 16;
    default: return 0;
  }
}
constexpr uint8_t every_flow = 31;

// What a step may do, as bits of step_effects::effects. The money effects apply when the
// payment has what they act on: a hold (withdrawal, pay from balance, refund through a
// provider), a provider (topup, withdrawal, pay or refund through a provider); a step whose
// effects do not apply answers ok and does nothing.
namespace effect {
constexpr uint16_t routes = 1 << 0;            // picks the channel provider_call uses
constexpr uint16_t holds = 1 << 1;             // places the payer's money on hold (pending transfers)
constexpr uint16_t posts_hold = 1 << 2;        // posts that hold: the money leaves the payer
constexpr uint16_t voids_hold = 1 << 3;        // voids that hold: the money stays with the payer
constexpr uint16_t calls_provider = 1 << 4;    // moves money at the provider: charge in, payout or refund out
constexpr uint16_t gives_back_charge = 1 << 5; // refunds through the provider what a charge took in
constexpr uint16_t books_incoming = 1 << 6;    // credits what the provider confirmed it took in
constexpr uint16_t books_direct = 1 << 7;      // moves money between ledger accounts at once (no provider)
constexpr uint16_t may_refuse = 1 << 8;        // may fail before moving anything (a check, no funds, no channel)
constexpr uint16_t voids_on_refusal = 1 << 9;  // when it refuses, it voids the hold itself (capture)
constexpr uint16_t money = holds | posts_hold | voids_hold | calls_provider | gives_back_charge | books_incoming |
                           books_direct;
} // namespace effect

struct step_effects {
  std::string_view step;
  uint8_t flows;                  // the kinds whose flow may name it (flow_bit)
  uint16_t effects;               // effect:: bits
  std::string_view compensation;  // the compensation its money movement needs on failure paths
  bool has(uint16_t e) const { return (effects & e) != 0; }
};

// One row per step the payment core registers (actors/steps/registry.cpp agrees, by test).
const std::vector<step_effects>& step_effects_table();
const step_effects* effects_of(std::string_view step); // nullptr: not a step kassa knows

// The invariants, in words (words()) and as a short name (name()). The order is the
// precedence: when a flow breaks several, the first here (then the earliest step) is reported.
enum class flow_invariant : uint8_t {
  step_serves_kind,          // every step serves the flow's kind
  route_before_provider,     // a provider call goes through a channel picked before it
  funds_held_first,          // an outgoing payment holds the funds before any provider call
  refund_bounded,            // a refund is bounded before the provider call or booking
  settle_after_provider,     // a hold is settled only after the provider paid out
  book_after_confirmation,   // incoming money is booked only after the provider confirmed it
  outcome_known_on_failure,  // the flow never fails while a provider call's outcome is unknown
  money_step_compensated,    // every step that moves money has its compensation
  hold_settled_or_released,  // every path settles or releases the hold
  success_books_money,       // on success the payment's money is booked
};
std::string_view name(flow_invariant i);
std::string_view words(flow_invariant i);

// A flow as the checker reads it: the steps in order, each with its compensation and group
// (adjacent steps of one non-zero group run in parallel).
struct flow_step_view {
  std::string step;
  std::string compensate;
  uint8_t group = 0;
};

struct flow_violation {
  flow_invariant invariant;
  size_t step = 0;            // index of the step at fault
  bool on_compensate = false; // the fault is its `compensate` (else its `step`)
  std::string message;        // words(invariant) + ": " + what breaks it
};

// Every invariant the flow breaks, each once per step, in order of precedence; empty when the
// flow is sound. Steps the table does not know are taken as doing nothing (their names are
// checked before).
std::vector<flow_violation> check_flow(kind k, const std::vector<flow_step_view>& flow);

} // namespace kassa::ledger::payments
