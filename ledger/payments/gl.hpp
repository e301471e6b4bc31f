#pragma once
// The general ledger's chart and the one table that turns a booking step of the payments
// journal into a voucher (a debit and a credit of equal amount), and the one for a case
// resolution's correcting transfer. The accounting actor derives vouchers from the journal and
// the resolutions with them; docs/accounting.md lists the same tables for readers.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ledger/payments/case_resolution.hpp"
#include "ledger/payments/records.hpp"

namespace kassa::ledger::payments {

// General-ledger accounts. The numbers are the GL account codes and never change.
enum class gl_account : uint16_t {
  none = 0,
  provider_receivable = 1100, // what providers owe kassa (asset)
  customer_funds = 2100,      // what kassa owes its users (liability)
  suspense = 2900,            // money whose owner is not settled yet (liability)
  fee_income = 4100,          // fees charged (income)
};

constexpr std::string_view name(gl_account a) {
  switch (a) {
    case gl_account::none: return "none";
    case gl_account::provider_receivable: return "provider_receivable";
    case gl_account::customer_funds: return "customer_funds";
    case gl_account::suspense: return "suspense";
    case gl_account::fee_income: return "fee_income";
  }
  return "unknown";
}

// The width of journal_entry::step: longer step names are stored cut to this many bytes
// ("book_suspense_out" is stored as "book_suspense_ou"), and are compared the same way.
constexpr size_t step_bytes = 16;

struct gl_rule {
  std::string_view step; // the journal step, as the payment core names it
  kind only_kind;        // kind::none: any kind; else the rule applies to this kind only
  gl_account debit, credit;
};

// Every booking step and its posting; a step not listed makes no voucher.
constexpr gl_rule gl_rules[] = {
    {"book_topup", kind::none, gl_account::provider_receivable, gl_account::customer_funds},
    {"book_withdrawal", kind::none, gl_account::customer_funds, gl_account::provider_receivable},
    {"book_fee", kind::none, gl_account::customer_funds, gl_account::fee_income},
    {"book_transfer", kind::none, gl_account::customer_funds, gl_account::customer_funds},
    // an order paid from the payer's balance / through a provider
    {"book_capture_bal", kind::none, gl_account::customer_funds, gl_account::customer_funds},
    {"book_capture_prv", kind::none, gl_account::provider_receivable, gl_account::customer_funds},
    {"book_refund_bal", kind::none, gl_account::customer_funds, gl_account::customer_funds},
    {"book_refund_prv", kind::none, gl_account::customer_funds, gl_account::provider_receivable},
    {"book_suspense", kind::none, gl_account::provider_receivable, gl_account::suspense},
    {"book_suspense_out", kind::none, gl_account::suspense, gl_account::provider_receivable},
    {"book_late", kind::topup, gl_account::provider_receivable, gl_account::customer_funds},
    {"book_late", kind::withdrawal, gl_account::customer_funds, gl_account::provider_receivable},
    // a refund through a provider that it declined and then made after all
    {"book_late", kind::refund, gl_account::customer_funds, gl_account::provider_receivable},
    // money leaves suspense for the customer
    {"book_suspense_in", kind::none, gl_account::suspense, gl_account::customer_funds},
};

// True when the zero-padded `step` field holds `name` (cut to step_bytes).
constexpr bool step_is(const char (&step)[step_bytes], std::string_view name) {
  const size_t n = name.size() < step_bytes ? name.size() : step_bytes;
  for (size_t i = 0; i < n; ++i)
    if (step[i] != name[i]) return false;
  return n == step_bytes || step[n] == 0;
}

// The rule for a journal entry's step and kind, or nullptr when it books nothing in the GL.
constexpr const gl_rule* gl_rule_for(const char (&step)[step_bytes], uint16_t entry_kind) {
  for (const gl_rule& r : gl_rules) {
    if (r.only_kind != kind::none && static_cast<uint16_t>(r.only_kind) != entry_kind) continue;
    if (step_is(step, r.step)) return &r;
  }
  return nullptr;
}

// A `book` resolution of a reconciliation case moves money between its ledger's suspense account
// (GL suspense, as book_suspense and book_suspense_in post it) and the user's account (GL
// customer_funds); a `refund` moves it out of suspense to the provider's clearing account once
// the provider gave it back to the payer (the provider owes kassa that much less, as
// book_suspense_out posts it). The voucher carries `step`. An accept books nothing, so makes no
// voucher.
struct gl_case_rule {
  case_action action;
  case_direction direction;
  std::string_view step; // at most step_bytes: stored whole
  gl_account debit, credit;
};
constexpr gl_case_rule gl_case_rules[] = {
    {case_action::book, case_direction::from_suspense, "case_to_account", gl_account::suspense,
     gl_account::customer_funds},
    {case_action::book, case_direction::to_suspense, "case_to_suspense", gl_account::customer_funds,
     gl_account::suspense},
    {case_action::refund, case_direction::none, "case_refund", gl_account::suspense, gl_account::provider_receivable},
};
constexpr bool gl_case_steps_fit() {
  for (const gl_case_rule& r : gl_case_rules)
    if (r.step.size() > step_bytes) return false;
  return true;
}
static_assert(gl_case_steps_fit());

// The rule for a journaled resolution's action and direction, or nullptr when it books nothing.
constexpr const gl_case_rule* gl_rule_for_case(uint8_t action, uint8_t direction) {
  for (const gl_case_rule& r : gl_case_rules)
    if (static_cast<uint8_t>(r.action) == action && static_cast<uint8_t>(r.direction) == direction) return &r;
  return nullptr;
}

// A rule whose step names differ only beyond step_bytes would be ambiguous.
constexpr bool gl_rules_distinct() {
  for (const gl_rule& a : gl_rules)
    for (const gl_rule& b : gl_rules) {
      if (&a == &b || (a.only_kind != b.only_kind && a.only_kind != kind::none && b.only_kind != kind::none))
        continue;
      const size_t na = a.step.size() < step_bytes ? a.step.size() : step_bytes;
      const size_t nb = b.step.size() < step_bytes ? b.step.size() : step_bytes;
      if (a.step.substr(0, na) == b.step.substr(0, nb)) return false;
    }
  return true;
}
static_assert(gl_rules_distinct(), "two GL rules match the same stored step");

} // namespace kassa::ledger::payments
