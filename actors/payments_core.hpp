#pragma once
// Inside the payment core: what the gateway, the order actors, the flow supervisors and the
// step plugins share. Not for use outside actors/payments*.cpp and actors/steps/.
#include <caf/all.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/channel.hpp"
#include "actors/messages.hpp"
#include "actors/payment_messages.hpp"
#include "actors/payments.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/payments/rules.hpp"
#include "ledger/store/payments_store.hpp"

namespace kassa::actors::pay {

using ledger::payments::kind;
using ledger::payments::order;
using ledger::payments::order_state;
using ledger::payments::payment_command;
using ledger::payments::payment_result;
using ledger::payments::source;
using ledger::store::journal_entry;

// What every actor of the payment core reads; set up once at boot, never changed.
struct env {
  config::payments_config cfg;
  uint32_t shards = 1;
  directory_actor directory;
  caf::actor writer, reconciler, gateway;
  struct provider {
    std::string name;
    uint32_t index = 0;
    config::provider_config cfg;
    caf::actor channel;
  };
  std::vector<provider> providers;
  std::shared_ptr<ledger::store::payments_store> store;
  std::function<uint64_t()> clock;
  std::function<void(const std::string&)> log_info, log_error;

  const provider* find_provider(const char* name16) const; // by a zero-padded name
  const config::fee_config* fee(config::payment_type t, uint32_t ledger) const;
  const config::limit_config* limit(config::payment_type t, uint32_t ledger) const;
};
using env_ptr = std::shared_ptr<const env>;

// --- messages inside the core ---------------------------------------------------------------

// gateway/order -> flow supervisor: run (or resume) the flow of this row.
struct flow_start {
  request_context ctx;
  payment_command cmd;
  order row;    // state processing (new) or whatever the store held (resume)
  order parent; // pay/refund: the order; refund: also `item` below
  order item;   // refund: the pay item being refunded
  bool resume = false;
};
// flow supervisor -> its owner (order actor or gateway): the row has reached a state the
// client may be told about. `final` false: still running (unknown outcome, held partial).
struct flow_report {
  order row;
  payment_result result = payment_result::ok;
  bool final = false;
  // the final report of a pay item or a refund: the row and these entries are not on disk
  // yet; the order actor writes them with the order's row, in one write
  std::vector<journal_entry> journal;
};
// flow -> order actor: may this pay item count towards the order? (the order's mailbox is
// the compare-and-set of "what is still to pay")
struct capture_request {
  u128 item_id = 0;
  u128 amount = 0;
  bool force = false; // the ledger shows the item's money went to the merchant: it counts
};
struct capture_reply {
  bool ok = false; // false: the order is paid already: the item is a duplicate payment
};
// gateway -> flow: a provider callback (or a late one) about the flow's payment.
struct flow_event {
  provider_event ev;
};
// step plugins -> gateway: per-day limits (the gateway owns the counters).
struct limit_reserve {
  u128 row_id = 0;
  u128 account_id = 0;
  config::payment_type type = config::payment_type::topup;
  uint32_t ledger = 0;
  uint32_t day = 0;
  u128 amount = 0;
};
struct limit_release {
  u128 row_id = 0;
};
// gateway/order -> a late flow: a provider said succeeded after the row was final.
struct late_start {
  order row;
  provider_event ev;
};

// late flow of a refund -> gateway -> the order actor: reserve room for a refund the provider
// made after kassa had failed it (end = false; answered true when the order has the room), or
// write its final row with the order's counts (end = true; answered true once durable).
struct late_refund {
  order row;
  bool end = false;
  std::vector<journal_entry> journal;
};

// gateway -> order actor
struct order_command {
  request_context ctx;
  payment_command cmd;
  uint64_t sequence = 0; // for the row the command creates
  // Flows the gateway admitted for it (payments.orders_inflight_max): a refund split in more
  // parts than this is answered busy.
  uint32_t room = 1;
};
struct order_resume {
  u128 item_id = 0; // 0: every unfinished item; else this item (a provider spoke up late)
};
struct order_idle {
  u128 order_id = 0;
  uint64_t commands = 0; // commands the order actor has taken
};
struct flow_register {
  uint64_t sequence = 0;
  caf::actor flow; // invalid: unregister
};

using step_timeout_atom = caf::atom_constant<caf::atom("stepto")>;
using query_atom = caf::atom_constant<caf::atom("pquery")>;
using hold_atom = caf::atom_constant<caf::atom("phold")>;
using flow_down_atom = caf::atom_constant<caf::atom("flowdown")>;
using timer_atom = caf::atom_constant<caf::atom("ptimer")>;

// Each message also has an `inspect` overload, so that CAF can serialise it (the records' in
// actors/serial_payments.hpp).

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flow_start& x) {
  return f(caf::meta::type_name("kassa.flow_start"), x.ctx, x.cmd, x.row, x.parent, x.item, x.resume);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flow_report& x) {
  return f(caf::meta::type_name("kassa.flow_report"), x.row, serial::enum_of(x.result), x.final, x.journal);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capture_request& x) {
  return f(caf::meta::type_name("kassa.capture_request"), serial::wide{&x.item_id}, serial::wide{&x.amount},
           x.force);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capture_reply& x) {
  return f(caf::meta::type_name("kassa.capture_reply"), x.ok);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flow_event& x) {
  return f(caf::meta::type_name("kassa.flow_event"), x.ev);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, limit_reserve& x) {
  return f(caf::meta::type_name("kassa.limit_reserve"), serial::wide{&x.row_id}, serial::wide{&x.account_id},
           serial::enum_of(x.type), x.ledger, x.day, serial::wide{&x.amount});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, limit_release& x) {
  return f(caf::meta::type_name("kassa.limit_release"), serial::wide{&x.row_id});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, late_start& x) {
  return f(caf::meta::type_name("kassa.late_start"), x.row, x.ev);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, late_refund& x) {
  return f(caf::meta::type_name("kassa.late_refund"), x.row, x.end, x.journal);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_command& x) {
  return f(caf::meta::type_name("kassa.order_command"), x.ctx, x.cmd, x.sequence, x.room);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_resume& x) {
  return f(caf::meta::type_name("kassa.order_resume"), serial::wide{&x.item_id});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_idle& x) {
  return f(caf::meta::type_name("kassa.order_idle"), serial::wide{&x.order_id}, x.commands);
}
// The flow travels as CAF serialises any actor handle (its node and actor id).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flow_register& x) {
  return f(caf::meta::type_name("kassa.flow_register"), x.sequence, x.flow);
}

// --- the gateway and the order actors (payments.cpp, order.cpp) --------------------------------

// The reply a command gets from its row as it stands, with result `r`.
ledger::payments::payment_reply reply_of(const order& row, payment_result r);
// The row a command creates.
order new_row(const env& e, const request_context& ctx, const payment_command& c, uint64_t sequence);
// Parts a refund may be split in over an order's items; the gateway keeps this many row
// sequences for a refund.
constexpr size_t refund_parts_max = 8;
// An order's actor (order.cpp): the one owner of a business order's counts.
caf::actor spawn_order(caf::actor_system& sys, env_ptr e, const order& row);

// --- the flow supervisor and its steps --------------------------------------------------------

struct flow_state;
using flow_actor = caf::stateful_actor<flow_state>;

// How a step ended. `ok`: on to the next step. `unknown`: the provider's answer is not known
// (the supervisor parks the flow and inquires). Any other result fails the flow: the
// compensations of the steps done so far run in reverse order.
using step_done = std::function<void(payment_result)>;

// A step plugin: one async message exchange (or a few) on behalf of the flow. It must call
// `done` exactly once, from a message handler of `self`, and never block.
class step {
public:
  virtual ~step() = default;
  virtual void run(flow_actor* self, step_done done) = 0;
  // Whether a timeout leaves the outcome unknown (a provider call) instead of failing.
  virtual bool uncertain() const { return false; }
  // Whether a timeout runs the step again (bookings: their ids make a second run harmless,
  // and failing would compensate money that may have moved).
  virtual bool rerun_on_timeout() const { return false; }
  // Whether `r` says "not now" rather than "no": the step may answer otherwise when run again
  // (the ledger or the store turned it away, a provider's token service failed). A resumed
  // flow runs such a step again instead of failing: its first life may have gone past it and
  // moved money, so it must reach the same end.
  virtual bool transient(payment_result r) const {
    return r == payment_result::busy || r == payment_result::store_unavailable;
  }
};
using step_factory = std::unique_ptr<step> (*)();

// The registry: every step a YAML flow may name (actors/steps/registry.cpp).
const std::map<std::string, step_factory>& steps();

// What a running flow knows. Steps read and write it through `self->state`.
struct flow_state {
  static inline const char* name = "kassa.flow";
  env_ptr e;
  caf::actor owner; // the order actor (pay, refund) or the gateway
  request_context ctx;
  payment_command cmd;
  order row, parent, item;
  kind k = kind::none;
  const std::vector<config::flow_step>* pipeline = nullptr;
  size_t next = 0;                        // the next step to start
  std::vector<size_t> done_steps;         // finished steps, in order (for compensation)
  std::vector<std::unique_ptr<step>> running;
  std::vector<std::unique_ptr<step>> retired; // finished steps, freed with the flow
  uint64_t run_id = 0;                    // tells stale timeouts apart
  int provider = -1;                      // env::providers index once routed
  std::vector<int> refused_by;            // channels that refused the call unsent (failover)
  uint64_t call_epoch = 0;                // moves when a provider step times out: its outcome
                                          // is decided, later answers start nothing
  std::string credential;
  bool provider_known = false;            // the provider's outcome is known
  call_result provider_result;
  u128 fee = 0;
  bool held = false;                      // hold_funds wrote a pending hold
  bool limit_reserved = false;
  bool parked = false;                    // inquiring about an unknown outcome
  bool resume = false;                    // run again after a restart: the provider may have
                                          // seen this payment already
  uint32_t queries = 0;
  payment_result result = payment_result::ok;
  std::vector<journal_entry> journal;     // written with the next row write
  bool finished = false;
  std::function<void(uint64_t, uint64_t)> on_timeout;        // the running batch's timeouts
  std::function<void()> on_hold;                             // a held partial payment's expiry
  std::map<uint64_t, std::function<void()>> timers;          // after(): pending callbacks
  uint64_t timer_next = 0;

  // helpers for steps
  const env::provider* channel() const { return provider >= 0 ? &e->providers[size_t(provider)] : nullptr; }
  void note(const char* step, uint32_t result, u128 amount);
  // "payment=ID order=ID trace=HEX: " for log lines: every line names its flow's context
  std::string tag() const;
  // The provider's id of this row's call `role`, or of another row's (a refund names its item's
  // charge): installation, generation, sequence and role (ledger/payments/ids.hpp).
  u128 payment_id(ledger::payments::call_role role = ledger::payments::call_role::main) const {
    return e->store->ids().id(row.sequence, role);
  }
  u128 payment_id_of(const order& other) const { return e->store->ids().id(other.sequence); }
};

// Ledger bookings: sends `transfers` (all kassa's own, linked as given) to the directory and
// maps the outcome: ok when every event is ok or `exists`. An attempt the ledger undid
// (`id_already_failed`) is booked again under the next attempt's ids (ledger/payments/ids.hpp).
void book(flow_actor* self, std::vector<ledger::transfer> transfers, std::function<void(payment_result)> then);
// What the ledger holds of this row's bookings of `legs` (first attempt: kassa's bookings within
// one shard), by leg; then(busy, {}) when the ledger did not answer. A resumed flow asks it
// what its first life booked.
using bookings = std::map<ledger::payments::leg, ledger::transfer>;
void find_bookings(flow_actor* self, std::vector<ledger::payments::leg> legs,
                   std::function<void(payment_result, const bookings&)> then);
ledger::transfer make_transfer(const flow_state& st, ledger::payments::leg l, u128 debit, u128 credit, u128 amount,
                               uint16_t flags = 0, u128 pending_id = 0);
// The payment core's account for `role` in the shard of `near` (so bookings stay in-shard).
u128 chart_account(const env& e, ledger::payments::role r, uint32_t provider, u128 near, uint32_t ledger);
payment_result map_transfer_result(ledger::transfer_result r);
// The fee `payments.fees` sets for a payment of type `t` in `ledger` on `amount` (0 without an
// entry); false when it overflows.
bool fee_for(const env& e, config::payment_type t, uint32_t ledger, u128 amount, u128& fee);
// Whether the row's payment goes through a provider (topup, withdrawal, or a pay item or
// refund whose source is a provider).
bool uses_provider(const flow_state& st);
// Runs the callback after() armed under `id` (the timer_atom handler of every flow actor).
void fire_timer(flow_actor* self, uint64_t id);
config::payment_type payment_type_of(kind k);

caf::actor spawn_flow(caf::actor_system& sys, env_ptr e, caf::actor owner, flow_start start);
// A flow ends with the actor that runs it (kassad stopping): its timers and status queries
// would otherwise keep it, and the process, alive. Its row stays as last written and runs
// again at the next start.
void follow_owner(flow_actor* self);
caf::actor spawn_late_flow(caf::actor_system& sys, env_ptr e, late_start start);

// Writes the flow's row and the journal gathered so far; then(true) once durable.
void persist(flow_actor* self, std::function<void(bool)> then);

// Runs `fn` in `self` after `ms` milliseconds (a retry's backoff).
void after(flow_actor* self, uint32_t ms, std::function<void()> fn);
void compensation_refund(flow_actor* self, u128 amount, std::function<void(u128 moved)> then);

// Money parked in suspense, or an outcome never learnt: a reconciliation case.
void open_case(flow_actor* self, u128 amount_internal, u128 amount_provider);
void open_case_unknown(flow_actor* self);

// Gives `amount` that the provider took for this row back through the provider (the
// compensation refund), then books it out of suspense. then(ok) once done; on failure the
// money stays in suspense with a case open.
void refund_from_suspense(flow_actor* self, u128 amount, std::function<void(bool)> then);

// A row's journal entry.
journal_entry entry(const env& e, const request_context& ctx, const order& row, const char* actor, const char* step,
                    uint32_t result, u128 amount);

} // namespace kassa::actors::pay
