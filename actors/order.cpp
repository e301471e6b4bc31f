// The order actor: owns one business order: what is still to pay, what is captured, what is
// refunded and what refunds are in flight. Its mailbox is the compare-and-set that keeps
// concurrent pays from overpaying and concurrent refunds from exceeding what was captured.
// The gateway (payments.cpp) spawns one per order that has work and hands it pay and refund.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "actors/mailbox.hpp"
#include "actors/payments.hpp"
#include "actors/payments_core.hpp"
#include "actors/payments_writer.hpp"
#include "actors/steps/steps.hpp"
#include "actors/unexpected.hpp"
#include "metrics/shared.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors::pay {

namespace lp = ledger::payments;
using ledger::payments::payment_reply;

namespace {

// A reply owed to a client for a row whose flow runs: given at the first report, or as
// in_progress when flow_wait_ms passes first.
struct owed_reply {
  caf::response_promise rp;
  bool given = false;
};

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

// Loads the order's items and recounts the order from them.
void order_load(order_actor* self, env_ptr e, const order& row) {
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
}

// The gateway stopped (kassad stopping): the order ends with it. A flow that failed before its
// final report: the item stays as last written (still counted against the order) and runs
// again at the next start.
void order_down(order_actor* self, caf::down_msg& dm) {
  auto& st = self->state;
  if (st.e->gateway && dm.source == st.e->gateway.address()) {
    self->quit(dm.reason);
    return;
  }
  if (dm.reason == caf::exit_reason::normal) return; // it quit after its final report
  for (auto it = st.flows.begin(); it != st.flows.end(); ++it) {
    if (it->second.address() != dm.source) continue;
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
}

// Starts again the flows of the items left unfinished (item_id 0), or of one item given up on.
void order_resume_items(order_actor* self, const order_resume& r) {
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
}

// A refund's rows: one, or parts over the order's captured items (refund_parts), each counted
// as pending on its item and the order. ok, or why the refund is refused (nothing counted).
payment_result refund_rows(order_state_t& st, const order_command& oc, const order& item, std::vector<order>& parts) {
  const auto& c = oc.cmd;
  order& o = st.row;
  const auto s = static_cast<order_state>(o.state);
  if (o.amount_captured == 0 || s == order_state::in_review) return payment_result::order_not_refundable;
  if (o.amount_refunded + o.amount_refund_pending + unsettled_room(st, 0) + c.amount > o.amount_captured)
    return payment_result::refund_exceeds_captured;
  const auto split = refund_parts(st, c.amount);
  if (split.empty()) return payment_result::refund_exceeds_captured;
  if (split.size() > oc.room) return payment_result::busy; // each part is a flow
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
    if (!st.e->store->get_row(parts[k].id, taken, have).ok()) return payment_result::store_unavailable;
    if (have || st.items.count(parts[k].id)) return payment_result::order_exists;
  }
  for (const order& part : parts) {
    st.items[part.counterparty_id].amount_refund_pending += part.amount;
    o.amount_refund_pending += part.amount;
  }
  return payment_result::ok;
}

// The accepted command's rows are durable (or not): start their flows, or undo what they
// reserved and answer store_unavailable.
void order_accepted(order_actor* self, const order_command& oc, const std::vector<order>& parts,
                    std::shared_ptr<owed_reply> owed, bool ok) {
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
}

// A pay or a refund of this order: checked against what the order still takes (its mailbox is
// the compare-and-set), its rows written, then its flows started.
caf::result<payment_reply> order_take(order_actor* self, order_command& oc) {
  auto& st = self->state;
  ++st.commands;
  const auto& c = oc.cmd;
  order& o = st.row;
  order item = new_row(*st.e, oc.ctx, c, oc.sequence);
  item.id = c.key;
  item.parent_id = o.id;
  item.ledger = o.ledger;
  std::vector<order> parts; // the rows the command creates: one, or a refund's parts
  if (c.kind == uint16_t(kind::pay)) {
    const auto s = static_cast<order_state>(o.state);
    if (s != order_state::created && s != order_state::partially_paid) return reply_of(o, payment_result::order_not_payable);
    const u128 taken = o.amount_captured + st.reserved_amount;
    if (taken >= o.amount || c.amount > o.amount - taken) return reply_of(o, payment_result::amount_exceeds_order_remaining);
    item.counterparty_id = o.account_id;
    reserve(st, item);
  } else if (payment_result r = refund_rows(st, oc, item, parts); r != payment_result::ok) {
    return reply_of(o, r);
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
  order_persist(self, std::move(rows), {c}, std::move(j),
                [self, oc, parts, owed](bool ok) { order_accepted(self, oc, parts, owed, ok); });
  return rp;
}

// A refund the provider made after it had failed (late_start), or the end of one.
caf::result<bool> order_late_refund(order_actor* self, late_refund& lr) {
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
}

// A pay item's flow captured: the order counts it if it still has room (or must: forced).
capture_reply order_capture(order_actor* self, const capture_request& cr) {
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
}

// The reply to a report's command once its rows are written: to the client, or, for a part
// of a split refund, to the split's one reply once every part has ended.
std::function<void(bool)> report_reply(order_actor* self, std::shared_ptr<owed_reply> owed, payment_reply out,
                                       std::shared_ptr<split_reply> split) {
  return [self, owed, out, split](bool ok) mutable {
    if (!ok) out.result = uint32_t(payment_result::store_unavailable);
    if (!split) {
      give_reply(owed, out);
      return;
    }
    if (out.result != uint32_t(payment_result::ok) && split->out.result == uint32_t(payment_result::ok))
      split->out.result = out.result;
    split->out.amount += out.amount;
    if (--split->waiting != 0) return;
    split->out.state = self->state.row.state;
    give_reply(split->owed, split->out);
  };
}

// A flow reports its item: an unknown outcome so far (answered in_progress), or its end,
// written with the order's counts before the client hears of it.
void order_report(order_actor* self, flow_report& r) {
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
  auto reply = report_reply(self, owed, out, split);
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
}

caf::behavior order_behavior(order_actor* self, env_ptr e, order row) {
  order_load(self, e, row);
  drop_unexpected(self, [e, id = row.id](const std::string& m) { e->log_error("order " + to_string_u128(id) + ": " + m); });
  // An order actor ends with the gateway (kassad stopping), as its flows end with it.
  if (e->gateway) self->monitor(e->gateway);
  self->set_down_handler([self](caf::down_msg& dm) { order_down(self, dm); });
  return {
      [self](order_resume& r) { order_resume_items(self, r); },
      [self](order_command& oc) -> caf::result<payment_reply> { return order_take(self, oc); },
      [self](late_refund& lr) -> caf::result<bool> { return order_late_refund(self, lr); },
      [self](capture_request& cr) -> capture_reply { return order_capture(self, cr); },
      [self](flow_report& r) { order_report(self, r); },
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

} // namespace

caf::actor spawn_order(caf::actor_system& sys, env_ptr e, const order& row) {
  return sys.spawn(order_behavior, std::move(e), row);
}

} // namespace kassa::actors::pay
