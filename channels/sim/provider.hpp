#pragma once
// One simulated provider: payments, credentials, the callback and settlement feeds, forced
// outcomes and injected discrepancies. Pure: time comes in as an argument and the answer says
// how the server should deliver it (after a delay, held silent, or by closing the connection),
// so the server owns every timer and socket and this class owns every decision.
#include <cstdint>
#include <deque>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "channels/protocol.hpp"
#include "channels/sim/sim_config.hpp"

namespace kassa::channels::sim {

// How the server delivers an answer.
enum class delivery : uint8_t {
  answer = 0, // send status/body after delay_ms
  hold = 1,   // say nothing for delay_ms, then close (the client times out first)
  close = 2,  // close the connection after delay_ms without an answer
};

struct reply {
  unsigned status = 200;
  std::string body;
  uint64_t delay_ms = 0;
  delivery how = delivery::answer;
};

// An outcome queued by POST /v1/admin/force, taken by the next payment call.
enum class forced : uint8_t {
  none = 0,
  succeeded,
  declined,
  partial,
  mismatch,
  pending,
  late_success,
  duplicate_callback,
  timeout,
  unknown,
  statement_missing,
  statement_mismatch,
  statement_extra,
};
const char* name(forced f);
bool parse_forced(std::string_view text, forced& out);

// A discrepancy the simulator put in, for tests to compare with what reconciliation found:
// into the statement ("missing", "amount_mismatch", "extra"), or into a payment, which says
// so in its answer: "payment_mismatch" (it moved another amount than asked),
// "payment_partial" (it moved part of it) and "payment_late" (answered declined, it succeeded
// later: noted when it moves).
struct injected {
  std::string type;
  u128 payment_id = 0;
  u128 amount_expected = 0; // what moved (0 for extra); for a payment's, what was asked
  u128 amount_reported = 0; // what the statement says (0 for missing); for a payment's, what moved
  uint64_t sequence = 0;    // the statement entry (0 for missing and a payment's)
  pay_kind kind = pay_kind::charge; // the payment's kind (for extra, the line's)
};

class provider {
public:
  provider(std::string name, behaviour b, uint64_t seed);

  reply credentials(uint64_t now_ms);
  reply payment(std::string_view body, uint64_t now_ms);
  reply status(std::string_view payment_id_text, uint64_t now_ms);
  reply events(uint64_t after, uint64_t limit, uint64_t now_ms);
  reply statement(uint64_t after, uint64_t limit, uint64_t now_ms);
  reply admin_behaviour(std::string_view body);
  reply admin_force(std::string_view body);
  reply admin_injected() const;
  reply admin_stats(uint64_t now_ms, uint64_t connections) const;

  const std::string& name() const { return name_; }

private:
  struct payment_record {
    payment_request req;
    pay_status status = pay_status::pending;
    u128 amount_moved = 0;
    u128 refunded = 0; // charges: the sum of succeeded refunds
    std::string ref;
  };
  // A state change due later: a pending payment's final status, or a late success.
  struct due {
    uint64_t at_ms;
    uint64_t order; // ties keep submission order
    u128 payment_id;
    pay_status status;
    u128 amount;
    bool duplicate;
    forced statement_fault;
    bool late = false; // a late success (answered declined first)
    bool operator>(const due& o) const { return at_ms != o.at_ms ? at_ms > o.at_ms : order > o.order; }
  };

  uint64_t draw_ppm() { return rng_() % 1'000'000; }
  bool hits(uint64_t ppm) { return ppm != 0 && draw_ppm() < ppm; }
  uint64_t latency_ms();
  forced take_forced();
  void release_due(uint64_t now_ms);
  // Money moves (or not) for `p`: refund room is checked, statement and events written.
  void settle(payment_record& p, pay_status status, u128 amount, bool duplicate, forced statement_fault);
  // Whether a payment of another amount (mismatch_delta more) can move for `req`: a refund
  // only within what its charge moved and has not refunded yet. One that cannot is answered
  // as asked instead: a mismatch fault never turns into a decline.
  bool mismatch_fits(const payment_request& req) const;
  void emit_event(const payment_record& p, bool duplicate);
  void write_statement(const payment_record& p, forced fault);
  void note_injected(injected i);
  reply answer(const payment_record& p, uint64_t delay_ms) const;
  reply error(unsigned status, std::string_view message);
  bool token_valid(const std::string& token, uint64_t now_ms) const;

  std::string name_;
  behaviour b_;
  std::mt19937_64 rng_;
  std::unordered_map<u128, payment_record> payments_;
  std::unordered_map<std::string, uint64_t> tokens_; // token -> expiry
  std::deque<forced> forced_;
  std::priority_queue<due, std::vector<due>, std::greater<due>> due_;
  uint64_t due_order_ = 0;
  std::deque<event> events_;              // sequence events_.front().sequence ... contiguous
  uint64_t event_sequence_ = 0;
  std::deque<statement_line> statement_;
  uint64_t statement_sequence_ = 0;
  std::vector<injected> injected_;
  uint64_t ref_next_ = 1;
  std::map<std::string, uint64_t> counts_;
};

} // namespace kassa::channels::sim
