// The payment core's gateway and order actors.
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

namespace pay {

namespace lp = ledger::payments;
using ledger::payments::payment_reply;

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

} // namespace pay
} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::pay::order_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::pay::order_resume)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::pay::order_idle)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::pay::flow_register)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::pay::payment_reply)

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

namespace {

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

u128 fee_at_start(const env& e, kind k, uint32_t ledger, u128 amount) {
  if (k != kind::withdrawal && k != kind::transfer) return 0; // topup: on what arrives
  u128 fee = 0;
  return fee_for(e, payment_type_of(k), ledger, amount, fee) ? fee : u128_max;
}

// A reply owed to a client for a row whose flow runs: given at the first report, or as
// in_progress when flow_wait_ms passes first.
struct owed_reply {
  caf::response_promise rp;
  bool given = false;
};

// ---------------------------------------------------------------------------------- order

struct split_reply; // below

struct order_state_t {
  static inline const char* name = "kassa.order";
  env_ptr e;
  order row;                                 // the order (kind create_order)
  std::map<u128, order> items;               // its pay items and refunds, by id
  std::set<u128> reserved;                   // pay items whose amount counts as "to be paid"
  u128 reserved_amount = 0;
  std::map<u128, std::shared_ptr<owed_reply>> owed; // by row id
  std::map<u128, caf::actor> flows; // flows running, by item id: a report counts only from its own
  size_t accepting = 0;  // commands whose first write is on its way
  size_t writing = 0;    // writes on their way (their callbacks still owe replies)
  uint64_t commands = 0;
  bool behind = false;      // a write of the order's counts failed: written again before it stops
  std::map<u128, order> unsettled; // refunds whose end is not durable yet (see write_refund_end)
  std::set<u128> late;             // refunds made late whose room is reserved (late_refund)
  std::map<u128, std::shared_ptr<split_reply>> splits; // parts of split refunds, by part id
  uint32_t rewrites = 0;
};
using order_actor = caf::stateful_actor<order_state_t>;

void order_persist(order_actor* self, std::vector<order> rows, std::vector<payment_command> keys,
                   std::vector<journal_entry> journal, std::function<void(bool)> then);

constexpr uint32_t order_rewrites_max = 10;

void order_refresh_state(order& o);

// What a refund's end does to its pay item's and its order's counts: its request was
// pending; what it gave back (amount_captured: what the provider confirmed, never more than
// asked) is refunded.
void apply_refund_end(order& from, order& o, const order& refund) {
  from.amount_refund_pending -= refund.amount;
  o.amount_refund_pending -= refund.amount;
  if (static_cast<order_state>(refund.state) == order_state::completed) {
    from.amount_refunded += refund.amount_captured;
    o.amount_refunded += refund.amount_captured;
    from.state = uint16_t(from.amount_refunded >= from.amount_captured ? order_state::refunded
                                                                        : order_state::partially_refunded);
  }
  order_refresh_state(o);
}

// Writes a refund's final row with its pay item's and order's counts. Until that is durable
// the refund stays "unsettled": a refund that ended without moving money freed room that no
// other refund may take yet (after a crash the refund would run again). A failed write is
// tried again before the actor stops.
void write_refund_end(order_actor* self, const order& refund, std::vector<journal_entry> j, std::function<void(bool)> then) {
  auto& st = self->state;
  st.unsettled[refund.id] = refund;
  st.row.updated_ns = st.e->clock();
  order_persist(self, {st.items[refund.counterparty_id], st.row, refund}, {}, std::move(j), [self, id = refund.id, then](bool ok) {
    auto& st = self->state;
    if (ok) st.unsettled.erase(id);
    else st.behind = true;
    then(ok);
  });
}

// Room of the order (item_id 0) or of one pay item that refunds whose end is not durable yet
// still hold.
u128 unsettled_room(const order_state_t& st, u128 item_id) {
  u128 held = 0;
  for (const auto& [id, r] : st.unsettled)
    if (static_cast<order_state>(r.state) != order_state::completed && (item_id == 0 || r.counterparty_id == item_id))
      held += r.amount;
  return held;
}

// Tells the gateway this actor holds nothing in flight, so it may stop (the gateway confirms
// only if no command is on its way). An order whose counts did not reach the store writes
// them first (a few tries; what is still missing is recounted from the items at the next load).
void maybe_idle(order_actor* self) {
  auto& st = self->state;
  if (!st.flows.empty() || st.accepting != 0 || st.writing != 0 || !st.late.empty()) return;
  if (!st.unsettled.empty() && st.rewrites < order_rewrites_max) {
    ++st.rewrites;
    auto ends = st.unsettled;
    for (auto& [id, refund] : ends) write_refund_end(self, refund, {}, [](bool) {});
    return;
  }
  if (st.behind && st.rewrites < order_rewrites_max) {
    ++st.rewrites;
    std::vector<order> rows{st.row};
    for (const auto& [id, c] : st.items) // the pay items whose counts this actor keeps
      if (c.kind == uint16_t(kind::pay) && (c.items == 1 || c.amount_refunded != 0)) rows.push_back(c);
    order_persist(self, std::move(rows), {}, {}, [self](bool ok) {
      if (ok) self->state.behind = false;
    });
    return;
  }
  self->send(st.e->gateway, order_idle{st.row.id, st.commands});
}

void order_persist(order_actor* self, std::vector<order> rows, std::vector<payment_command> keys,
                   std::vector<journal_entry> journal, std::function<void(bool)> then) {
  payments_write w;
  w.batch.rows = std::move(rows);
  w.batch.keys = std::move(keys);
  w.batch.journal = std::move(journal);
  ++self->state.writing;
  self->request(self->state.e->writer, caf::infinite, std::move(w))
      .then(
          [self, then](payments_written& d) {
            --self->state.writing;
            then(d.error.ok());
            maybe_idle(self);
          },
          [self, then](caf::error&) {
            --self->state.writing;
            then(false);
            maybe_idle(self);
          });
}

void order_refresh_state(order& o) {
  if (o.amount_refunded != 0)
    o.state = uint16_t(o.amount_refunded >= o.amount_captured ? order_state::refunded : order_state::partially_refunded);
  else if (o.amount_captured >= o.amount)
    o.state = uint16_t(order_state::completed);
  else if (o.amount_captured != 0)
    o.state = uint16_t(order_state::partially_paid);
  else
    o.state = uint16_t(order_state::created);
}

// The order's counters from its items' own rows. Final item rows are written with the order's
// row, but a store written before that, or a write of the counts that failed, can leave the
// order's row behind its items, never the other way round.
void order_recount(order_state_t& st) {
  order& o = st.row;
  o.amount_captured = o.amount_refunded = o.amount_refund_pending = 0;
  for (auto& [id, c] : st.items) {
    if (c.kind != uint16_t(kind::pay)) continue;
    c.amount_refunded = c.amount_refund_pending = 0;
    const auto s = static_cast<order_state>(c.state);
    // amount_captured is set once the capture is booked to the merchant
    const bool captured = c.amount_captured != 0 && (s == order_state::completed || s == order_state::partially_refunded ||
                                                     s == order_state::refunded);
    c.items = captured ? 1 : 0;
    if (captured) o.amount_captured += c.amount_captured;
  }
  for (auto& [id, r] : st.items) {
    if (r.kind != uint16_t(kind::refund)) continue;
    auto from = st.items.find(r.counterparty_id);
    if (from == st.items.end()) continue;
    const auto s = static_cast<order_state>(r.state);
    if (s == order_state::completed) {
      from->second.amount_refunded += r.amount_captured;
      o.amount_refunded += r.amount_captured;
    } else if (s == order_state::processing || s == order_state::unknown) {
      from->second.amount_refund_pending += r.amount;
      o.amount_refund_pending += r.amount;
    }
  }
  for (auto& [id, c] : st.items) {
    if (c.kind == uint16_t(kind::pay) && c.amount_refunded != 0)
      c.state = uint16_t(c.amount_refunded >= c.amount_captured ? order_state::refunded : order_state::partially_refunded);
  }
  order_refresh_state(st.row);
}

void release_reservation(order_state_t& st, const order& item) {
  if (st.reserved.erase(item.id)) st.reserved_amount -= item.amount;
}

void reserve(order_state_t& st, const order& item) {
  if (st.reserved.insert(item.id).second) st.reserved_amount += item.amount;
}

// A row its flow left for the next start (a step that could not get through): it may still
// move money, so its order keeps counting it (reserved, or a refund pending) until then.
bool left_unfinished(const order& item) {
  const auto s = static_cast<order_state>(item.state);
  return s == order_state::processing || s == order_state::unknown;
}

void give_reply(std::shared_ptr<owed_reply> o, payment_reply r) {
  if (!o || o->given) return;
  o->given = true;
  o->rp.deliver(r);
}

// A refund larger than any one pay item can take is split over the order's captured items,
// newest first, each part at most what its item captured and has not refunded (nor has in
// refund); at most refund_parts_max parts. Empty: the items cannot take it.
constexpr size_t refund_parts_max = 8; // the gateway keeps this many row sequences for a refund

std::vector<std::pair<u128, u128>> refund_parts(const order_state_t& st, u128 amount) {
  std::vector<const order*> items;
  for (const auto& [id, i] : st.items)
    if (i.kind == uint16_t(kind::pay) && i.items == 1) items.push_back(&i);
  std::sort(items.begin(), items.end(), [](const order* a, const order* b) { return a->sequence > b->sequence; });
  auto room_of = [&st](const order& i) {
    const u128 taken = i.amount_refunded + i.amount_refund_pending + unsettled_room(st, i.id);
    return taken >= i.amount_captured ? u128(0) : i.amount_captured - taken;
  };
  for (const order* i : items) // the newest that can take it whole, as one refund
    if (room_of(*i) >= amount) return {{i->id, amount}};
  std::vector<std::pair<u128, u128>> parts;
  u128 left = amount;
  for (const order* i : items) {
    const u128 room = room_of(*i);
    if (room == 0) continue;
    if (parts.size() == refund_parts_max) return {};
    const u128 part = room < left ? room : left;
    parts.emplace_back(i->id, part);
    left -= part;
    if (left == 0) return parts;
  }
  return {};
}

// The one reply to a refund split in parts: once every part has ended, what they gave back
// together, the first result that was not ok, and the order's state.
struct split_reply {
  std::shared_ptr<owed_reply> owed;
  size_t waiting = 0;
  payment_reply out{};
};

void order_start_flow(order_actor* self, request_context ctx, payment_command cmd, order item, bool resume,
                      std::shared_ptr<owed_reply> owed) {
  auto& st = self->state;
  flow_start fs;
  fs.ctx = ctx;
  fs.cmd = cmd;
  fs.row = item;
  fs.parent = st.row;
  if (item.kind == uint16_t(kind::refund)) {
    auto it = st.items.find(item.counterparty_id);
    if (it != st.items.end()) fs.item = it->second;
  }
  fs.resume = resume;
  auto flow = spawn_flow(self->system(), st.e, caf::actor_cast<caf::actor>(self), fs);
  self->monitor(flow); // one that fails before its final report must not hold the order for good
  st.flows[item.id] = flow;
  self->send(st.e->gateway, flow_register{item.sequence, flow});
  if (owed) {
    st.owed[item.id] = owed;
    self->delayed_send(self, std::chrono::milliseconds(st.e->cfg.flow_wait_ms), step_timeout_atom::value,
                       u128_hi(item.id), u128_lo(item.id));
  }
}

caf::behavior order_behavior(order_actor* self, env_ptr e, order row) {
  auto& st = self->state;
  st.e = e;
  st.row = row;
  std::vector<order> children;
  auto err = e->store->children(row.id, children);
  if (!err.ok()) e->log_error("order " + to_string_u128(row.id) + ": " + err.message);
  for (auto& c : children) st.items[c.id] = c;
  const order stored = st.row;
  order_recount(st);
  // the stored counts were behind the items (a write of them failed): written again when idle
  st.behind = stored.amount_captured != st.row.amount_captured || stored.amount_refunded != st.row.amount_refunded ||
              stored.amount_refund_pending != st.row.amount_refund_pending || stored.state != st.row.state;
  // a pay item still processing (left for the next start) may yet capture
  for (const auto& [id, c] : st.items)
    if (c.kind == uint16_t(kind::pay) && static_cast<order_state>(c.state) == order_state::processing) reserve(st, c);
  drop_unexpected(self, [e, id = row.id](const std::string& m) { e->log_error("order " + to_string_u128(id) + ": " + m); });
  // An order actor ends with the gateway (kassad stopping), as its flows end with it.
  if (e->gateway) self->monitor(e->gateway);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.e->gateway && dm.source == st.e->gateway.address()) {
      self->quit(dm.reason);
      return;
    }
    if (dm.reason == caf::exit_reason::normal) return; // it quit after its final report
    for (auto it = st.flows.begin(); it != st.flows.end(); ++it) {
      if (it->second.address() != dm.source) continue;
      // The flow failed before its final report: the item stays as last written (still
      // counted against the order) and runs again at the next start.
      const order& item = st.items[it->first];
      st.e->log_error("order " + to_string_u128(st.row.id) + ": the flow of item " + to_string_u128(it->first) +
                      " stopped (" + self->system().render(dm.reason) + "); it runs again at the next start");
      self->send(st.e->gateway, flow_register{item.sequence, caf::actor{}});
      st.splits.erase(it->first); // its command was answered in_progress, or is at flow_wait_ms
      if (auto o = st.owed.find(it->first); o != st.owed.end()) {
        give_reply(o->second, reply_of(item, payment_result::in_progress));
        st.owed.erase(o);
      }
      st.flows.erase(it);
      maybe_idle(self);
      return;
    }
  });
  return {
      [self](order_resume& r) {
        auto& st = self->state;
        ++st.commands; // the gateway counts this message as a command
        for (auto& [id, item] : st.items) {
          const auto s = static_cast<order_state>(item.state);
          const bool unfinished =
              s == order_state::processing || s == order_state::unknown || s == order_state::partially_paid;
          // an item given up on (no answer from its provider) runs again when the provider
          // speaks up: every step is idempotent, so it picks up where it stopped
          const bool revived = r.item_id == id && s == order_state::in_review &&
                               item.result == uint32_t(payment_result::outcome_unknown);
          if (r.item_id != 0 ? !revived : !unfinished) continue;
          if (st.flows.count(id)) continue; // its flow runs already
          if (item.kind == uint16_t(kind::pay) && (s == order_state::processing || revived)) {
            reserve(st, item);
          }
          if (revived) item.result = 0;
          payment_command cmd{};
          order_start_flow(self, request_context{item.trace_id, st.row.id, 0, 0, false}, cmd, item, true, nullptr);
        }
        maybe_idle(self);
      },
      [self](order_command& oc) -> caf::result<payment_reply> {
        auto& st = self->state;
        ++st.commands;
        const auto& c = oc.cmd;
        order& o = st.row;
        auto refuse = [&](payment_result r) {
          payment_reply out = reply_of(o, r);
          return out;
        };
        order item = new_row(*st.e, oc.ctx, c, oc.sequence);
        item.id = c.key;
        item.parent_id = o.id;
        item.ledger = o.ledger;
        std::vector<order> parts; // the rows the command creates: one, or a refund's parts
        if (c.kind == uint16_t(kind::pay)) {
          const auto s = static_cast<order_state>(o.state);
          if (s != order_state::created && s != order_state::partially_paid) return refuse(payment_result::order_not_payable);
          const u128 taken = o.amount_captured + st.reserved_amount;
          if (taken >= o.amount || c.amount > o.amount - taken) return refuse(payment_result::amount_exceeds_order_remaining);
          item.counterparty_id = o.account_id;
          reserve(st, item);
        } else { // refund
          const auto s = static_cast<order_state>(o.state);
          if (o.amount_captured == 0 || s == order_state::in_review) return refuse(payment_result::order_not_refundable);
          if (o.amount_refunded + o.amount_refund_pending + unsettled_room(st, 0) + c.amount > o.amount_captured)
            return refuse(payment_result::refund_exceeds_captured);
          const auto split = refund_parts(st, c.amount);
          if (split.empty()) return refuse(payment_result::refund_exceeds_captured);
          if (split.size() > oc.room) return refuse(payment_result::busy); // each part is a flow
          for (size_t k = 0; k < split.size(); ++k) {
            const order& from = st.items[split[k].first];
            order part = item;
            if (k != 0) { // a part beyond the first: a row of its own, under a kassa-made id
              part.sequence = oc.sequence + k;
              part.id = st.e->store->ids().id(part.sequence);
            }
            part.amount = split[k].second;
            part.account_id = from.account_id;
            part.counterparty_id = from.id;
            part.source = from.source;
            std::memcpy(part.provider, from.provider, sizeof part.provider);
            parts.push_back(part);
          }
          for (size_t k = 1; k < parts.size(); ++k) { // a kassa-made id a client took already
            order taken{};
            bool have = false;
            if (!st.e->store->get_row(parts[k].id, taken, have).ok()) return refuse(payment_result::store_unavailable);
            if (have || st.items.count(parts[k].id)) return refuse(payment_result::order_exists);
          }
          for (const order& part : parts) {
            st.items[part.counterparty_id].amount_refund_pending += part.amount;
            o.amount_refund_pending += part.amount;
          }
        }
        if (parts.empty()) parts.push_back(item);
        for (const order& part : parts) st.items[part.id] = part;
        auto rp = self->make_response_promise<payment_reply>();
        auto owed = std::make_shared<owed_reply>(owed_reply{rp, false});
        std::vector<order> rows = parts;
        std::vector<journal_entry> j;
        for (const order& part : parts) j.push_back(entry(*st.e, oc.ctx, part, "order", "accepted", 0, part.amount));
        if (c.kind == uint16_t(kind::refund)) {
          rows.push_back(o);
          for (const order& part : parts) rows.push_back(st.items[part.counterparty_id]);
        }
        ++st.accepting;
        order_persist(self, std::move(rows), {c}, std::move(j), [self, oc, parts, owed](bool ok) {
          auto& st = self->state;
          --st.accepting;
          if (!ok) {
            // nothing of it is durable: undo the reservation and say so
            for (const order& part : parts) {
              if (part.kind == uint16_t(kind::pay)) release_reservation(st, part);
              else {
                st.row.amount_refund_pending -= part.amount;
                st.items[part.counterparty_id].amount_refund_pending -= part.amount;
                // another write of the order's rows may have landed meanwhile with the refund
                // counted as pending: the corrected counts are written again before it stops
                st.behind = true;
              }
              st.items.erase(part.id);
            }
            give_reply(owed, reply_of(parts[0], payment_result::store_unavailable));
            return;
          }
          if (parts.size() > 1) {
            auto split = std::make_shared<split_reply>();
            split->owed = owed;
            split->waiting = parts.size();
            split->out.order_id = st.row.id;
            for (const order& part : parts) st.splits[part.id] = split;
          }
          // the first part answers in_progress after flow_wait_ms; the others answer nobody
          for (size_t k = 0; k < parts.size(); ++k)
            order_start_flow(self, oc.ctx, oc.cmd, parts[k], false, k == 0 ? owed : nullptr);
        });
        return rp;
      },
      [self](late_refund& lr) -> caf::result<bool> {
        auto& st = self->state;
        ++st.commands; // the gateway counts this message as a command
        const order& refund = lr.row;
        auto from = st.items.find(refund.counterparty_id);
        if (refund.kind != uint16_t(kind::refund) || from == st.items.end()) return false;
        order& o = st.row;
        if (!lr.end) {
          // the refund failed and freed its room; the provider made it after all: it counts
          // again if the room is still there (else the late flow books it to suspense)
          if (st.late.count(refund.id)) return true;
          const order& i = from->second;
          if (o.amount_refunded + o.amount_refund_pending + unsettled_room(st, 0) + refund.amount > o.amount_captured ||
              i.amount_refunded + i.amount_refund_pending + unsettled_room(st, i.id) + refund.amount > i.amount_captured)
            return false;
          from->second.amount_refund_pending += refund.amount;
          o.amount_refund_pending += refund.amount;
          st.late.insert(refund.id);
          st.items[refund.id] = refund;
          return true;
        }
        auto rp = self->make_response_promise<bool>();
        auto written = [rp](bool ok) mutable { rp.deliver(ok); };
        st.items[refund.id] = refund;
        if (st.late.erase(refund.id)) {
          apply_refund_end(from->second, o, refund);
          lr.journal.push_back(entry(*st.e, request_context{refund.trace_id, o.id, 0, 0, false}, o, "order", "updated",
                                     0, o.amount_captured));
          write_refund_end(self, refund, std::move(lr.journal), std::move(written));
        } else {
          order_persist(self, {refund}, {}, std::move(lr.journal), std::move(written)); // it counts nowhere
        }
        return rp;
      },
      [self](capture_request& cr) -> capture_reply {
        auto& st = self->state;
        auto it = st.items.find(cr.item_id);
        if (it == st.items.end()) return {false};
        order& item = it->second;
        if (item.items == 1) return {true}; // asked again after a restart: already counted
        release_reservation(st, item);
        order& o = st.row;
        const auto s = static_cast<order_state>(o.state);
        const bool room = (s == order_state::created || s == order_state::partially_paid) &&
                          o.amount_captured + cr.amount <= o.amount;
        // forced: a flow resumed after a restart found its capture booked to the merchant; the
        // money moved, so the order counts it even if that overpays it
        if (!room && !cr.force) return {false};
        if (!room) st.e->log_error("order " + to_string_u128(o.id) + ": pay item " + to_string_u128(item.id) +
                                   " was captured before a restart and overpays it");
        o.amount_captured += cr.amount;
        item.items = 1; // counts towards the order
        order_refresh_state(st.row);
        return {true};
      },
      [self](flow_report& r) {
        auto& st = self->state;
        order item = r.row;
        // from the flow that runs the item, or a stray or repeated report: dropped
        auto running = st.flows.find(item.id);
        if (running == st.flows.end() || running->second.address() != self->current_sender() ||
            !st.items.count(item.id)) {
          st.e->log_error("order " + to_string_u128(st.row.id) + ": dropped a report for item " +
                          to_string_u128(item.id) + " from no flow of it");
          return;
        }
        auto& mine = st.items[item.id];
        const uint16_t counted = mine.items;
        const u128 refunded = mine.amount_refunded, pending = mine.amount_refund_pending;
        mine = item;
        mine.items = counted;
        mine.amount_refunded = refunded;
        mine.amount_refund_pending = pending;
        payment_reply out = reply_of(item, r.result);
        if (!r.final) {
          // unknown outcome: the payer may pay again; a later success is a duplicate
          if (item.kind == uint16_t(kind::pay)) release_reservation(st, item);
          out.result = uint32_t(payment_result::in_progress);
          out.state = item.state;
          auto it = st.owed.find(item.id);
          if (it != st.owed.end()) give_reply(it->second, out);
          return;
        }
        st.flows.erase(running);
        self->send(st.e->gateway, flow_register{item.sequence, caf::actor{}});
        const bool left = left_unfinished(item);
        if (item.kind == uint16_t(kind::pay)) {
          if (!left) release_reservation(st, item);
          out.state = st.row.state; // a pay item answers with its order's state
        }
        std::vector<journal_entry> j = std::move(r.journal);
        auto owed = st.owed.count(item.id) ? st.owed[item.id] : nullptr;
        st.owed.erase(item.id);
        std::shared_ptr<split_reply> split;
        if (auto sp = st.splits.find(item.id); sp != st.splits.end()) {
          split = sp->second;
          st.splits.erase(sp);
        }
        auto reply = [self, owed, out, split](bool ok) mutable {
          if (!ok) out.result = uint32_t(payment_result::store_unavailable);
          if (!split) {
            give_reply(owed, out);
            return;
          }
          // a part of a split refund: the command is answered once every part has ended
          if (out.result != uint32_t(payment_result::ok) && split->out.result == uint32_t(payment_result::ok))
            split->out.result = out.result;
          split->out.amount += out.amount;
          if (--split->waiting != 0) return;
          split->out.state = self->state.row.state;
          give_reply(split->owed, split->out);
        };
        const bool refund_ends = item.kind == uint16_t(kind::refund) && !left;
        if (refund_ends) apply_refund_end(st.items[item.counterparty_id], st.row, item);
        j.push_back(entry(*st.e, request_context{item.trace_id, st.row.id, 0, 0, false}, st.row, "order", "updated",
                          r.result == payment_result::ok ? 0 : uint32_t(r.result), st.row.amount_captured));
        if (refund_ends) {
          write_refund_end(self, mine, std::move(j), std::move(reply));
          return;
        }
        std::vector<order> rows;
        if (item.kind == uint16_t(kind::refund))
          rows.push_back(st.items[item.counterparty_id]); // a refund left for the next start: still pending
        st.row.updated_ns = st.e->clock();
        rows.push_back(st.row);
        rows.push_back(mine); // the item's final row goes with the order's (see flow.cpp, finish)
        order_persist(self, std::move(rows), {}, std::move(j), [self, reply](bool ok) mutable {
          if (!ok) self->state.behind = true;
          reply(ok);
        });
      },
      [self](step_timeout_atom, uint64_t hi, uint64_t lo) {
        if (!from_self(self)) return;
        auto& st = self->state;
        auto it = st.owed.find(make_u128(hi, lo));
        if (it == st.owed.end()) return;
        auto item = st.items[it->first];
        payment_reply out = reply_of(item, payment_result::in_progress);
        give_reply(it->second, out);
      },
      [self](order_idle&) {
        // the gateway confirms: no command on the way, and nothing started since
        auto& st = self->state;
        if (self->current_sender() != caf::actor_cast<caf::strong_actor_ptr>(st.e->gateway)) return; // only the gateway's
        if (st.flows.empty() && st.accepting == 0 && st.writing == 0 && st.late.empty()) self->quit();
        else st.e->log_error("order " + to_string_u128(st.row.id) + ": asked to stop while busy");
      },
  };
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
  auto a = self->system().spawn(order_behavior, env_ptr(st.e), row);
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

// One command, checked and dispatched; its reply goes to agg[index] (now or later). `ledgers`:
// those the client may use, empty for every ledger (submit_payments_request::ledgers).
void take_command(gateway_actor* self, const request_context& ctx, const payment_command& c, agg_ptr agg,
                  uint32_t index, const std::vector<uint32_t>& ledgers) {
  auto& st = self->state;
  const env& e = *st.e;
  auto refuse = [&](payment_result r) {
    payment_reply out{};
    out.result = uint32_t(r);
    out.order_id = c.order_id;
    answer(self, agg, index, out);
  };
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
  // the idempotency key: a command being accepted, or one the store holds
  if (auto it = st.keys.find(c.key); it != st.keys.end()) {
    if (!lp::same_fields(it->second.cmd, c)) return refuse(payment_result::exists_with_different_fields);
    it->second.waiters.push_back({agg, index});
    return;
  }
  payment_command seen{};
  bool found = false;
  if (auto err = e.store->get_key(c.key, seen, found); !err.ok()) return refuse(payment_result::store_unavailable);
  if (found) {
    if (!lp::same_fields(seen, c)) return refuse(payment_result::exists_with_different_fields);
    const u128 row_id = (c.kind == uint16_t(kind::pay) || c.kind == uint16_t(kind::refund)) ? c.key : c.order_id;
    order row{};
    bool have = false;
    e.store->get_row(row_id, row, have);
    payment_reply out = have ? reply_of(row, payment_result::exists) : payment_reply{};
    if (have && c.kind == uint16_t(kind::refund)) split_refund_reply(e, row, out);
    out.result = uint32_t(payment_result::exists);
    return answer(self, agg, index, out);
  }
  const auto k = static_cast<kind>(c.kind);
  auto served = [&](uint32_t ledger) {
    for (const auto& l : e.cfg.ledgers)
      if (l.ledger == ledger) return true;
    return false;
  };
  if (c.provider[0] != 0 && !e.find_provider(c.provider)) return refuse(payment_result::provider_unknown);
  if (on_order) {
    if (!order_read && !read_order()) return refuse(payment_result::store_unavailable);
    if (!have_order) return refuse(payment_result::order_not_found);
    if (o.kind != uint16_t(kind::create_order)) return refuse(payment_result::order_kind_invalid);
    if (admitted(st) >= e.cfg.orders_inflight_max) return refuse(payment_result::busy);
    st.keys[c.key] = inflight_key{c, {}};
    auto a = order_actor_for(self, o);
    ++st.orders_sent[o.id];
    const uint64_t sequence = ++st.sequence;
    // A refund may be split in parts, each a row with a sequence of its own (these follow) and
    // a flow of its own: it takes as many places as are left, and more parts are refused.
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
    return;
  }
  if (!served(c.ledger)) return refuse(payment_result::ledger_not_served);
  if (st.rows_inflight.count(c.order_id)) return refuse(payment_result::order_exists);
  order existing{};
  bool have = false;
  if (auto err = e.store->get_row(c.order_id, existing, have); !err.ok()) return refuse(payment_result::store_unavailable);
  if (have) return refuse(payment_result::order_exists);
  if (k != kind::create_order && admitted(st) >= e.cfg.orders_inflight_max) return refuse(payment_result::busy);
  order row = new_row(e, ctx, c, ++st.sequence);
  if (k == kind::create_order) row.state = uint16_t(order_state::created);
  row.fee = fee_at_start(e, k, c.ledger, c.amount);
  if (row.fee == u128_max) return refuse(payment_result::amount_overflow);
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
      [self](submit_payments_request& req) -> caf::result<payments_reply> {
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
      },
      [self](lookup_orders_request& req) -> orders_reply {
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
      },
      [self](lookup_items_request& req) -> items_reply { return lookup_items(*self->state.e, req); },
      [self](flow_report& r) {
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
      },
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
      [self](late_refund& lr) -> caf::result<bool> {
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
      },
      [self](limit_reserve& lr) -> bool {
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
      },
      [self](limit_release& lr) {
        auto& st = self->state;
        auto it = st.limit_rows.find(lr.row_id);
        if (it == st.limit_rows.end()) return;
        auto& use = st.limits[it->second.first];
        use.sum -= it->second.second;
        use.count -= 1;
        st.limit_rows.erase(it);
      },
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
