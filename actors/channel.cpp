#include "actors/channel.hpp"

#include <chrono>
#include <memory>
#include <unordered_map>

#include "actors/unexpected.hpp"
#include "channels/backoff.hpp"
#include "channels/breaker.hpp"
#include "channels/http_client.hpp"
#include "channels/protocol.hpp"
#include "channels/text.hpp"
#include "metrics/shared.hpp"
#include "primitives/assert.hpp"

namespace kassa::actors {

namespace {

// An HTTP answer (or transport failure) for operation `op`, sent by the client's I/O thread.
struct http_done {
  uint64_t op = 0;
  channels::http_result result;
};
// The answer to a read of the events feed.
struct events_done {
  channels::http_result result;
};

} // namespace
} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::http_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::events_done)

namespace kassa::actors {

namespace {

using retry_atom = caf::atom_constant<caf::atom("ch_retry")>;
using poll_atom = caf::atom_constant<caf::atom("ch_poll")>;

constexpr uint32_t events_page_max = 1000;

uint64_t now_ms() {
  using namespace std::chrono;
  return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

enum class op_kind : uint8_t { payment, status, credential, statement };

// One request to the provider, from the message that asked for it to its answer, across
// retries. `counted` ops hold a slot of inflight_max.
struct op {
  op_kind kind = op_kind::payment;
  caf::response_promise rp;
  bool has_promise = false; // false: a credential fetch kassa started for waiting payments
  bool counted = false;
  payment_call call;        // payment
  u128 payment_id = 0;      // payment, status
  statement_request statement;
  uint32_t attempts = 0;
  bool maybe_sent = false;  // an attempt may have reached the provider without an answer
  bool reached = false;     // an attempt may have reached the provider, or it answered
  bool auth_renewed = false;
  bool stop = false;        // no further attempt (the breaker opened meanwhile)
  std::string detail;
  uint64_t started_ns = 0;  // steady clock: a payment or status call was admitted
};

const char* name(channels::breaker_state s) {
  switch (s) {
    case channels::breaker_state::closed: return "closed";
    case channels::breaker_state::half_open: return "half_open";
    case channels::breaker_state::open: return "open";
  }
  return "closed";
}

const char* name(call_status s) {
  switch (s) {
    case call_status::succeeded: return "succeeded";
    case call_status::partial: return "partial";
    case call_status::declined: return "declined";
    case call_status::pending: return "pending";
    case call_status::not_found: return "not_found";
    case call_status::unknown: return "unknown";
    case call_status::rejected: return "rejected";
    case call_status::failed: return "failed";
  }
  return "unknown";
}

// What a channel records (docs/operations.md#metrics); set up when it starts.
struct channel_metrics {
  metrics::gauge* up = nullptr;       // 1 while the breaker is closed
  metrics::gauge* inflight = nullptr;
  std::unique_ptr<metrics::row<metrics::counter>> calls; // by call_status
  metrics::histogram* call_seconds = nullptr;
  metrics::gauge* breaker = nullptr; // breaker_state: 0 closed, 1 half-open, 2 open
  std::unique_ptr<metrics::row<metrics::counter>> transitions; // by the state moved to

  void setup(metrics::registry& r, const std::string& channel) {
    const metrics::labels l{{"channel", channel}};
    breaker = &r.get_gauge("kassa_channel_breaker_state", "The channel's circuit breaker: 0 closed, 1 half-open, 2 open", l);
    transitions = std::make_unique<metrics::row<metrics::counter>>(
        static_cast<size_t>(channels::breaker_state::open) + 1, [&r, channel](size_t s) -> metrics::counter& {
          return r.get_counter("kassa_channel_breaker_transitions_total", "Moves of the channel's circuit breaker, by the state moved to",
                               {{"channel", channel}, {"to", name(static_cast<channels::breaker_state>(s))}});
        });
    up = &r.get_gauge("kassa_channel_up", "1 while the channel's circuit breaker is closed, else 0", l);
    inflight = &r.get_gauge("kassa_channel_inflight", "Payment and status calls the channel has in flight", l);
    calls = std::make_unique<metrics::row<metrics::counter>>(
        static_cast<size_t>(call_status::failed) + 1, [&r, channel](size_t s) -> metrics::counter& {
          return r.get_counter("kassa_channel_calls_total", "Payment and status calls by how they ended",
                               {{"channel", channel}, {"outcome", name(static_cast<call_status>(s))}});
        });
    call_seconds = &r.get_histogram("kassa_channel_call_seconds",
                                    "A payment or status call: admitted -> answered, retries included", l,
                                    metrics::seconds_buckets());
  }
};

struct channel_state {
  static inline const char* name = "kassa.channel";

  channel_options opts;
  std::unique_ptr<channels::http_client> http;
  channels::breaker breaker;
  channels::backoff_policy backoff;
  std::unordered_map<uint64_t, op> ops;
  uint64_t op_next = 1;
  uint32_t inflight = 0;
  // The cached credential, and payments waiting for one.
  std::string token;
  uint64_t token_valid_until_ms = 0;
  bool token_fetching = false;
  std::vector<uint64_t> token_waiters;
  // The events feed.
  caf::actor subscriber;
  uint64_t events_after = 0;
  bool poll_out = false;
  bool poll_armed = false;
  uint64_t calls = 0, failures = 0, rejected = 0;
  channel_metrics stats;
  // The breaker's state as last told (logged and counted); it moves on calls' outcomes and,
  // from open to half-open, with time.
  channels::breaker_state breaker_told = channels::breaker_state::closed;
  std::string breaker_why; // the failure that last counted against the breaker
};

using channel_actor = caf::stateful_actor<channel_state>;

call_kind to_call(channels::pay_kind k) {
  switch (k) {
    case channels::pay_kind::charge: return call_kind::charge;
    case channels::pay_kind::payout: return call_kind::payout;
    case channels::pay_kind::refund: return call_kind::refund;
  }
  return call_kind::charge;
}

channels::pay_kind to_pay(call_kind k) {
  switch (k) {
    case call_kind::charge: return channels::pay_kind::charge;
    case call_kind::payout: return channels::pay_kind::payout;
    case call_kind::refund: return channels::pay_kind::refund;
  }
  return channels::pay_kind::charge;
}

call_status to_call(channels::pay_status s) {
  switch (s) {
    case channels::pay_status::succeeded: return call_status::succeeded;
    case channels::pay_status::partial: return call_status::partial;
    case channels::pay_status::declined: return call_status::declined;
    case channels::pay_status::pending: return call_status::pending;
    case channels::pay_status::not_found: return call_status::not_found;
  }
  return call_status::unknown;
}

call_result verdict(call_status s, u128 payment_id, std::string detail, uint32_t attempts = 0) {
  call_result r;
  r.status = s;
  r.payment_id = payment_id;
  r.attempts = attempts;
  r.detail = std::move(detail);
  return r;
}

// The I/O thread reports back by message; a weak handle, so that pending requests do not keep
// a stopped channel alive.
channels::http_client::callback reply_to(channel_actor* self, uint64_t id) {
  caf::weak_actor_ptr weak{self->ctrl()};
  return [weak, id](channels::http_result r) {
    if (auto strong = weak.lock()) caf::anon_send(caf::actor_cast<caf::actor>(strong), http_done{id, std::move(r)});
  };
}

std::string error_text(const channels::http_result& r) {
  std::string text = "HTTP " + std::to_string(r.status);
  auto at = r.body.find("\"error\":\"");
  if (at != std::string::npos) {
    const auto end = r.body.find('"', at + 9);
    text += ": " + r.body.substr(at + 9, end == std::string::npos ? 64 : std::min<size_t>(end - at - 9, 200));
  }
  return text;
}

void finish(channel_actor* self, uint64_t id, call_result r);
void finish_credential(channel_actor* self, uint64_t id, bool ok, std::string detail);
void send(channel_actor* self, uint64_t id);

bool token_fresh(channel_actor* self) {
  auto& st = self->state;
  return !st.token.empty() && now_ms() < st.token_valid_until_ms;
}

// Starts a credential fetch unless one is out; `promise` answers a credential_request.
void fetch_token(channel_actor* self, caf::response_promise* promise) {
  auto& st = self->state;
  op o;
  o.kind = op_kind::credential;
  if (promise) {
    o.rp = *promise;
    o.has_promise = true;
  } else if (st.token_fetching) {
    return;
  }
  st.token_fetching = true;
  const uint64_t id = st.op_next++;
  st.ops.emplace(id, std::move(o));
  send(self, id);
}

// Sends one attempt of an operation.
void send(channel_actor* self, uint64_t id) {
  auto& st = self->state;
  op& o = st.ops.at(id);
  const std::string& prefix = st.opts.path_prefix;
  switch (o.kind) {
    case op_kind::payment: {
      if (st.opts.credentials && o.call.credential.empty()) {
        if (!token_fresh(self)) {
          st.token_waiters.push_back(id);
          fetch_token(self, nullptr);
          return;
        }
        o.call.credential = st.token;
      }
      channels::payment_request req;
      req.payment_id = o.call.payment_id;
      req.kind = to_pay(o.call.kind);
      req.amount = o.call.amount;
      req.ledger = o.call.ledger;
      req.account_id = o.call.account_id;
      req.refund_of = o.call.refund_of;
      req.token = o.call.credential;
      ++o.attempts;
      st.http->request(true, prefix + "/v1/payments", channels::encode(req), st.opts.timeout_ms, reply_to(self, id));
      return;
    }
    case op_kind::status:
      ++o.attempts;
      st.http->request(false, prefix + "/v1/payments/" + channels::id_text(o.payment_id), {}, st.opts.timeout_ms,
                       reply_to(self, id));
      return;
    case op_kind::credential:
      ++o.attempts;
      st.http->request(true, prefix + "/v1/credentials", "{}", st.opts.timeout_ms, reply_to(self, id));
      return;
    case op_kind::statement:
      ++o.attempts;
      st.http->request(false,
                       prefix + "/v1/statement?after=" + std::to_string(o.statement.after) +
                           "&limit=" + std::to_string(o.statement.limit),
                       {}, st.opts.timeout_ms, reply_to(self, id));
      return;
  }
}

// A transport failure or a 5xx: retry after a backoff while attempts and the breaker allow,
// else give up. The provider's payment call is idempotent by payment_id, so a resend can
// never move money twice; status and credential calls change nothing.
void retry_or_give_up(channel_actor* self, uint64_t id) {
  auto& st = self->state;
  op& o = st.ops.at(id);
  const bool retryable = o.kind != op_kind::statement; // the reconciler reads again on its own
  if (retryable && !o.stop && o.attempts <= st.opts.retries_max) {
    const uint64_t key = o.kind == op_kind::payment || o.kind == op_kind::status ? u128_lo(o.payment_id) ^ u128_hi(o.payment_id) : id;
    const uint32_t delay = st.backoff.delay_ms(o.attempts, key);
    self->delayed_send(self, std::chrono::milliseconds(delay), retry_atom::value, id);
    return;
  }
  const std::string why = o.detail + " (" + std::to_string(o.attempts) + " attempts)";
  switch (o.kind) {
    case op_kind::payment:
    case op_kind::status:
      finish(self, id, verdict(o.maybe_sent ? call_status::unknown : call_status::failed, o.payment_id, why, o.attempts));
      return;
    case op_kind::credential: finish_credential(self, id, false, "credentials: " + why); return;
    case op_kind::statement: {
      statement_reply r;
      r.detail = why;
      o.rp.deliver(std::move(r));
      st.ops.erase(id);
      return;
    }
  }
}

// The breaker's state and the calls in flight, as the metrics show them; a move of the
// breaker since it was last told is logged and counted.
void record_health(channel_actor* self) {
  auto& st = self->state;
  const channels::breaker_state now = st.breaker.state(now_ms());
  st.stats.up->set(now == channels::breaker_state::closed ? 1 : 0);
  st.stats.breaker->set(static_cast<int64_t>(now));
  st.stats.inflight->set(st.inflight);
  if (now == st.breaker_told) return;
  st.breaker_told = now;
  (*st.stats.transitions)[static_cast<size_t>(now)].add();
  if (!st.opts.log) return;
  const std::string& who = st.opts.name;
  switch (now) {
    case channels::breaker_state::open:
      st.opts.log(true, "channel " + who + ": circuit breaker opened, calls are refused for " +
                            std::to_string(st.opts.breaker_open_ms) + " ms (last failure: " + st.breaker_why + ")");
      return;
    case channels::breaker_state::half_open:
      st.opts.log(false, "channel " + who + ": circuit breaker half-open, one probe call may pass (open for " +
                             std::to_string(st.opts.breaker_open_ms) + " ms)");
      return;
    case channels::breaker_state::closed:
      st.opts.log(false, "channel " + who + ": circuit breaker closed, a probe call succeeded");
      return;
  }
}

// What the provider's answers tell the breaker; each is followed by record_health.
void breaker_failure(channel_actor* self, const std::string& why) {
  auto& st = self->state;
  st.breaker_why = why;
  st.breaker.failure(now_ms());
  ++st.failures;
  record_health(self);
}
void breaker_success(channel_actor* self) {
  self->state.breaker.success(now_ms());
  record_health(self);
}
bool breaker_allow(channel_actor* self) {
  const bool ok = self->state.breaker.allow(now_ms());
  record_health(self);
  return ok;
}

void finish(channel_actor* self, uint64_t id, call_result r) {
  auto& st = self->state;
  auto it = st.ops.find(id);
  KASSA_ASSERT(it != st.ops.end());
  op& o = it->second;
  r.attempts = o.attempts;
  if (r.payment_id == 0) r.payment_id = o.payment_id;
  // refused or failed before any attempt could reach the provider: proven untouched
  if ((r.status == call_status::failed || r.status == call_status::rejected) && !o.reached) r.not_sent = true;
  if (o.counted) {
    KASSA_ASSERT(st.inflight > 0);
    --st.inflight;
  }
  if (o.kind == op_kind::payment || o.kind == op_kind::status) {
    (*st.stats.calls)[static_cast<size_t>(r.status)].add();
    if (o.started_ns != 0) st.stats.call_seconds->observe(metrics::elapsed(o.started_ns, metrics::steady_ns()));
  }
  record_health(self);
  if (o.has_promise) o.rp.deliver(std::move(r));
  st.ops.erase(it);
}

void finish_credential(channel_actor* self, uint64_t id, bool ok, std::string detail) {
  auto& st = self->state;
  auto it = st.ops.find(id);
  KASSA_ASSERT(it != st.ops.end());
  op o = std::move(it->second);
  st.ops.erase(it);
  if (o.counted) --st.inflight;
  if (o.has_promise) o.rp.deliver(credential_reply{ok, ok ? st.token : std::string{}, ok ? std::string{} : detail});
  st.token_fetching = false;
  for (const auto& [_, other] : st.ops) {
    if (other.kind == op_kind::credential) st.token_fetching = true; // another fetch is still out
  }
  std::vector<uint64_t> waiters;
  waiters.swap(st.token_waiters);
  for (uint64_t w : waiters) {
    if (!st.ops.count(w)) continue;
    if (ok) send(self, w);
    else finish(self, w, verdict(call_status::failed, 0, detail));
  }
}

void on_payment_answer(channel_actor* self, uint64_t id, channels::http_result& r) {
  auto& st = self->state;
  op& o = st.ops.at(id);
  if (r.status == 200 || (r.status == 404 && o.kind == op_kind::status)) {
    channels::payment_response resp;
    std::string why;
    if (r.status == 404) {
      breaker_success(self);
      finish(self, id, verdict(call_status::not_found, o.payment_id, "the provider has no such payment"));
      return;
    }
    if (!channels::decode(r.body, resp, why) || resp.payment_id != o.payment_id) {
      // It answered, so it may have acted: the outcome is unknown until a status query.
      breaker_failure(self, "an unreadable answer");
      finish(self, id, verdict(call_status::unknown, o.payment_id,
                               "unreadable answer: " + (why.empty() ? "for another payment_id" : why)));
      return;
    }
    breaker_success(self);
    call_result out = verdict(to_call(resp.status), o.payment_id, {});
    out.amount = resp.amount;
    out.provider_ref = resp.provider_ref;
    finish(self, id, std::move(out));
    return;
  }
  if (r.status == 401 && o.kind == op_kind::payment && st.opts.credentials && !o.auth_renewed) {
    // The token expired or was revoked: forget it, fetch a new one, send again once.
    breaker_success(self);
    o.auth_renewed = true;
    if (o.call.credential == st.token) st.token.clear();
    o.call.credential.clear();
    send(self, id);
    return;
  }
  if (r.status >= 500) {
    o.detail = error_text(r);
    breaker_failure(self, o.detail);
    retry_or_give_up(self, id);
    return;
  }
  // Another 4xx: kassa's request was refused as it stands; sending it again changes nothing.
  breaker_success(self);
  finish(self, id, verdict(call_status::failed, o.payment_id, error_text(r)));
}

void on_answer(channel_actor* self, http_done& done) {
  auto& st = self->state;
  auto it = st.ops.find(done.op);
  if (it == st.ops.end()) return;
  op& o = it->second;
  channels::http_result& r = done.result;
  if (r.error != channels::http_error::none) {
    o.maybe_sent = o.maybe_sent || r.maybe_sent;
    o.reached = o.reached || r.maybe_sent;
    o.detail = r.detail.empty() ? channels::name(r.error) : r.detail;
    if (o.kind != op_kind::statement) breaker_failure(self, o.detail);
    retry_or_give_up(self, done.op);
    return;
  }
  o.reached = true; // it answered: whatever it says, it saw the request
  switch (o.kind) {
    case op_kind::payment:
    case op_kind::status: on_payment_answer(self, done.op, r); return;
    case op_kind::credential: {
      channels::credentials_response c;
      std::string why;
      if (r.status == 200 && channels::decode(r.body, c, why)) {
        breaker_success(self);
        const uint64_t ttl_ms = std::min<uint64_t>(c.expires_ms, st.opts.credential_ttl_ms);
        // Renew a little early so that a token never expires on its way to the provider.
        const uint64_t margin_ms = std::min<uint64_t>(1000, ttl_ms / 10);
        st.token = c.token;
        st.token_valid_until_ms = now_ms() + ttl_ms - margin_ms;
        finish_credential(self, done.op, true, {});
      } else if (r.status >= 500) {
        o.detail = error_text(r);
        breaker_failure(self, "credentials: " + o.detail);
        retry_or_give_up(self, done.op);
      } else {
        finish_credential(self, done.op, false, "credentials: " + (why.empty() ? error_text(r) : why));
      }
      return;
    }
    case op_kind::statement: {
      statement_reply out;
      std::vector<channels::statement_line> lines;
      std::string why;
      if (r.status != 200) {
        out.detail = error_text(r);
      } else if (!channels::decode_statement(r.body, lines, why)) {
        out.detail = "unreadable statement: " + why;
      } else {
        out.ok = true;
        out.entries.reserve(lines.size());
        for (const auto& l : lines) {
          statement_entry e;
          e.sequence = l.sequence;
          e.payment_id = l.payment_id;
          e.kind = to_call(l.kind);
          e.status = to_call(l.status);
          e.amount = l.amount;
          e.ledger = l.ledger;
          e.provider_ref = l.provider_ref;
          out.entries.push_back(std::move(e));
        }
      }
      o.rp.deliver(std::move(out));
      st.ops.erase(it);
      return;
    }
  }
}

// Takes a slot for a payment or status call, or says why not (nothing is sent then).
bool admit(channel_actor* self, std::string& why) {
  auto& st = self->state;
  ++st.calls;
  if (st.inflight >= st.opts.inflight_max) {
    ++st.rejected;
    why = "inflight_max (" + std::to_string(st.opts.inflight_max) + ") reached";
    return false;
  }
  if (!breaker_allow(self)) {
    ++st.rejected;
    why = "circuit breaker open: " + st.opts.name + " is failing";
    return false;
  }
  ++st.inflight;
  st.stats.inflight->set(st.inflight);
  return true;
}

// A payment or status call refused before anything was sent.
call_result rejected(channel_actor* self, u128 payment_id, const std::string& why) {
  (*self->state.stats.calls)[static_cast<size_t>(call_status::rejected)].add();
  record_health(self);
  call_result r = verdict(call_status::rejected, payment_id, why);
  r.not_sent = true;
  return r;
}

uint64_t add_op(channel_actor* self, op o) {
  auto& st = self->state;
  const uint64_t id = st.op_next++;
  st.ops.emplace(id, std::move(o));
  return id;
}

void arm_poll(channel_actor* self, uint32_t delay_ms) {
  auto& st = self->state;
  if (st.poll_armed || st.opts.events_poll_ms == 0 || !st.subscriber) return;
  st.poll_armed = true;
  if (delay_ms == 0) self->send(self, poll_atom::value);
  else self->delayed_send(self, std::chrono::milliseconds(delay_ms), poll_atom::value);
}

void poll_events(channel_actor* self) {
  auto& st = self->state;
  st.poll_armed = false;
  record_health(self); // the breaker also moves with time (open -> half-open)
  if (st.poll_out || !st.subscriber) return;
  if (st.breaker.state(now_ms()) == channels::breaker_state::open) {
    arm_poll(self, st.opts.events_poll_ms); // no network while the breaker is open
    return;
  }
  st.poll_out = true;
  caf::weak_actor_ptr weak{self->ctrl()};
  st.http->request(false,
                   st.opts.path_prefix + "/v1/events?after=" + std::to_string(st.events_after) +
                       "&limit=" + std::to_string(events_page_max),
                   {}, st.opts.timeout_ms, [weak](channels::http_result r) {
                     if (auto strong = weak.lock())
                       caf::anon_send(caf::actor_cast<caf::actor>(strong), events_done{std::move(r)});
                   });
}

void on_events(channel_actor* self, events_done& done) {
  auto& st = self->state;
  st.poll_out = false;
  std::vector<channels::event> events;
  std::string why;
  const auto& r = done.result;
  if (r.error == channels::http_error::none && r.status == 200 && channels::decode_events(r.body, events, why)) {
    for (const auto& e : events) {
      if (e.sequence <= st.events_after) continue; // already delivered
      provider_event pe;
      pe.provider = st.opts.name;
      pe.sequence = e.sequence;
      pe.payment_id = e.payment_id;
      pe.kind = to_call(e.kind);
      pe.status = to_call(e.status);
      pe.amount = e.amount;
      pe.provider_ref = e.provider_ref;
      st.events_after = e.sequence;
      if (st.subscriber) self->send(st.subscriber, std::move(pe));
    }
    // A full page: more are waiting, read on at once.
    arm_poll(self, events.size() >= events_page_max ? 0 : st.opts.events_poll_ms);
    return;
  }
  arm_poll(self, st.opts.events_poll_ms);
}

caf::behavior channel(channel_actor* self, channel_options opts) {
  auto& st = self->state;
  KASSA_ASSERT(opts.inflight_max >= 1 && opts.connections_max >= 1 && opts.timeout_ms >= 1);
  KASSA_ASSERT(opts.backoff_ms_min <= opts.backoff_ms_max);
  st.opts = std::move(opts);
  channels::http_client_options ho;
  ho.host = st.opts.host;
  ho.port = st.opts.port;
  ho.connections_max = st.opts.connections_max;
  ho.queue_max = st.opts.inflight_max + events_page_max; // every call admitted, plus the feed reads
  st.http = std::make_unique<channels::http_client>(ho);
  st.breaker = channels::breaker(
      channels::breaker_options{st.opts.breaker_failures_min, st.opts.breaker_window_ms, st.opts.breaker_open_ms});
  st.backoff = channels::backoff_policy{st.opts.backoff_ms_min, st.opts.backoff_ms_max, st.opts.seed};
  st.stats.setup(metrics::process_registry(), st.opts.name);
  record_health(self);
  drop_unexpected(self, [self](const std::string& m) {
    if (self->state.opts.log) self->state.opts.log(true, "channel " + self->state.opts.name + ": " + m);
  });
  return {
      [self](payment_call& c) -> caf::result<call_result> {
        std::string why;
        if (!admit(self, why)) return rejected(self, c.payment_id, why);
        op o;
        o.started_ns = metrics::steady_ns();
        o.kind = op_kind::payment;
        o.rp = self->make_response_promise();
        o.has_promise = true;
        o.counted = true;
        o.payment_id = c.payment_id;
        o.call = std::move(c);
        auto rp = o.rp;
        send(self, add_op(self, std::move(o)));
        return rp;
      },
      [self](status_query& q) -> caf::result<call_result> {
        std::string why;
        if (!admit(self, why)) return rejected(self, q.payment_id, why);
        op o;
        o.started_ns = metrics::steady_ns();
        o.kind = op_kind::status;
        o.rp = self->make_response_promise();
        o.has_promise = true;
        o.counted = true;
        o.payment_id = q.payment_id;
        auto rp = o.rp;
        send(self, add_op(self, std::move(o)));
        return rp;
      },
      [self](credential_request&) -> caf::result<credential_reply> {
        auto& st = self->state;
        if (token_fresh(self)) return credential_reply{true, st.token, {}};
        std::string why;
        if (!admit(self, why)) return credential_reply{false, {}, why};
        --st.inflight; // credential fetches are few and short: admitted, not counted
        caf::response_promise rp = self->make_response_promise();
        fetch_token(self, &rp);
        return rp;
      },
      [self](statement_request& r) -> caf::result<statement_reply> {
        op o;
        o.kind = op_kind::statement;
        o.rp = self->make_response_promise();
        o.has_promise = true;
        o.statement = r;
        if (o.statement.limit == 0 || o.statement.limit > 10'000) o.statement.limit = 10'000;
        auto rp = o.rp;
        send(self, add_op(self, std::move(o)));
        return rp;
      },
      [self](health_request&) {
        auto& st = self->state;
        record_health(self); // the breaker also moves with time (open -> half-open)
        health_reply h;
        h.provider = st.opts.name;
        switch (st.breaker.state(now_ms())) {
          case channels::breaker_state::closed: h.state = health_state::healthy; break;
          case channels::breaker_state::half_open: h.state = health_state::degraded; break;
          case channels::breaker_state::open: h.state = health_state::down; break;
        }
        h.inflight = st.inflight;
        h.inflight_max = st.opts.inflight_max;
        h.calls = st.calls;
        h.failures = st.failures;
        h.rejected = st.rejected;
        return h;
      },
      [self](subscribe_events& s) {
        auto& st = self->state;
        st.subscriber = s.subscriber;
        st.events_after = s.after;
        arm_poll(self, 0);
      },
      [self](http_done& d) { on_answer(self, d); },
      [self](events_done& d) { on_events(self, d); },
      [self](poll_atom) {
        if (from_self(self)) poll_events(self);
      },
      [self](retry_atom, uint64_t id) {
        if (!from_self(self)) return;
        auto& st = self->state;
        auto it = st.ops.find(id);
        if (it == st.ops.end()) return;
        if (!breaker_allow(self)) {
          // The provider is failing: stop resending; what happened so far decides the answer.
          op& o = it->second;
          o.detail += "; circuit breaker open";
          o.stop = true;
          retry_or_give_up(self, id);
          return;
        }
        send(self, id);
      },
  };
}

} // namespace

caf::actor spawn_channel(caf::actor_system& sys, channel_options opts) {
  return sys.spawn(channel, std::move(opts));
}

} // namespace kassa::actors
