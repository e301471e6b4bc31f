// The payment core's gateway (the order actors are in order.cpp).
//  - The gateway takes submit_payments and lookup_orders from sessions. It checks each
//    command's form and idempotency key, assigns row sequences, owns the per-day limit
//    counters, runs topup / withdrawal / transfer flows itself (one flow actor each), and hands
//    pay and refund to the order's actor. It routes provider callbacks to the flow waiting for
//    them, and books a late success after a payment had failed.
//  - An order actor owns one business order: what is still to pay, what is captured, what is
//    refunded and what refunds are in flight. Its mailbox is the compare-and-set that keeps
//    concurrent pays from overpaying and concurrent refunds from exceeding what was captured.
#include "actors/payments.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "actors/directory.hpp"
#include "actors/mailbox.hpp"
#include "actors/payments_core.hpp"
#include "actors/payments_writer.hpp"
#include "actors/steps/steps.hpp"
#include "actors/unexpected.hpp"
#include "ledger/payments/flow_check.hpp"
#include "metrics/shared.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors {

namespace {

ledger::payments::kind kind_of(config::flow_name flow) {
  using ledger::payments::kind;
  switch (flow) {
    case config::flow_name::topup: return kind::topup;
    case config::flow_name::withdrawal: return kind::withdrawal;
    case config::flow_name::transfer: return kind::transfer;
    case config::flow_name::pay: return kind::pay;
    case config::flow_name::refund: return kind::refund;
  }
  return kind::none;
}

} // namespace

void check_flows(const config::payments_config& cfg) {
  for (size_t f = 0; f < config::flow_count; ++f) {
    for (const auto& s : cfg.flows.of(static_cast<config::flow_name>(f))) {
      if (!pay::steps().count(s.step)) {
        std::string known;
        for (const auto& [name, _] : pay::steps()) known += (known.empty() ? "" : ", ") + name;
        throw config::step_error(s, "step", "unknown step \"" + s.step + "\" (known: " + known + ")");
      }
      if (!s.compensate.empty() && !pay::steps().count(s.compensate))
        throw config::step_error(s, "compensate", "unknown step \"" + s.compensate + "\"");
    }
  }
  // money conservation: every path of every flow (docs/payments.md, "Flows are checked")
  for (size_t f = 0; f < config::flow_count; ++f) {
    const auto flow = static_cast<config::flow_name>(f);
    const auto& steps = cfg.flows.of(flow);
    std::vector<ledger::payments::flow_step_view> view;
    for (const auto& s : steps) view.push_back({s.step, s.compensate, s.group});
    const auto found = ledger::payments::check_flow(kind_of(flow), view);
    if (!found.empty())
      throw config::step_error(steps.at(found[0].step), found[0].on_compensate ? "compensate" : "step",
                               found[0].message);
  }
}

namespace pay {

namespace lp = ledger::payments;
using ledger::payments::payment_reply;

payment_reply reply_of(const order& row, payment_result r) {
  payment_reply out{};
  out.result = uint32_t(r);
  out.state = row.state;
  out.order_id = row.parent_id != 0 ? row.parent_id : row.id;
  out.amount = row.amount_captured;
  out.fee = ledger::payments::fee_charged(row);
  return out;
}

order new_row(const env& e, const request_context& ctx, const payment_command& c, uint64_t sequence) {
  order row{};
  row.id = c.order_id;
  row.key = c.key;
  row.account_id = c.account_id;
  row.counterparty_id = c.counterparty_id;
  row.amount = c.amount;
  row.trace_id = ctx.trace_id;
  row.created_ns = row.updated_ns = e.clock();
  row.sequence = sequence;
  row.ledger = c.ledger;
  row.kind = c.kind;
  row.state = uint16_t(order_state::processing);
  row.source = c.source;
  std::memcpy(row.provider, c.provider, sizeof row.provider);
  row.user_data_64 = c.user_data_64;
  return row;
}

namespace {


u128 fee_at_start(const env& e, kind k, uint32_t ledger, u128 amount) {
  if (k != kind::withdrawal && k != kind::transfer) return 0; // topup: on what arrives
  u128 fee = 0;
  return fee_for(e, payment_type_of(k), ledger, amount, fee) ? fee : u128_max;
}


// -------------------------------------------------------------------------------- gateway

struct limit_key {
  u128 account;
  int type;
  uint32_t ledger;
  uint32_t day;
  bool operator<(const limit_key& o) const {
    return std::tie(account, type, ledger, day) < std::tie(o.account, o.type, o.ledger, o.day);
  }
};
struct limit_use {
  u128 sum = 0;
  uint32_t count = 0;
};

struct request_agg {
  caf::response_promise rp;
  std::vector<payment_reply> replies;
  size_t outstanding = 0;
};
using agg_ptr = std::shared_ptr<request_agg>;

struct key_waiter {
  agg_ptr agg;
  uint32_t index;
};
struct inflight_key {
  payment_command cmd;
  std::vector<key_waiter> waiters;
};

struct gateway_state {
  static inline const char* name = "kassa.gateway";
  std::shared_ptr<env> e;
  metrics::gauge* mailbox = &metrics::mailbox_depth(metrics::process_registry(), "payments");
  bool ready = false;
  std::vector<std::pair<submit_payments_request, caf::response_promise>> queued; // until ready
  uint64_t sequence = 0;
  std::map<u128, inflight_key> keys;                  // keys whose command is being accepted
  std::map<u128, caf::actor> orders;                  // order actors, by order id
  std::map<u128, uint64_t> orders_sent;               // commands sent to each
  std::unordered_map<uint64_t, caf::actor> flows;     // running flows, by row sequence
  struct relay {
    agg_ptr agg;
    uint32_t index;
  };
  std::map<u128, relay> relays;                       // gateway-run flows' replies, by row id
  std::set<u128> rows_inflight;                       // rows created but not final (order ids)
  std::set<uint64_t> item_flows; // pay and refund commands handed to an order, until their flow
                                 // ends or the order refuses them (by row sequence)
  uint64_t traces = 0;
  std::map<limit_key, limit_use> limits;
  std::map<u128, std::pair<limit_key, u128>> limit_rows;
};
using gateway_actor = caf::stateful_actor<gateway_state>;
using relay = gateway_state::relay;

void answer(gateway_actor* self, agg_ptr agg, uint32_t index, payment_reply r);

// Payments taken and not final, for payments.orders_inflight_max: rows being written or whose
// flow runs, and pay items and refunds handed to their order.
size_t admitted(const gateway_state& st) { return st.rows_inflight.size() + st.item_flows.size(); }

// A refund split in parts answers what its parts (the rows of its order with its key) gave
// back together, with the order's state.
void split_refund_reply(const env& e, const order& first, payment_reply& out) {
  std::vector<order> rows;
  order o{};
  bool have = false;
  if (!e.store->children(first.parent_id, rows).ok() || !e.store->get_row(first.parent_id, o, have).ok() || !have) return;
  size_t parts = 0;
  u128 moved = 0;
  for (const order& r : rows) {
    if (r.kind != uint16_t(kind::refund) || r.key != first.key) continue;
    ++parts;
    moved += r.amount_captured;
  }
  if (parts < 2) return;
  out.amount = moved;
  out.state = o.state;
}

void key_done(gateway_actor* self, u128 key, const payment_reply& r, bool stored) {
  auto& st = self->state;
  auto it = st.keys.find(key);
  if (it == st.keys.end()) return;
  auto waiters = std::move(it->second.waiters);
  st.keys.erase(it);
  for (auto& w : waiters) {
    payment_reply copy = r;
    if (stored) copy.result = uint32_t(payment_result::exists);
    answer(self, w.agg, w.index, copy);
  }
}

void answer(gateway_actor* self, agg_ptr agg, uint32_t index, payment_reply r) {
  r.index = index;
  agg->replies[index] = r;
  if (--agg->outstanding == 0) agg->rp.deliver(payments_reply{outcome::ok, std::move(agg->replies)});
}

caf::actor order_actor_for(gateway_actor* self, const order& row) {
  auto& st = self->state;
  auto it = st.orders.find(row.id);
  if (it != st.orders.end()) return it->second;
  auto a = spawn_order(self->system(), env_ptr(st.e), row);
  st.orders[row.id] = a;
  st.orders_sent[row.id] = 0;
  return a;
}

void gateway_start_flow(gateway_actor* self, request_context ctx, payment_command cmd, order row, bool resume) {
  auto& st = self->state;
  flow_start fs;
  fs.ctx = ctx;
  fs.cmd = cmd;
  fs.row = row;
  fs.resume = resume;
  auto flow = spawn_flow(self->system(), st.e, caf::actor_cast<caf::actor>(self), fs);
  self->monitor(flow); // one that fails before its final report must not hold a slot for good
  st.flows[row.sequence] = flow;
  st.rows_inflight.insert(row.id);
  if (!resume)
    self->delayed_send(self, std::chrono::milliseconds(st.e->cfg.flow_wait_ms), step_timeout_atom::value,
                       u128_hi(row.id), u128_lo(row.id));
}

// Answers command agg[index] with `r` and nothing else.
void refuse_command(gateway_actor* self, const payment_command& c, agg_ptr agg, uint32_t index, payment_result r) {
  payment_reply out{};
  out.result = uint32_t(r);
  out.order_id = c.order_id;
  answer(self, agg, index, out);
}

// The idempotency key: a command being accepted (the reply waits for it), or one the store
// holds (answered `exists` with its row). False: the key is new.
bool key_seen(gateway_actor* self, const payment_command& c, agg_ptr agg, uint32_t index) {
  auto& st = self->state;
  const env& e = *st.e;
  if (auto it = st.keys.find(c.key); it != st.keys.end()) {
    if (!lp::same_fields(it->second.cmd, c)) refuse_command(self, c, agg, index, payment_result::exists_with_different_fields);
    else it->second.waiters.push_back({agg, index});
    return true;
  }
  payment_command seen{};
  bool found = false;
  if (auto err = e.store->get_key(c.key, seen, found); !err.ok()) {
    refuse_command(self, c, agg, index, payment_result::store_unavailable);
    return true;
  }
  if (!found) return false;
  if (!lp::same_fields(seen, c)) {
    refuse_command(self, c, agg, index, payment_result::exists_with_different_fields);
    return true;
  }
  const u128 row_id = (c.kind == uint16_t(kind::pay) || c.kind == uint16_t(kind::refund)) ? c.key : c.order_id;
  order row{};
  bool have = false;
  e.store->get_row(row_id, row, have);
  payment_reply out = have ? reply_of(row, payment_result::exists) : payment_reply{};
  if (have && c.kind == uint16_t(kind::refund)) split_refund_reply(e, row, out);
  out.result = uint32_t(payment_result::exists);
  answer(self, agg, index, out);
  return true;
}

// A pay or refund goes to its order's actor, which checks it against the order and writes it.
// A refund may be split in parts, each a row with a sequence of its own (these follow) and a
// flow of its own: it takes as many places as are left, and more parts are refused.
void send_to_order(gateway_actor* self, const request_context& ctx, const payment_command& c, const order& o,
                   agg_ptr agg, uint32_t index) {
  auto& st = self->state;
  const env& e = *st.e;
  st.keys[c.key] = inflight_key{c, {}};
  auto a = order_actor_for(self, o);
  ++st.orders_sent[o.id];
  const uint64_t sequence = ++st.sequence;
  uint32_t room = 1;
  if (c.kind == uint16_t(kind::refund)) {
    st.sequence += refund_parts_max - 1;
    room = uint32_t(std::min<size_t>(refund_parts_max, e.cfg.orders_inflight_max - admitted(st)));
  }
  for (uint32_t k = 0; k < room; ++k) st.item_flows.insert(sequence + k);
  self->request(a, caf::infinite, order_command{ctx, c, sequence, room})
      .then(
          [self, agg, index, key = c.key, sequence, room](payment_reply& r) {
            auto& st = self->state;
            // the order actor refuses these before it writes anything; any other answer
            // comes after the row and its key were written
            const auto res = static_cast<payment_result>(r.result);
            const bool stored = res != payment_result::order_not_payable &&
                                res != payment_result::amount_exceeds_order_remaining &&
                                res != payment_result::order_not_refundable &&
                                res != payment_result::refund_exceeds_captured &&
                                res != payment_result::store_unavailable && res != payment_result::busy;
            if (!stored) st.item_flows.erase(sequence); // no flow runs for it
            // places kept for parts that were not made (a part's flow registered before this
            // answer, and is counted until it ends)
            for (uint32_t k = 1; k < room; ++k)
              if (!stored || !st.flows.count(sequence + k)) st.item_flows.erase(sequence + k);
            key_done(self, key, r, stored);
            answer(self, agg, index, r);
          },
          [self, agg, index, key = c.key, oid = c.order_id, sequence, room, a](caf::error&) {
            auto& st = self->state;
            for (uint32_t k = 0; k < room; ++k) st.item_flows.erase(sequence + k);
            // the order's actor is gone: the next command for it starts a new one
            if (auto it = st.orders.find(oid); it != st.orders.end() && it->second == a) {
              st.orders.erase(it);
              st.orders_sent.erase(oid);
            }
            payment_reply r{};
            r.result = uint32_t(payment_result::busy);
            r.order_id = oid;
            key_done(self, key, r, false);
            answer(self, agg, index, r);
          });
}

// Any other command is a new row of its own: written with its key, then (but for an order,
// which only records) its flow starts.
void start_row(gateway_actor* self, const request_context& ctx, const payment_command& c, agg_ptr agg,
               uint32_t index) {
  auto& st = self->state;
  const env& e = *st.e;
  const auto k = static_cast<kind>(c.kind);
  auto served = [&](uint32_t ledger) {
    for (const auto& l : e.cfg.ledgers)
      if (l.ledger == ledger) return true;
    return false;
  };
  if (!served(c.ledger)) return refuse_command(self, c, agg, index, payment_result::ledger_not_served);
  if (st.rows_inflight.count(c.order_id)) return refuse_command(self, c, agg, index, payment_result::order_exists);
  order existing{};
  bool have = false;
  if (auto err = e.store->get_row(c.order_id, existing, have); !err.ok())
    return refuse_command(self, c, agg, index, payment_result::store_unavailable);
  if (have) return refuse_command(self, c, agg, index, payment_result::order_exists);
  if (k != kind::create_order && admitted(st) >= e.cfg.orders_inflight_max)
    return refuse_command(self, c, agg, index, payment_result::busy);
  order row = new_row(e, ctx, c, ++st.sequence);
  if (k == kind::create_order) row.state = uint16_t(order_state::created);
  row.fee = fee_at_start(e, k, c.ledger, c.amount);
  if (row.fee == u128_max) return refuse_command(self, c, agg, index, payment_result::amount_overflow);
  st.keys[c.key] = inflight_key{c, {}};
  st.rows_inflight.insert(row.id);
  payments_write w;
  w.batch.rows.push_back(row);
  w.batch.keys.push_back(c);
  w.batch.journal.push_back(entry(e, ctx, row, "gateway", "accepted", 0, row.amount));
  self->request(e.writer, caf::infinite, std::move(w))
      .then(
          [self, ctx, c, row, agg, index](payments_written& done) {
            auto& st = self->state;
            if (!done.error.ok()) {
              st.rows_inflight.erase(row.id);
              payment_reply r = reply_of(row, payment_result::store_unavailable);
              key_done(self, c.key, r, false);
              answer(self, agg, index, r);
              return;
            }
            if (row.kind == uint16_t(kind::create_order)) {
              st.rows_inflight.erase(row.id);
              payment_reply r = reply_of(row, payment_result::ok);
              key_done(self, c.key, r, true);
              answer(self, agg, index, r);
              return;
            }
            // the key is durable with its row: later repeats read it from the store
            key_done(self, c.key, reply_of(row, payment_result::in_progress), true);
            st.relays[row.id] = relay{agg, index};
            gateway_start_flow(self, ctx, c, row, false);
          },
          [self, c, row, agg, index](caf::error&) {
            auto& st = self->state;
            st.rows_inflight.erase(row.id);
            payment_reply r = reply_of(row, payment_result::store_unavailable);
            key_done(self, c.key, r, false);
            answer(self, agg, index, r);
          });
}

// One command, checked and dispatched; its reply goes to agg[index] (now or later). `ledgers`:
// those the client may use, empty for every ledger (submit_payments_request::ledgers).
void take_command(gateway_actor* self, const request_context& ctx, const payment_command& c, agg_ptr agg,
                  uint32_t index, const std::vector<uint32_t>& ledgers) {
  auto& st = self->state;
  const env& e = *st.e;
  auto refuse = [&](payment_result r) { refuse_command(self, c, agg, index, r); };
  if (auto r = lp::validate(c); r != payment_result::ok) return refuse(r);
  auto ledger_allowed = [&ledgers](uint32_t ledger) {
    for (uint32_t l : ledgers)
      if (l == ledger) return true;
    return ledgers.empty();
  };
  // A client limited to ledgers acts only on orders of its ledgers (docs/security.md). pay and
  // refund name none: their order's is checked here, before the key, so that such a client
  // stores nothing and learns nothing of another ledger's keys and rows.
  const bool on_order = c.kind == uint16_t(kind::pay) || c.kind == uint16_t(kind::refund);
  if (!on_order && !ledger_allowed(c.ledger)) return refuse(payment_result::ledger_forbidden);
  order o{}; // pay, refund: their order, read once (here for such a client, else below)
  bool have_order = false, order_read = false;
  auto read_order = [&] {
    order_read = true;
    return e.store->get_row(c.order_id, o, have_order).ok();
  };
  if (on_order && !ledgers.empty()) {
    if (!read_order()) return refuse(payment_result::store_unavailable);
    if (have_order && !ledger_allowed(o.ledger)) return refuse(payment_result::ledger_forbidden);
  }
  if (key_seen(self, c, agg, index)) return;
  if (c.provider[0] != 0 && !e.find_provider(c.provider)) return refuse(payment_result::provider_unknown);
  if (!on_order) return start_row(self, ctx, c, agg, index);
  if (!order_read && !read_order()) return refuse(payment_result::store_unavailable);
  if (!have_order) return refuse(payment_result::order_not_found);
  if (o.kind != uint16_t(kind::create_order)) return refuse(payment_result::order_kind_invalid);
  if (admitted(st) >= e.cfg.orders_inflight_max) return refuse(payment_result::busy);
  send_to_order(self, ctx, c, o, agg, index);
}

void relay_reply(gateway_actor* self, u128 row_id, payment_reply r) {
  auto& st = self->state;
  auto it = st.relays.find(row_id);
  if (it == st.relays.end()) return;
  auto rl = it->second;
  st.relays.erase(it);
  answer(self, rl.agg, rl.index, r);
}

// The chart of accounts: per served ledger and shard, fees, suspense and escrow, and a
// clearing account per provider serving the ledger. Creating one that exists is harmless.
std::vector<ledger::account> chart(const env& e) {
  std::vector<ledger::account> out;
  auto add = [&](u128 id, uint32_t ledger) {
    ledger::account a{};
    a.id = id;
    a.ledger = ledger;
    a.code = lp::account_code;
    out.push_back(a);
  };
  for (const auto& l : e.cfg.ledgers) {
    for (uint32_t s = 0; s < e.shards; ++s) {
      add(lp::account_id(lp::role::fees, 0, s, l.ledger), l.ledger);
      add(lp::account_id(lp::role::suspense, 0, s, l.ledger), l.ledger);
      add(lp::account_id(lp::role::escrow, 0, s, l.ledger), l.ledger);
      for (const auto& p : e.providers)
        for (uint32_t pl : p.cfg.ledgers)
          if (pl == l.ledger) add(lp::account_id(lp::role::provider_clearing, p.index, s, l.ledger), l.ledger);
    }
  }
  return out;
}

void boot(gateway_actor* self);

constexpr uint32_t chart_retry_ms = 100; // before the chart of accounts is created again at boot

// The ledger did not take the chart of accounts: boot runs again after chart_retry_ms.
void chart_again(gateway_actor* self, const std::string& why) {
  self->state.e->log_error("payments: the ledger did not take the chart of accounts (" + why + "); trying again in " +
                           std::to_string(chart_retry_ms) + " ms");
  self->delayed_send(self, std::chrono::milliseconds(chart_retry_ms), flow_down_atom::value);
}

void take_request(gateway_actor* self, submit_payments_request& req, caf::response_promise rp) {
  // a flow without a trace id gets one, so that `kassa trace` can follow it
  if (req.ctx.trace_id == 0) req.ctx.trace_id = make_u128(self->state.e->clock(), ++self->state.traces);
  auto agg = std::make_shared<request_agg>();
  agg->rp = rp;
  agg->replies.resize(req.commands.size());
  agg->outstanding = req.commands.size();
  if (req.commands.empty()) {
    rp.deliver(payments_reply{outcome::ok, {}});
    return;
  }
  for (uint32_t i = 0; i < req.commands.size(); ++i) take_command(self, req.ctx, req.commands[i], agg, i, req.ledgers);
}

// The pay items and refunds of the orders named, read from the store (an item's final row is
// written with its order's counts, so they agree).
items_reply lookup_items(const env& e, const lookup_items_request& req) {
  items_reply out;
  for (u128 id : req.ids) {
    order row{};
    bool found = false;
    std::vector<order> children;
    ledger::store::error err = e.store->get_row(id, row, found);
    if (err.ok() && found && row.kind == uint16_t(kind::create_order)) err = e.store->children(id, children);
    if (!err.ok()) return items_reply{outcome::store_unavailable, {}};
    std::sort(children.begin(), children.end(), [](const order& a, const order& b) { return a.sequence < b.sequence; });
    for (const order& c : children) {
      if (c.kind != uint16_t(kind::pay) && c.kind != uint16_t(kind::refund)) continue;
      if (out.items.size() >= req.items_max) return items_reply{outcome::too_many, {}};
      out.items.push_back(ledger::payments::item_of(c, e.store->ids().id(c.sequence)));
    }
  }
  return out;
}

void on_event(gateway_actor* self, provider_event& ev) {
  auto& st = self->state;
  // only this data directory's ids: another installation's or generation's is none of its rows
  uint64_t seq = 0;
  lp::call_role role = lp::call_role::main;
  if (!st.e->store->ids().decode(ev.payment_id, seq, role) || role != lp::call_role::main) return;
  if (auto it = st.flows.find(seq); it != st.flows.end()) {
    self->send(it->second, flow_event{ev});
    return;
  }
  if (ev.status != call_status::succeeded && ev.status != call_status::partial) return; // nothing to add
  order row{};
  bool found = false;
  if (auto err = st.e->store->find_sequence(seq, row, found); !err.ok() || !found) return;
  // a payment given up on (its provider never answered) runs again: the provider has spoken
  if (static_cast<order_state>(row.state) == order_state::in_review &&
      row.result == uint32_t(payment_result::outcome_unknown) && row.provider_amount == 0) {
    st.e->log_info("payment " + to_string_u128(row.id) + ": " + ev.provider + " answered after all; resuming it");
    const auto k = static_cast<kind>(row.kind);
    if (k == kind::pay || k == kind::refund) {
      order o{};
      bool have = false;
      if (!st.e->store->get_row(row.parent_id, o, have).ok() || !have) return;
      auto a = order_actor_for(self, o);
      ++st.orders_sent[o.id];
      self->send(a, order_resume{row.id});
    } else {
      row.result = 0;
      gateway_start_flow(self, request_context{row.trace_id, row.id, 0, 0, false}, payment_command{}, row, true);
      self->send(st.flows[seq], flow_event{ev});
    }
    return;
  }
  // a success for a payment that failed without the provider's money: a late success
  if (static_cast<order_state>(row.state) != order_state::failed || row.provider_amount != 0) return;
  st.e->log_info("payment " + to_string_u128(row.id) + ": late success from " + ev.provider);
  auto flow = spawn_late_flow(self->system(), st.e, late_start{row, ev});
  self->monitor(flow);
  st.flows[seq] = flow;
}

// A flow the gateway runs (or a late flow) stopped. After its final report that is the end of
// it; before (it failed), its row stays as last written and runs again at the next start, and
// what the gateway held for it is let go.
void flow_stopped(gateway_actor* self, const caf::down_msg& dm) {
  if (dm.reason == caf::exit_reason::normal) return;
  auto& st = self->state;
  for (auto it = st.flows.begin(); it != st.flows.end(); ++it) {
    if (it->second.address() != dm.source) continue;
    order row{};
    bool found = false;
    st.e->store->find_sequence(it->first, row, found);
    st.e->log_error("payments gateway: the flow of payment " + to_string_u128(row.id) + " stopped (" +
                    self->system().render(dm.reason) + "); it runs again at the next start");
    st.flows.erase(it);
    if (!found) return;
    relay_reply(self, row.id, reply_of(row, payment_result::in_progress));
    st.rows_inflight.erase(row.id);
    return;
  }
}

// A client's payment commands: taken at once, or queued while the gateway boots (at most
// orders_inflight_max requests; busy beyond).
caf::result<payments_reply> gateway_submit(gateway_actor* self, submit_payments_request& req) {
  self->state.mailbox->set(mailbox_waiting(self));
  auto rp = self->make_response_promise<payments_reply>();
  auto& st = self->state;
  if (st.ready) {
    take_request(self, req, rp);
  } else if (st.queued.size() >= st.e->cfg.orders_inflight_max) {
    rp.deliver(payments_reply{outcome::busy, {}}); // still booting: nothing taken
  } else {
    st.queued.emplace_back(std::move(req), rp);
  }
  return rp;
}

// Payment rows by id, with the fee each charged.
orders_reply gateway_lookup_orders(gateway_actor* self, lookup_orders_request& req) {
  orders_reply out;
  for (u128 id : req.ids) {
    order row{};
    bool found = false;
    if (auto err = self->state.e->store->get_row(id, row, found); !err.ok()) {
      out.status = outcome::store_unavailable;
      out.orders.clear();
      return out;
    }
    if (!found) continue;
    row.fee = ledger::payments::fee_charged(row);
    out.orders.push_back(row);
  }
  return out;
}

// A flow the gateway runs reports its row: relayed to the client that waits for it.
void gateway_flow_report(gateway_actor* self, flow_report& r) {
  auto& st = self->state;
  // from the flow that runs the row, or a stray or repeated report: dropped
  auto running = st.flows.find(r.row.sequence);
  if (running == st.flows.end() || running->second.address() != self->current_sender()) {
    st.e->log_error("payments gateway: dropped a report for payment " + to_string_u128(r.row.id) +
                    " from no flow of it");
    return;
  }
  payment_reply out = reply_of(r.row, r.final ? r.result : payment_result::in_progress);
  relay_reply(self, r.row.id, out);
  if (!r.final) return;
  st.flows.erase(r.row.sequence);
  st.rows_inflight.erase(r.row.id);
}

// From a late flow of a refund: its order's actor keeps the counts.
caf::result<bool> gateway_late_refund(gateway_actor* self, late_refund& lr) {
  // from a late flow of a refund: its order's actor keeps the counts
  auto& st = self->state;
  order o{};
  bool have = false;
  if (!st.e->store->get_row(lr.row.parent_id, o, have).ok() || !have) return false;
  auto a = order_actor_for(self, o);
  ++st.orders_sent[o.id];
  auto rp = self->make_response_promise<bool>();
  self->request(a, caf::infinite, std::move(lr))
      .then([rp](bool ok) mutable { rp.deliver(ok); }, [rp](caf::error&) mutable { rp.deliver(false); });
  return rp;
}

// Reserves a payment's room in its account's daily limits (sum and count); false when it
// does not fit. Asked again after a restart, the row's reservation stands.
bool gateway_limit_reserve(gateway_actor* self, limit_reserve& lr) {
  auto& st = self->state;
  if (st.limit_rows.count(lr.row_id)) return true; // run again after a restart
  limit_key k{lr.account_id, int(lr.type), lr.ledger, lr.day};
  const auto* l = st.e->limit(lr.type, lr.ledger);
  auto& use = st.limits[k];
  if (l) {
    if (l->account_day_max != 0 && (add_overflows(use.sum, lr.amount) || use.sum + lr.amount > l->account_day_max))
      return false;
    if (l->account_day_count_max != 0 && use.count + 1 > l->account_day_count_max) return false;
  }
  use.sum += lr.amount;
  use.count += 1;
  st.limit_rows[lr.row_id] = {k, lr.amount};
  return true;
}

// Gives back what a row reserved of its account's daily limits.
void gateway_limit_release(gateway_actor* self, limit_release& lr) {
  auto& st = self->state;
  auto it = st.limit_rows.find(lr.row_id);
  if (it == st.limit_rows.end()) return;
  auto& use = st.limits[it->second.first];
  use.sum -= it->second.second;
  use.count -= 1;
  st.limit_rows.erase(it);
}

caf::behavior gateway(gateway_actor* self, std::shared_ptr<env> e) {
  auto& st = self->state;
  st.e = e;
  st.sequence = e->store->sequence_last();
  drop_unexpected(self, [e](const std::string& m) { e->log_error("payments gateway: " + m); });
  self->set_down_handler([self](caf::down_msg& dm) { flow_stopped(self, dm); });
  self->send(self, flow_down_atom::value); // boot once the behaviour is in place
  return {
      [self](flow_down_atom) {
        if (from_self(self)) boot(self);
      },
      [self](submit_payments_request& req) { return gateway_submit(self, req); },
      [self](lookup_orders_request& req) { return gateway_lookup_orders(self, req); },
      [self](lookup_items_request& req) -> items_reply { return lookup_items(*self->state.e, req); },
      [self](flow_report& r) { gateway_flow_report(self, r); },
      [self](step_timeout_atom, uint64_t hi, uint64_t lo) {
        if (!from_self(self)) return;
        auto& st = self->state;
        const u128 id = make_u128(hi, lo);
        if (!st.relays.count(id)) return;
        order row{};
        bool found = false;
        st.e->store->get_row(id, row, found);
        relay_reply(self, id, reply_of(row, payment_result::in_progress));
      },
      [self](flow_register& fr) {
        auto& st = self->state;
        if (fr.flow) {
          st.flows[fr.sequence] = fr.flow;
          st.item_flows.insert(fr.sequence); // also one resumed at boot
        } else {
          st.flows.erase(fr.sequence);
          st.item_flows.erase(fr.sequence);
        }
      },
      [self](order_idle& oi) {
        auto& st = self->state;
        auto it = st.orders.find(oi.order_id);
        if (it == st.orders.end() || it->second.address() != self->current_sender() ||
            st.orders_sent[oi.order_id] != oi.commands)
          return;
        self->send(it->second, oi);
        st.orders.erase(it);
        st.orders_sent.erase(oi.order_id);
      },
      [self](provider_event& ev) { on_event(self, ev); },
      [self](late_refund& lr) { return gateway_late_refund(self, lr); },
      [self](limit_reserve& lr) { return gateway_limit_reserve(self, lr); },
      [self](limit_release& lr) { gateway_limit_release(self, lr); },
  };
}

void boot(gateway_actor* self) {
  auto& st = self->state;
  auto accounts = chart(*st.e);
  const size_t n = accounts.size();
  self->request(st.e->directory, caf::infinite, create_accounts_request{request_context{}, std::move(accounts), std::vector<uint8_t>(n, 1)})
      .then(
          [self](create_reply& r) {
            auto& st = self->state;
            for (const auto& f : r.failures)
              if (static_cast<ledger::account_result>(f.code) != ledger::account_result::exists)
                st.e->log_error("payments: creating the chart of accounts: " +
                                std::string(ledger::name(static_cast<ledger::account_result>(f.code))));
            if (r.status != outcome::ok) {
              // every booking names these accounts: nothing runs until the ledger holds them
              // (requests wait, up to orders_inflight_max of them)
              chart_again(self, r.status == outcome::busy ? "busy" : "store unavailable");
              return;
            }
            // resume what a crash cut short, rebuild today's limit counters
            const uint32_t today = lp::utc_day(st.e->clock());
            std::vector<order> resume;
            std::set<u128> order_ids;
            st.e->store->scan_rows([&](const order& row) {
              const auto s = static_cast<order_state>(row.state);
              const auto k = static_cast<kind>(row.kind);
              if (k != kind::create_order && k != kind::refund && s != order_state::failed &&
                  lp::utc_day(row.created_ns) == today) {
                const auto type = payment_type_of(k);
                limit_key key{row.account_id, int(type), row.ledger, today};
                if (st.e->limit(type, row.ledger)) {
                  st.limits[key].sum += row.amount;
                  st.limits[key].count += 1;
                  st.limit_rows[row.id] = {key, row.amount};
                }
              }
              if (s == order_state::processing || s == order_state::unknown || s == order_state::partially_paid) {
                if (k == kind::pay || k == kind::refund) order_ids.insert(row.parent_id);
                else if (k != kind::create_order) resume.push_back(row);
              }
              return true;
            });
            for (const auto& row : resume)
              gateway_start_flow(self, request_context{row.trace_id, row.id, 0, 0, false}, payment_command{}, row, true);
            for (u128 oid : order_ids) {
              order o{};
              bool found = false;
              st.e->store->get_row(oid, o, found);
              if (!found) continue;
              auto a = order_actor_for(self, o);
              ++st.orders_sent[oid];
              self->send(a, order_resume{});
            }
            if (!resume.empty() || !order_ids.empty())
              st.e->log_info("payments: resumed " + std::to_string(resume.size()) + " payments and " +
                             std::to_string(order_ids.size()) + " orders");
            for (const auto& p : st.e->providers)
              self->send(p.channel, subscribe_events{caf::actor_cast<caf::actor>(self), 0});
            st.ready = true;
            auto queued = std::move(st.queued);
            st.queued.clear();
            for (auto& [req, rp] : queued) take_request(self, req, rp);
          },
          [self](caf::error& err) { chart_again(self, self->system().render(err)); });
}

} // namespace
} // namespace pay

caf::actor spawn_payments(caf::actor_system& sys, payments_options opts) {
  auto e = std::make_shared<pay::env>();
  e->cfg = std::move(opts.cfg);
  e->shards = opts.shards;
  e->directory = opts.directory;
  e->writer = opts.writer;
  e->reconciler = opts.reconciler;
  e->store = opts.store;
  e->clock = opts.clock;
  e->log_info = opts.log_info ? opts.log_info : [](const std::string&) {};
  e->log_error = opts.log_error ? opts.log_error : [](const std::string&) {};
  for (size_t i = 0; i < e->cfg.providers.size(); ++i)
    e->providers.push_back({e->cfg.providers[i].name, uint32_t(i), e->cfg.providers[i], opts.channels.at(i)});
  // the gateway's handle goes into the env before any other actor sees it
  // (arguments go through spawn: CAF 0.17 binds a reference to a null tuple for an actor
  // spawned without any, which UBSan reports)
  return sys.spawn(
      [](pay::gateway_actor* self, std::shared_ptr<pay::env> e) {
        e->gateway = caf::actor_cast<caf::actor>(self);
        return pay::gateway(self, e);
      },
      e);
}

} // namespace kassa::actors
