#include "runtime/server.hpp"

#include <boost/asio.hpp>
#include <cerrno>
#include <deque>
#include <sys/random.h>
#include <thread>
#include <type_traits>
#include <unordered_set>

#include "actors/messages.hpp"
#include "actors/payment_messages.hpp"
#include "ledger/result.hpp"
#include "metrics/shared.hpp"
#include "primitives/assert.hpp"
#include "runtime/io_thread.hpp"
#include "runtime/log.hpp"
#include "runtime/server_cases.hpp"
#include "runtime/wire/wire.hpp"

namespace kassa::runtime {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

struct connection;

// A request as it leaves the I/O thread for the session actor: a checked header and a copy
// of the body.
struct inbound {
  wire::header h;
  std::vector<uint8_t> body;
  const access::client* who = nullptr; // the authenticated client; points into server_options
  uint64_t received_ns = 0;            // steady clock: the read that completed the frame
};

// What the I/O thread records when it queues a reply to a request the session answered.
struct reply_stamp {
  wire::operation op = wire::operation::hello;
  wire::status st = wire::status::ok;
  uint64_t received_ns = 0; // the frame was complete
  uint64_t built_ns = 0;    // the session had the ledger's reply
};

// The front end's metrics (docs/operations.md#metrics). Rows are indexed by operation number,
// the last slot standing for an unknown one; replies by operation and status.
struct server_metrics {
  static constexpr size_t operations = wire::operation_max + 2;
  static constexpr size_t statuses = wire::status_max + 2;

  explicit server_metrics(metrics::registry& r)
      : decode(metrics::stage_seconds(r, metrics::stage::decode)),
        encode(metrics::stage_seconds(r, metrics::stage::encode)),
        requests(operations, [&r](size_t op) -> metrics::counter& {
          return r.get_counter("kassa_requests_total", "Requests received, by operation", {{"operation", op_name(op)}});
        }),
        request_seconds(operations, [&r](size_t op) -> metrics::histogram& {
          return r.get_histogram("kassa_request_seconds",
                                 "A request inside kassad: its frame complete -> its reply queued on the socket",
                                 {{"operation", op_name(op)}}, metrics::seconds_buckets());
        }),
        replies(operations * statuses, [&r](size_t i) -> metrics::counter& {
          return r.get_counter("kassa_replies_total", "Replies sent, by operation and status",
                               {{"operation", op_name(i / statuses)}, {"status", status_name(i % statuses)}});
        }),
        account_results(ledger::account_result_count + 1, [&r](size_t code) -> metrics::counter& {
          return r.get_counter("kassa_results_total", "Event results of create_accounts and create_transfers, by code",
                               {{"operation", "create_accounts"},
                                {"code", code < ledger::account_result_count
                                             ? std::string(ledger::name(static_cast<ledger::account_result>(code)))
                                             : "unknown"}});
        }),
        transfer_results(ledger::transfer_result_count + 1, [&r](size_t code) -> metrics::counter& {
          return r.get_counter("kassa_results_total", "Event results of create_accounts and create_transfers, by code",
                               {{"operation", "create_transfers"},
                                {"code", code < ledger::transfer_result_count
                                             ? std::string(ledger::name(static_cast<ledger::transfer_result>(code)))
                                             : "unknown"}});
        }),
        frames_rejected(statuses, [&r](size_t st) -> metrics::counter& {
          return r.get_counter("kassa_frames_rejected_total", "Frames the codec refused, by status",
                               {{"status", status_name(st)}});
        }),
        connections_open(r.get_gauge("kassa_connections_open", "Client connections open")),
        connections_refused(r.get_counter("kassa_connections_refused_total",
                                          "Client connections refused (server.connections_max, or draining)")) {}

  static std::string op_name(size_t op) {
    return op < operations - 1 ? std::string(wire::name(static_cast<wire::operation>(op))) : "unknown";
  }
  static std::string status_name(size_t st) {
    return st < statuses - 1 ? std::string(wire::name(static_cast<wire::status>(st))) : "unknown";
  }
  static size_t op_index(wire::operation op) { return std::min<size_t>(static_cast<size_t>(op), operations - 1); }
  static size_t status_index(wire::status st) { return std::min<size_t>(static_cast<size_t>(st), statuses - 1); }

  void replied(wire::operation op, wire::status st) { replies[op_index(op) * statuses + status_index(st)].add(); }

  metrics::histogram& decode;
  metrics::histogram& encode;
  metrics::row<metrics::counter> requests;
  metrics::row<metrics::histogram> request_seconds;
  metrics::row<metrics::counter> replies;
  metrics::row<metrics::counter> account_results;
  metrics::row<metrics::counter> transfer_results;
  metrics::row<metrics::counter> frames_rejected;
  metrics::gauge& connections_open;
  metrics::counter& connections_refused;
};

} // namespace
} // namespace kassa::runtime

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::runtime::inbound)

namespace kassa::runtime {

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(caf::actor_system& s, server_options o) : sys(s), opts(std::move(o)), stats(*opts.metrics) {}

  caf::actor_system& sys;
  server_options opts;
  server_metrics stats;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::atomic<size_t> connection_count{0};
  std::atomic<size_t> inflight{0};
  std::atomic<bool> draining{false};
  std::atomic<bool> io_done{false}; // run() returned: no handler is pending
  std::unordered_set<std::shared_ptr<connection>> connections; // I/O thread only

  void accept();
};

namespace {

constexpr size_t read_chunk_bytes = 64 * 1024;

// One client connection. Lives on the I/O thread; the session actor holds a reference to
// post replies, so it outlives the socket until the session is gone.
struct connection : std::enable_shared_from_this<connection> {
  connection(std::shared_ptr<server::impl> s, tcp::socket sock)
      : srv(std::move(s)), socket(std::move(sock)) {}

  std::shared_ptr<server::impl> srv;
  tcp::socket socket;
  caf::actor session;
  std::vector<uint8_t> in = std::vector<uint8_t>(read_chunk_bytes);
  size_t in_used = 0;
  std::deque<std::vector<uint8_t>> out;
  size_t out_bytes = 0;
  bool writing = false;
  bool reading = false;
  bool close_after_write = false;
  bool closed = false;
  bool hello_done = false;
  uint32_t inflight = 0;
  uint8_t server_nonce[wire::nonce_bytes] = {}; // the challenge of this connection's hello
  const access::client* who = nullptr;           // set by a successful authenticate
  uint32_t authentication_failures = 0;
  uint64_t received_ns = 0; // steady clock: the last read, which completed the frames in `in`

  size_t out_bytes_max() const { return 4 * size_t{srv->opts.frame_bytes_max}; }

  void start();
  void read();
  void process();
  void dispatch(const wire::decoded& d);
  void authenticate(const wire::decoded& d);
  std::string remote() const;
  void send(std::vector<uint8_t> bytes, const reply_stamp* completes = nullptr);
  void refuse(const wire::header& h, wire::status st);
  void write_next();
  void close();

  // Called from a session actor's thread.
  void post_reply(std::vector<uint8_t> bytes, reply_stamp stamp) {
    asio::post(srv->io, [self = shared_from_this(), bytes = std::move(bytes), stamp]() mutable {
      self->send(std::move(bytes), &stamp);
    });
  }
};

struct session_state {
  static inline const char* name = "kassa.session";
  std::shared_ptr<connection> conn;
  actors::ledger_client_actor ledger;
  caf::actor payments; // unset: payments are disabled
  // The shadow store's (server_options): unset when the shadow store or its payments are off.
  actors::ledger_client_actor shadow_ledger;
  caf::actor shadow_payments;
  caf::actor reconciler; // unset: reconciliation is off
};

using session_actor = caf::stateful_actor<session_state>;

wire::status to_wire(actors::outcome o) {
  switch (o) {
    case actors::outcome::ok: return wire::status::ok;
    case actors::outcome::busy: return wire::status::busy;
    case actors::outcome::store_unavailable: return wire::status::store_unavailable;
    case actors::outcome::deadline_exceeded: return wire::status::deadline_exceeded;
    case actors::outcome::shutting_down: return wire::status::shutting_down;
    case actors::outcome::filter_invalid: return wire::status::filter_invalid;
    case actors::outcome::too_many: return wire::status::too_many_events;
  }
  return wire::status::internal;
}

// The session has the answer to `request` (received at `received_ns`): encode it and hand it
// to the I/O thread, which records the request's time and the encode stage once it is queued.
void reply(session_actor* self, const wire::header& request, uint64_t received_ns, wire::status st,
           const void* body, size_t body_bytes, size_t count) {
  const uint64_t built_ns = metrics::steady_ns();
  wire::header h = request;
  h.reply = true;
  h.st = st;
  h.event_count = st == wire::status::ok ? static_cast<uint32_t>(count) : 0;
  std::vector<uint8_t> bytes;
  bytes.reserve(wire::header_bytes + body_bytes);
  wire::encode(bytes, h, st == wire::status::ok ? body : nullptr, st == wire::status::ok ? body_bytes : 0);
  self->state.conn->post_reply(std::move(bytes), reply_stamp{request.op, st, received_ns, built_ns});
}

template <class T>
void reply_records(session_actor* self, const wire::header& request, uint64_t received_ns,
                   actors::outcome o, const std::vector<T>& records) {
  reply(self, request, received_ns, to_wire(o), records.data(), records.size() * sizeof(T), records.size());
}

// Counts the event results of a create_* reply: ok for every event not listed, and each
// listed code, one add per run of equal codes.
void count_results(server_metrics& m, const wire::header& h, const actors::create_reply& r) {
  if (r.status != actors::outcome::ok) return;
  metrics::row<metrics::counter>& row =
      h.op == wire::operation::create_accounts ? m.account_results : m.transfer_results;
  if (h.event_count > r.failures.size()) row[0].add(h.event_count - r.failures.size());
  for (size_t i = 0; i < r.failures.size();) {
    size_t j = i + 1;
    while (j < r.failures.size() && r.failures[j].code == r.failures[i].code) ++j;
    row[r.failures[i].code].add(j - i);
    i = j;
  }
}

actors::request_context context_of(const wire::header& h) {
  return {h.ctx.trace_id, h.ctx.business_id, h.ctx.client_id, h.ctx.deadline_ns, h.ctx.shadow};
}

ledger::store::account_filter filter_of(const std::vector<uint8_t>& body) {
  wire::filter f;
  std::memcpy(&f, body.data(), sizeof f);
  ledger::store::account_filter out;
  out.account_id = f.account_id;
  out.timestamp_min = f.timestamp_min;
  out.timestamp_max = f.timestamp_max;
  out.limit = f.limit;
  out.debits = (f.flags & wire::filter_debits) != 0;
  out.credits = (f.flags & wire::filter_credits) != 0;
  out.reversed = (f.flags & wire::filter_reversed) != 0;
  return out;
}

static_assert(sizeof(actors::event_result) == sizeof(wire::event_result));

// The session: one per connection. Turns checked frames into ledger requests and ledger
// replies into frames. Replies may leave in another order than requests came in; clients
// match them by request_id.
// Asks `to` (the ledger, or the payment core) and answers the frame with the records its reply
// holds in `field`.
template <class T, class = void>
struct has_ledger : std::false_type {};
template <class T>
struct has_ledger<T, std::void_t<decltype(std::declval<T>().ledger)>> : std::true_type {};

// Records that name a ledger (accounts, transfers, orders) are left out of the reply when the
// client `who` may not use their ledger.
template <class Handle, class Request, class Reply, class Records>
void forward(session_actor* self, const Handle& to, const wire::header& h, uint64_t received_ns,
             Request request, Records Reply::*field, const access::client* who) {
  self->request(to, caf::infinite, std::move(request))
      .then(
          [self, h, received_ns, field, who](Reply& r) {
            if constexpr (has_ledger<typename Records::value_type>::value) {
              if (who != nullptr) access::keep_allowed(*who, r.*field);
            }
            if constexpr (std::is_same_v<Reply, actors::create_reply>) {
              count_results(self->state.conn->srv->stats, h, r);
            }
            reply_records(self, h, received_ns, r.status, r.*field);
          },
          [self, h, received_ns](caf::error&) { reply(self, h, received_ns, wire::status::internal, nullptr, 0, 0); });
}

// Balances carry no ledger: a client limited to ledgers gets them only for an account of one
// of its ledgers, found first; any other account answers as one without history (empty).
void forward_balances(session_actor* self, const actors::ledger_client_actor& ledger, const wire::header& h, uint64_t received_ns,
                      const actors::request_context& ctx, const ledger::store::account_filter& f,
                      const access::client* who) {
  if (who == nullptr || who->every_ledger()) {
    forward(self, ledger, h, received_ns, actors::account_balances_request{ctx, f},
            &actors::balances_reply::balances, who);
    return;
  }
  self->request(ledger, caf::infinite, actors::lookup_accounts_request{ctx, {f.account_id}})
      .then(
          [self, ledger, h, received_ns, ctx, f, who](actors::accounts_reply& r) {
            if (r.status == actors::outcome::ok && r.accounts.size() == 1 &&
                who->ledger_allowed(r.accounts[0].ledger)) {
              forward(self, ledger, h, received_ns, actors::account_balances_request{ctx, f},
                      &actors::balances_reply::balances, who);
            } else {
              reply_records(self, h, received_ns, r.status, std::vector<ledger::account_balance>{});
            }
          },
          [self, h, received_ns](caf::error&) { reply(self, h, received_ns, wire::status::internal, nullptr, 0, 0); });
}

caf::behavior session(session_actor* self, std::shared_ptr<connection> conn) {
  const server_options& opts = conn->srv->opts;
  self->state.conn = std::move(conn);
  self->state.ledger = opts.ledger;
  self->state.payments = opts.payments;
  self->state.shadow_ledger = opts.shadow_ledger;
  self->state.shadow_payments = opts.shadow_payments;
  self->state.reconciler = opts.reconciler;
  return {
      [self](inbound& in) {
        const wire::header& h = in.h;
        const access::client* who = in.who;
        const uint64_t t = in.received_ns;
        const actors::request_context ctx = context_of(h);
        const uint8_t* body = in.body.data();
        const size_t bytes = in.body.size();
        // The shadow flag picks the store: the real and the shadow store never see each
        // other's requests.
        const session_state& st = self->state;
        if (h.ctx.shadow && !st.shadow_ledger) {
          reply(self, h, t, wire::status::shadow_disabled, nullptr, 0, 0);
          return;
        }
        const actors::ledger_client_actor& ledger = h.ctx.shadow ? st.shadow_ledger : st.ledger;
        const caf::actor& payments = h.ctx.shadow ? st.shadow_payments : st.payments;
        // A ledger request is decoded once its records are copied out of the frame; the shard
        // that applies it measures the routing stage from `handed_ns`.
        auto handed = [&self, &ctx, t] {
          actors::request_context c = ctx;
          c.handed_ns = metrics::steady_ns();
          self->state.conn->srv->stats.decode.observe(metrics::elapsed(t, c.handed_ns));
          return c;
        };
        using namespace actors;
        switch (h.op) {
          case wire::operation::create_accounts: {
            create_accounts_request r{ctx, wire::records<ledger::account>(body, bytes), {}};
            r.ctx = handed();
            forward(self, ledger, h, t, std::move(r), &create_reply::failures, who);
            break;
          }
          case wire::operation::create_transfers: {
            create_transfers_request r{ctx, wire::records<ledger::transfer>(body, bytes), {}};
            r.ctx = handed();
            forward(self, ledger, h, t, std::move(r), &create_reply::failures, who);
            break;
          }
          case wire::operation::lookup_accounts: {
            lookup_accounts_request r{ctx, wire::records<u128>(body, bytes)};
            r.ctx = handed();
            forward(self, ledger, h, t, std::move(r), &accounts_reply::accounts, who);
            break;
          }
          case wire::operation::lookup_transfers: {
            lookup_transfers_request r{ctx, wire::records<u128>(body, bytes)};
            r.ctx = handed();
            forward(self, ledger, h, t, std::move(r), &transfers_reply::transfers, who);
            break;
          }
          case wire::operation::get_account_transfers: {
            account_transfers_request r{ctx, filter_of(in.body)};
            r.ctx = handed();
            forward(self, ledger, h, t, std::move(r), &transfers_reply::transfers, who);
            break;
          }
          case wire::operation::get_account_balances: {
            const ledger::store::account_filter f = filter_of(in.body);
            forward_balances(self, ledger, h, t, handed(), f, who);
            break;
          }
          case wire::operation::submit_payments:
          case wire::operation::lookup_orders:
            if (!payments) {
              reply(self, h, t, wire::status::payments_disabled, nullptr, 0, 0);
            } else if (h.op == wire::operation::submit_payments) {
              // pay and refund name no ledger: the gateway checks their order's against the list
              submit_payments_request r{ctx, wire::records<ledger::payments::payment_command>(body, bytes), {}};
              if (who != nullptr) r.ledgers = who->ledgers;
              forward(self, payments, h, t, std::move(r), &payments_reply::replies, who);
            } else {
              forward(self, payments, h, t, lookup_orders_request{ctx, wire::records<u128>(body, bytes)},
                      &orders_reply::orders, who);
            }
            break;
          case wire::operation::lookup_order_items:
            if (!payments) {
              reply(self, h, t, wire::status::payments_disabled, nullptr, 0, 0);
            } else {
              const auto& o = self->state.conn->srv->opts;
              lookup_items_request r{ctx, wire::records<u128>(body, bytes),
                                     wire::request_events_max(h.op, o.frame_bytes_max, o.batch_events_max)};
              forward(self, payments, h, t, std::move(r), &items_reply::items, who);
            }
            break;
          case wire::operation::get_cases:
          case wire::operation::resolve_case: {
            if (!st.reconciler || h.ctx.shadow) {
              reply(self, h, t, wire::status::reconciliation_disabled, nullptr, 0, 0);
              break;
            }
            auto answer = [self, h, t](wire::status s, const void* b, size_t n, size_t count) {
              reply(self, h, t, s, b, n, count);
            };
            if (h.op == wire::operation::get_cases) get_cases(self, st.reconciler, in.body, who, answer);
            else resolve_case(self, st.reconciler, in.body, who, answer);
            break;
          }
          case wire::operation::hello: // hello and authenticate are answered by the I/O thread
          case wire::operation::authenticate:
            reply(self, h, t, wire::status::internal, nullptr, 0, 0);
            break;
        }
      },
  };
}

// Fills `out` from the kernel's random source (getrandom). Never fails quietly: a connection
// without an unpredictable challenge could be answered with a replayed proof.
void random_bytes(uint8_t* out, size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::getrandom(out + done, bytes - done, 0);
    if (n < 0 && errno == EINTR) continue;
    KASSA_ASSERT(n > 0);
    done += size_t(n);
  }
}

void connection::start() {
  if (!srv->opts.access.clients.empty()) random_bytes(server_nonce, sizeof server_nonce);
  session = srv->sys.spawn(runtime::session, shared_from_this());
  read();
}

void connection::read() {
  if (closed || reading) return;
  if (in_used == in.size()) in.resize(in.size() * 2); // only while a large frame arrives
  reading = true;
  socket.async_read_some(asio::buffer(in.data() + in_used, in.size() - in_used),
                         [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                           self->reading = false;
                           if (ec) {
                             self->close();
                             return;
                           }
                           self->in_used += n;
                           self->received_ns = metrics::steady_ns();
                           self->process();
                           // A client that does not read its replies stops being read.
                           if (!self->close_after_write && self->out_bytes < self->out_bytes_max()) self->read();
                         });
}

void connection::process() {
  const wire::limits limits{srv->opts.frame_bytes_max, srv->opts.batch_events_max, false};
  size_t offset = 0;
  while (!close_after_write && !closed) {
    wire::decoded d = wire::decode(in.data() + offset, in_used - offset, limits);
    if (d.outcome == wire::decode_outcome::need_more) break;
    if (d.outcome == wire::decode_outcome::error_close) {
      std::vector<uint8_t> bytes;
      wire::header none;
      wire::encode_error(bytes, none, d.error);
      log::warn("closing a connection: framing lost", {{"status", std::string(wire::name(d.error))}});
      srv->stats.frames_rejected[server_metrics::status_index(d.error)].add();
      send(std::move(bytes));
      close_after_write = true;
      break;
    }
    if (d.outcome == wire::decode_outcome::error_keep_open) {
      srv->stats.frames_rejected[server_metrics::status_index(d.error)].add();
      refuse(d.h, d.error);
    } else {
      dispatch(d);
    }
    offset += d.consumed;
  }
  if (offset > 0) {
    std::memmove(in.data(), in.data() + offset, in_used - offset);
    in_used -= offset;
  }
  // Make room for the frame being received, up to its announced size.
  if (in_used >= 12) {
    uint32_t frame_bytes = 0;
    std::memcpy(&frame_bytes, in.data() + 8, 4);
    if (frame_bytes <= srv->opts.frame_bytes_max && frame_bytes > in.size()) in.resize(frame_bytes);
  }
  if (in_used == 0 && in.size() > read_chunk_bytes) {
    in.resize(read_chunk_bytes);
    in.shrink_to_fit();
  }
}

void connection::dispatch(const wire::decoded& d) {
  std::vector<uint8_t> bytes;
  srv->stats.requests[server_metrics::op_index(d.h.op)].add();
  if (d.h.op == wire::operation::hello) {
    wire::hello_request hello;
    std::memcpy(&hello, d.body, sizeof hello);
    if (hello.version_min > wire::protocol_version || hello.version_max < wire::protocol_version) {
      refuse(d.h, wire::status::version_unsupported);
      return;
    }
    wire::hello_reply r;
    const access::policy& p = srv->opts.access;
    r.access_flags = uint16_t((p.required ? wire::access_required : 0) |
                              (p.clients.empty() ? 0 : wire::access_available));
    std::memcpy(r.server_nonce, server_nonce, sizeof r.server_nonce);
    r.frame_bytes_max = srv->opts.frame_bytes_max;
    r.batch_events_max = srv->opts.batch_events_max;
    r.requests_inflight_max = srv->opts.requests_inflight_max;
    wire::header h = d.h;
    h.reply = true;
    h.event_count = 1;
    wire::encode(bytes, h, &r, sizeof r);
    hello_done = true;
    srv->stats.replied(d.h.op, wire::status::ok);
    send(std::move(bytes));
    return;
  }
  if (hello_done && d.h.op == wire::operation::authenticate) {
    authenticate(d);
    return;
  }
  wire::status refused = wire::status::ok;
  if (!hello_done) refused = wire::status::hello_required;
  else if (who == nullptr ? srv->opts.access.required : d.h.ctx.client_id != who->id)
    refused = wire::status::unauthenticated;
  else if (who != nullptr && access::check_request(*who, d.h, d.body, d.body_bytes) != wire::status::ok)
    refused = wire::status::forbidden;
  else if (srv->draining.load()) refused = wire::status::shutting_down;
  else if (inflight >= srv->opts.requests_inflight_max) refused = wire::status::inflight_limit;
  if (refused != wire::status::ok) {
    refuse(d.h, refused);
    return;
  }
  ++inflight;
  ++srv->inflight;
  caf::anon_send(session, inbound{d.h, std::vector<uint8_t>(d.body, d.body + d.body_bytes), who, received_ns});
}

void connection::refuse(const wire::header& h, wire::status st) {
  std::vector<uint8_t> bytes;
  wire::encode_error(bytes, h, st);
  srv->stats.replied(h.op, st);
  send(std::move(bytes));
}

void connection::authenticate(const wire::decoded& d) {
  wire::authenticate_request request;
  std::memcpy(&request, d.body, sizeof request);
  const access::authentication a = access::authenticate(srv->opts.access, server_nonce, d.h, request);
  std::vector<uint8_t> bytes;
  const std::string client_id = std::to_string(request.client_id);
  if (a.st != wire::status::ok) {
    ++authentication_failures;
    const bool closing = authentication_failures >= srv->opts.access.authentication_failures_max;
    log::warn("authentication failed", {{"client_id", client_id}, {"remote", remote()},
                                        {"failures", std::to_string(authentication_failures)},
                                        {"closing", closing ? "yes" : "no"}});
    refuse(d.h, wire::status::authentication_failed);
    if (closing) close_after_write = true;
    return;
  }
  if (who != nullptr && who != a.who) {
    // A connection has one identity for its life; another client opens its own connection.
    refuse(d.h, wire::status::forbidden);
    return;
  }
  if (who == nullptr) log::info("client authenticated", {{"client_id", client_id}, {"remote", remote()}});
  who = a.who;
  wire::header h = d.h;
  h.reply = true;
  h.event_count = 1;
  wire::encode(bytes, h, &a.reply, sizeof a.reply);
  srv->stats.replied(d.h.op, wire::status::ok);
  send(std::move(bytes));
}

std::string connection::remote() const {
  boost::system::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string("?") : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

void connection::send(std::vector<uint8_t> bytes, const reply_stamp* completes) {
  // A session may still answer after close() wrote its requests off: drop the reply.
  if (closed) return;
  if (completes != nullptr) {
    KASSA_ASSERT(inflight > 0);
    --inflight;
    --srv->inflight;
    const uint64_t queued_ns = metrics::steady_ns();
    server_metrics& m = srv->stats;
    if (completes->op != wire::operation::submit_payments && completes->op != wire::operation::lookup_orders) {
      m.encode.observe(metrics::elapsed(completes->built_ns, queued_ns));
    }
    m.request_seconds[server_metrics::op_index(completes->op)].observe(metrics::elapsed(completes->received_ns, queued_ns));
    m.replied(completes->op, completes->st);
  }
  out_bytes += bytes.size();
  out.push_back(std::move(bytes));
  write_next();
}

void connection::write_next() {
  if (writing || out.empty() || closed) return;
  writing = true;
  asio::async_write(socket, asio::buffer(out.front()),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->writing = false;
                      self->out_bytes -= self->out.front().size();
                      self->out.pop_front();
                      if (ec) {
                        self->close();
                        return;
                      }
                      if (self->out.empty() && self->close_after_write) {
                        self->close();
                        return;
                      }
                      self->write_next();
                      if (!self->close_after_write && self->out_bytes < self->out_bytes_max()) self->read();
                    });
}

void connection::close() {
  if (closed) return;
  closed = true;
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
  // Requests still with the session will never be answered on this connection.
  srv->inflight -= inflight;
  inflight = 0;
  srv->connection_count--;
  srv->stats.connections_open.add(-1);
  srv->connections.erase(shared_from_this());
}

} // namespace

void server::impl::accept() {
  acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec != asio::error::operation_aborted) self->accept();
      return;
    }
    sock.set_option(tcp::no_delay(true));
    if (self->connection_count.load() >= self->opts.connections_max || self->draining.load()) {
      // Refused with one `busy` error frame so that the client knows why.
      auto bytes = std::make_shared<std::vector<uint8_t>>();
      wire::encode_error(*bytes, wire::header{}, self->draining ? wire::status::shutting_down : wire::status::busy);
      self->stats.connections_refused.add();
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      asio::async_write(*s, asio::buffer(*bytes), [s, bytes](const boost::system::error_code&, size_t) {
        boost::system::error_code ignored;
        s->close(ignored);
      });
    } else {
      auto conn = std::make_shared<connection>(self, std::move(sock));
      self->connection_count++;
      self->stats.connections_open.add(1);
      self->connections.insert(conn);
      conn->start();
    }
    self->accept();
  });
}

server::server(caf::actor_system& sys, server_options opts)
    : impl_(std::make_shared<impl>(sys, std::move(opts))) {
  KASSA_ASSERT(impl_->opts.ledger);
}

server::~server() {
  if (!impl_->thread.joinable()) return;
  // Close the acceptor and every connection on the I/O thread: their handlers then complete
  // (aborted), run() runs out of work, and no handler is left holding the server or a
  // connection alive (the I/O objects and the handlers would otherwise own each other).
  asio::post(impl_->io, [self = impl_.get()] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    auto conns = self->connections;
    for (const auto& c : conns) c->close();
  });
  join_io_thread(impl_->io, impl_->io_done, impl_->thread);
}

bool server::start(std::string& error) {
  if (!listen_on(impl_->acceptor, impl_->opts.address, impl_->opts.port, "server.address", error)) return false;
  impl_->accept();
  // The thread holds the server's state by a plain pointer: ~server outlives it (join).
  impl_->thread = std::thread([self = impl_.get()] {
    self->io.run();
    self->io_done = true;
  });
  return true;
}

uint16_t server::port() const { return impl_->acceptor.local_endpoint().port(); }
size_t server::connections() const { return impl_->connection_count.load(); }
size_t server::requests_inflight() const { return impl_->inflight.load(); }

size_t server::drain(std::chrono::milliseconds timeout) {
  impl_->draining = true;
  asio::post(impl_->io, [self = impl_.get()] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->inflight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const size_t left = impl_->inflight.load();
  // Close every connection once its replies are written.
  asio::post(impl_->io, [self = impl_.get()] {
    auto conns = self->connections;
    for (const auto& c : conns) {
      c->close_after_write = true;
      if (c->out.empty()) c->close();
    }
  });
  const auto close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (impl_->connection_count.load() > 0 && std::chrono::steady_clock::now() < close_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return left;
}

} // namespace kassa::runtime
