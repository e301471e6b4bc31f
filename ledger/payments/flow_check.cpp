// The checker walks a flow the way the flow supervisor (actors/flow.cpp) runs it: batch by
// batch (one step, or adjacent steps of one non-zero group in parallel, which see the state
// before the batch), each step succeeding or refusing, a provider call also declined, left
// unknown and then resolved either way or never. Every step of a finished batch counts as done
// whatever its outcome; on a failure the compensations of the done steps run newest first. An
// outcome that never resolves ends in review with a case: nothing is asserted there, kassa
// never guesses. Each kind is walked once per source of money (pay and refund: balance and
// provider), with an abstract state of where the money is.
#include "ledger/payments/flow_check.hpp"

#include <algorithm>
#include <set>
#include <tuple>

namespace kassa::ledger::payments {

const std::vector<step_effects>& step_effects_table() {
  using namespace effect;
  static const std::vector<step_effects> table{
      {"check_accounts", every_flow, may_refuse, ""},
      {"check_limits", every_flow, may_refuse, ""},
      {"route", every_flow, routes | may_refuse, ""},
      {"fetch_credentials", every_flow, may_refuse, ""},
      {"hold_funds", every_flow, holds | may_refuse, "release_hold"},
      {"release_hold", every_flow, voids_hold, ""},
      {"settle_hold", flow_bit(kind::withdrawal), posts_hold, ""},
      {"provider_call", every_flow, calls_provider | may_refuse, "provider_refund"},
      {"provider_refund", every_flow, gives_back_charge, ""},
      {"book_topup", flow_bit(kind::topup), books_incoming, ""},
      {"book_transfer", flow_bit(kind::transfer), books_direct | may_refuse, ""},
      {"capture", flow_bit(kind::pay), posts_hold | books_incoming | may_refuse | voids_on_refusal, ""},
      {"book_refund", flow_bit(kind::refund), posts_hold | books_direct | may_refuse, ""},
  };
  return table;
}

const step_effects* effects_of(std::string_view step) {
  for (const auto& e : step_effects_table())
    if (e.step == step) return &e;
  return nullptr;
}

std::string_view name(flow_invariant i) {
  switch (i) {
    case flow_invariant::step_serves_kind: return "step_serves_kind";
    case flow_invariant::route_before_provider: return "route_before_provider";
    case flow_invariant::funds_held_first: return "funds_held_first";
    case flow_invariant::refund_bounded: return "refund_bounded";
    case flow_invariant::settle_after_provider: return "settle_after_provider";
    case flow_invariant::hold_settled_or_released: return "hold_settled_or_released";
    case flow_invariant::book_after_confirmation: return "book_after_confirmation";
    case flow_invariant::success_books_money: return "success_books_money";
    case flow_invariant::money_step_compensated: return "money_step_compensated";
    case flow_invariant::outcome_known_on_failure: return "outcome_known_on_failure";
  }
  return "?";
}

std::string_view words(flow_invariant i) {
  switch (i) {
    case flow_invariant::step_serves_kind: return "every step serves the flow's kind";
    case flow_invariant::route_before_provider: return "a provider call goes through the channel route picked before it";
    case flow_invariant::funds_held_first:
      return "an outgoing payment holds the funds before any provider call (money leaves a payer only from a hold)";
    case flow_invariant::refund_bounded:
      return "a refund is bounded before money moves (the merchant's side held, within what the order captured "
             "and has not refunded)";
    case flow_invariant::settle_after_provider: return "a hold is settled only after the provider paid out";
    case flow_invariant::hold_settled_or_released: return "every path settles or releases the hold";
    case flow_invariant::book_after_confirmation: return "incoming money is booked only after the provider confirmed it";
    case flow_invariant::success_books_money: return "a payment that succeeds has its money booked";
    case flow_invariant::money_step_compensated: return "every step that moves money has its compensation on failure paths";
    case flow_invariant::outcome_known_on_failure: return "a flow never fails while a provider call's outcome is unknown";
  }
  return "?";
}

namespace {

constexpr size_t none = size_t(-1);
constexpr size_t combinations_max = 4096; // per batch; beyond, one deviation at a time

// One way the payment's money can come: what the effects act on.
struct variant {
  kind k;
  bool provider; // goes through a provider
  bool outgoing; // the provider pays money out (payout, refund); else it takes money in
  bool holds;    // hold_funds places pending transfers
  const char* what;
};

std::vector<variant> variants_of(kind k) {
  switch (k) {
    case kind::topup: return {{k, true, false, false, "a top-up"}};
    case kind::withdrawal: return {{k, true, true, true, "a withdrawal"}};
    case kind::transfer: return {{k, false, false, false, "a transfer"}};
    case kind::pay: return {{k, false, false, true, "a pay from balance"}, {k, true, false, false, "a pay through a provider"}};
    case kind::refund:
      return {{k, false, false, false, "a refund of a balance item"}, {k, true, true, true, "a refund through a provider"}};
    default: return {};
  }
}

enum class hold_state : uint8_t { none, pending, posted, voided };
enum class provider_state : uint8_t { not_called, moved, declined, unknown };

struct money {
  bool routed = false;
  hold_state hold = hold_state::none;
  provider_state provider = provider_state::not_called;
  bool given_back = false; // the charge went back through the provider
  bool credited = false;   // incoming money booked
  bool moved = false;      // a direct booking, or a posted hold, moved money for good
  size_t hold_step = none, provider_step = none, move_step = none, give_back_step = none;
  std::vector<size_t> done; // steps done, in order, for compensation

  auto key() const {
    return std::make_tuple(routed, hold, provider, given_back, credited, moved, hold_step, provider_step, move_step,
                           give_back_step, done);
  }
};

enum class outcome : uint8_t { ok, refused, declined, unknown };

// Whether any of the step's money effects acts on this variant.
bool acts_on(const step_effects& e, const variant& v) {
  using namespace effect;
  return (e.has(holds | posts_hold | voids_hold) && v.holds) || (e.has(calls_provider) && v.provider) ||
         (e.has(gives_back_charge | books_incoming) && v.provider && !v.outgoing) || (e.has(books_direct) && !v.provider);
}

class walker {
public:
  walker(kind k, const std::vector<flow_step_view>& flow) : k_(k), flow_(flow) {
    for (size_t i = 0; i < flow.size();) {
      size_t end = i + 1;
      if (flow[i].group != 0)
        while (end < flow.size() && flow[end].group == flow[i].group) ++end;
      batches_.push_back({i, end});
      i = end;
    }
  }

  std::vector<flow_violation> run() {
    check_static();
    for (const variant& v : variants_of(k_)) {
      v_ = v;
      seen_.clear();
      walk(0, money{});
    }
    std::stable_sort(found_.begin(), found_.end(), [](const flow_violation& a, const flow_violation& b) {
      return std::make_pair(a.invariant, a.step) < std::make_pair(b.invariant, b.step);
    });
    return found_;
  }

private:
  kind k_;
  const std::vector<flow_step_view>& flow_;
  std::vector<std::pair<size_t, size_t>> batches_;
  variant v_{};
  std::vector<flow_violation> found_;
  std::set<std::tuple<flow_invariant, size_t, bool>> reported_;
  std::set<std::pair<size_t, decltype(money{}.key())>> seen_;

  const step_effects* fx(const std::string& step) const { return effects_of(step); }
  const std::string& step_name(size_t i) const { return flow_[i].step; }

  void report(flow_invariant inv, size_t step, bool on_compensate, const std::string& detail) {
    if (step == none) step = flow_.empty() ? 0 : flow_.size() - 1;
    if (!reported_.insert({inv, step, on_compensate}).second) return;
    found_.push_back({inv, step, on_compensate, std::string(words(inv)) + ": " + detail});
  }

  // The rules that need no path: a step for another kind; a money step without its
  // compensation (a failure path may not exist today, but the step moves money).
  void check_static() {
    const auto vs = variants_of(k_);
    for (size_t i = 0; i < flow_.size(); ++i) {
      for (const std::string* name : {&flow_[i].step, &flow_[i].compensate}) {
        const step_effects* e = name->empty() ? nullptr : fx(*name);
        if (e && (e->flows & flow_bit(k_)) == 0)
          report(flow_invariant::step_serves_kind, i, name == &flow_[i].compensate,
                 *name + " does not serve a " + std::string(payments::name(k_)) + " flow");
      }
      const step_effects* e = fx(flow_[i].step);
      if (!e || e->compensation.empty()) continue;
      bool needed = false;
      for (const variant& v : vs)
        needed = needed || (e->has(effect::holds) && v.holds) || (e->has(effect::calls_provider) && v.provider && !v.outgoing);
      if (needed && flow_[i].compensate != e->compensation)
        report(flow_invariant::money_step_compensated, i, true,
               flow_[i].step + " moves money and needs compensate: " + std::string(e->compensation) +
                   (flow_[i].compensate.empty() ? "" : ", not " + flow_[i].compensate));
    }
  }

  bool may_refuse(const step_effects& e, const money& pre) const {
    if (!e.has(effect::may_refuse)) return false;
    if (e.has(effect::money) && !acts_on(e, v_)) return false; // nothing to do: answers ok
    // a hold the ledger set aside is posted for sure, unless the step refuses by voiding it
    if (e.has(effect::posts_hold) && v_.holds && pre.hold == hold_state::pending && !e.has(effect::voids_on_refusal))
      return false;
    return true;
  }

  std::vector<outcome> outcomes_of(size_t i, const money& pre) const {
    const step_effects* e = fx(step_name(i));
    if (!e) return {outcome::ok};
    if (e->has(effect::calls_provider) && v_.provider) {
      if (pre.provider == provider_state::moved) return {outcome::ok}; // the same payment id: its first outcome
      return {outcome::ok, outcome::refused, outcome::declined, outcome::unknown};
    }
    if (may_refuse(*e, pre)) return {outcome::ok, outcome::refused};
    return {outcome::ok};
  }

  // The effects of step `i` that went through (`compensating`: run as a compensation).
  void apply(size_t i, const std::string& step, const money& pre, money& cur, bool compensating) {
    const step_effects* e = fx(step);
    if (!e) return;
    const bool refund = v_.k == kind::refund;
    const auto held_first = refund ? flow_invariant::refund_bounded : flow_invariant::funds_held_first;
    if (e->has(effect::routes)) cur.routed = true;
    if (e->has(effect::holds) && v_.holds && cur.hold == hold_state::none) {
      cur.hold = hold_state::pending;
      cur.hold_step = i;
    }
    if (e->has(effect::posts_hold) && v_.holds) {
      if (pre.hold != hold_state::pending && !compensating) // as a compensation: nothing to post, it fails
        report(held_first, i, compensating,
               step + " posts a hold no step placed before it in " + v_.what +
                   ": hold_funds (compensate: release_hold) must run before it, in an earlier group");
      else if (v_.outgoing && pre.provider != provider_state::moved)
        report(flow_invariant::settle_after_provider, i, compensating,
               step + " posts the hold of " + v_.what + " before provider_call paid out: it must run after it");
      if (pre.hold == hold_state::pending) {
        cur.hold = hold_state::posted;
        if (!v_.outgoing) {
          cur.moved = true;
          cur.move_step = i;
        }
      }
    }
    if (e->has(effect::voids_hold) && v_.holds && cur.hold == hold_state::pending) cur.hold = hold_state::voided;
    if (e->has(effect::calls_provider) && v_.provider) {
      if (!pre.routed)
        report(flow_invariant::route_before_provider, i, compensating,
               step + " has no channel: route must run before it, in an earlier group");
      if (v_.outgoing && pre.hold != hold_state::pending && pre.hold != hold_state::posted)
        report(held_first, i, compensating,
               step + (refund ? " refunds" : " pays out") + " through the provider with nothing held in " + v_.what +
                   ": hold_funds (compensate: release_hold) must run before it, in an earlier group");
      if (cur.provider_step == none) cur.provider_step = i;
    }
    if (e->has(effect::gives_back_charge) && v_.provider && !v_.outgoing && cur.provider == provider_state::moved && !cur.given_back) {
      cur.given_back = true;
      cur.give_back_step = i;
    }
    if (e->has(effect::books_incoming) && v_.provider && !v_.outgoing) {
      if (pre.provider != provider_state::moved)
        report(flow_invariant::book_after_confirmation, i, compensating,
               step + " books " + v_.what + " before provider_call confirmed it: provider_call must run before it, "
                   "in an earlier group");
      cur.credited = true;
      cur.move_step = i;
    }
    if (e->has(effect::books_direct) && !v_.provider) {
      cur.moved = true;
      cur.move_step = i;
    }
  }

  void walk(size_t b, money m) {
    if (!seen_.insert({b, m.key()}).second) return;
    if (b == batches_.size()) {
      succeeded(m);
      return;
    }
    const auto [first, end] = batches_[b];
    std::vector<std::vector<outcome>> choices;
    size_t product = 1;
    for (size_t i = first; i < end; ++i) {
      choices.push_back(outcomes_of(i, m));
      product = std::min(product * choices.back().size(), combinations_max + 1);
    }
    std::vector<size_t> pick(choices.size(), 0);
    if (product <= combinations_max) {
      for (;;) {
        run_batch(b, m, choices, pick);
        size_t d = 0;
        while (d < pick.size() && ++pick[d] == choices[d].size()) pick[d++] = 0;
        if (d == pick.size()) break;
      }
      return;
    }
    run_batch(b, m, choices, pick); // all ok, then each step alone deviating
    for (size_t d = 0; d < pick.size(); ++d)
      for (size_t o = 1; o < choices[d].size(); ++o) {
        std::fill(pick.begin(), pick.end(), 0);
        pick[d] = o;
        run_batch(b, m, choices, pick);
      }
  }

  void run_batch(size_t b, const money& pre, const std::vector<std::vector<outcome>>& choices,
                 const std::vector<size_t>& pick) {
    const auto [first, end] = batches_[b];
    money cur = pre;
    size_t failed_at = none;
    bool unknown = false;
    for (size_t i = first; i < end; ++i) {
      const outcome o = choices[i - first][pick[i - first]];
      const step_effects* e = fx(step_name(i));
      if (o == outcome::refused) {
        if (e && e->has(effect::voids_on_refusal) && v_.holds && cur.hold == hold_state::pending) cur.hold = hold_state::voided;
        if (failed_at == none) failed_at = i;
        continue;
      }
      apply(i, step_name(i), pre, cur, false);
      if (e && e->has(effect::calls_provider) && v_.provider && cur.provider != provider_state::moved) {
        if (o == outcome::ok) cur.provider = provider_state::moved;
        if (o == outcome::declined) cur.provider = provider_state::declined;
        if (o == outcome::unknown) cur.provider = provider_state::unknown;
      }
      if (o == outcome::declined && failed_at == none) failed_at = i;
      if (o == outcome::unknown) unknown = true;
    }
    for (size_t i = first; i < end; ++i) cur.done.push_back(i);
    if (failed_at != none) {
      failed(cur, failed_at);
      return;
    }
    if (!unknown) {
      walk(b + 1, cur);
      return;
    }
    // parked: the provider tells success (on), a decline (fail), or never (review, a case)
    money told = cur;
    told.provider = provider_state::moved;
    walk(b + 1, told);
    money declined = cur;
    declined.provider = provider_state::declined;
    failed(declined, cur.provider_step);
  }

  // The flow fails at step `at`: compensations newest first, then the money must be back.
  void failed(money m, size_t at) {
    for (auto it = m.done.rbegin(); it != m.done.rend(); ++it)
      if (!flow_[*it].compensate.empty()) {
        const money pre = m;
        apply(*it, flow_[*it].compensate, pre, m, true);
      }
    if (m.provider == provider_state::unknown)
      report(flow_invariant::outcome_known_on_failure, m.provider_step, false,
             step_name(at) + " can fail while provider_call's outcome is unknown in " + v_.what +
                 ": run provider_call in a group of its own");
    if (v_.holds && m.hold == hold_state::pending)
      report(flow_invariant::hold_settled_or_released, m.hold_step, true,
             "the hold of " + std::string(v_.what) + " stays pending when " + step_name(at) +
                 " fails: hold_funds needs compensate: release_hold");
    if (v_.outgoing && m.provider == provider_state::moved && m.hold != hold_state::posted)
      report(flow_invariant::money_step_compensated, at, false,
             step_name(at) + " can fail after provider_call paid out in " + v_.what +
                 ", which nothing can undo: only steps that cannot fail (settle_hold, book_refund) may follow it");
    if (v_.provider && !v_.outgoing && m.provider == provider_state::moved && !m.given_back && !m.credited)
      report(flow_invariant::money_step_compensated, m.provider_step, true,
             "provider_call takes money in and " + step_name(at) + " can fail after it in " + v_.what +
                 ": provider_call needs compensate: provider_refund");
    if (m.credited || m.moved || (v_.outgoing && m.hold == hold_state::posted))
      report(flow_invariant::money_step_compensated, at, false,
             step_name(at) + " can fail after " + step_name(m.move_step == none ? at : m.move_step) +
                 " moved the money of " + v_.what + ", which has no compensation: it must come last");
  }

  void succeeded(const money& m) {
    const size_t last = flow_.empty() ? 0 : flow_.size() - 1;
    if (v_.provider && m.provider != provider_state::moved)
      report(flow_invariant::success_books_money, last, false,
             std::string(v_.what) + " succeeds without the provider moving its money: the flow needs provider_call");
    if (v_.holds && m.hold == hold_state::pending)
      report(flow_invariant::hold_settled_or_released, m.hold_step, false,
             std::string(v_.what) + " succeeds with its hold still pending: " +
                 (v_.k == kind::withdrawal ? "settle_hold" : v_.k == kind::pay ? "capture" : "book_refund") +
                 " must post it" + (v_.provider ? " after provider_call" : ""));
    if (v_.holds && m.hold == hold_state::voided)
      report(flow_invariant::hold_settled_or_released, m.hold_step, false,
             std::string(v_.what) + " succeeds with its hold released: the money was never taken");
    if (v_.provider && !v_.outgoing && m.provider == provider_state::moved && !m.credited)
      report(flow_invariant::success_books_money, m.provider_step, false,
             "provider_call takes in " + std::string(v_.what) + " and no step books it after: " +
                 (v_.k == kind::topup ? "book_topup" : "capture") + " must follow provider_call");
    if (m.given_back)
      report(flow_invariant::success_books_money, m.give_back_step, false,
             std::string(v_.what) + " succeeds after provider_refund gave the charge back: provider_refund is a "
                 "compensation, not a step of a path that succeeds");
    if (!v_.provider && !v_.holds && !m.moved)
      report(flow_invariant::success_books_money, last, false,
             std::string(v_.what) + " succeeds without moving its money: the flow needs " +
                 (v_.k == kind::transfer ? "book_transfer" : "book_refund"));
    if (!v_.provider && v_.holds && m.hold == hold_state::none)
      report(flow_invariant::success_books_money, last, false,
             std::string(v_.what) + " succeeds without moving its money: hold_funds and capture must take it");
  }
};

} // namespace

std::vector<flow_violation> check_flow(kind k, const std::vector<flow_step_view>& flow) {
  return walker(k, flow).run();
}

} // namespace kassa::ledger::payments
