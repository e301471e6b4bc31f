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
#include "ledger/assert.hpp"
#include "runtime/log.hpp"
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
};

} // namespace
} // namespace kassa::runtime

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::runtime::inbound)

namespace kassa::runtime {

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(caf::actor_system& s, server_options o) : sys(s), opts(std::move(o)) {}

  caf::actor_system& sys;
  server_options opts;
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

  size_t out_bytes_max() const { return 4 * size_t{srv->opts.frame_bytes_max}; }

  void start();
  void read();
  void process();
  void dispatch(const wire::decoded& d);
  void authenticate(const wire::decoded& d);
  std::string remote() const;
  void send(std::vector<uint8_t> bytes, bool completes_request);
  void write_next();
  void close();

  // Called from a session actor's thread.
  void post_reply(std::vector<uint8_t> bytes) {
    asio::post(srv->io, [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
      self->send(std::move(bytes), true);
    });
  }
};

struct session_state {
  static inline const char* name = "kassa.session";
  std::shared_ptr<connection> conn;
  caf::actor ledger;
  caf::actor payments; // unset: payments are disabled
  // The shadow store's (server_options): unset when the shadow store or its payments are off.
  caf::actor shadow_ledger;
  caf::actor shadow_payments;
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
  }
  return wire::status::internal;
}

void reply(session_actor* self, const wire::header& request, wire::status st, const void* body,
           size_t body_bytes, size_t count) {
  wire::header h = request;
  h.reply = true;
  h.st = st;
  h.event_count = st == wire::status::ok ? static_cast<uint32_t>(count) : 0;
  std::vector<uint8_t> bytes;
  bytes.reserve(wire::header_bytes + body_bytes);
  wire::encode(bytes, h, st == wire::status::ok ? body : nullptr, st == wire::status::ok ? body_bytes : 0);
  self->state.conn->post_reply(std::move(bytes));
}

template <class T>
void reply_records(session_actor* self, const wire::header& request, actors::outcome o,
                   const std::vector<T>& records) {
  reply(self, request, to_wire(o), records.data(), records.size() * sizeof(T), records.size());
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
template <class Request, class Reply, class Records>
void forward(session_actor* self, const caf::actor& to, const wire::header& h, Request request,
             Records Reply::*field, const access::client* who) {
  self->request(to, caf::infinite, std::move(request))
      .then(
          [self, h, field, who](Reply& r) {
            if constexpr (has_ledger<typename Records::value_type>::value) {
              if (who != nullptr) access::keep_allowed(*who, r.*field);
            }
            reply_records(self, h, r.status, r.*field);
          },
          [self, h](caf::error&) { reply(self, h, wire::status::internal, nullptr, 0, 0); });
}

// Balances carry no ledger: a client limited to ledgers gets them only for an account of one
// of its ledgers, found first; any other account answers as one without history (empty).
void forward_balances(session_actor* self, const caf::actor& ledger, const wire::header& h,
                      const actors::request_context& ctx, const ledger::store::account_filter& f,
                      const access::client* who) {
  if (who == nullptr || who->every_ledger()) {
    forward(self, ledger, h, actors::account_balances_request{ctx, f}, &actors::balances_reply::balances, who);
    return;
  }
  self->request(ledger, caf::infinite, actors::lookup_accounts_request{ctx, {f.account_id}})
      .then(
          [self, ledger, h, ctx, f, who](actors::accounts_reply& r) {
            if (r.status == actors::outcome::ok && r.accounts.size() == 1 &&
                who->ledger_allowed(r.accounts[0].ledger)) {
              forward(self, ledger, h, actors::account_balances_request{ctx, f},
                      &actors::balances_reply::balances, who);
            } else {
              reply_records(self, h, r.status, std::vector<ledger::account_balance>{});
            }
          },
          [self, h](caf::error&) { reply(self, h, wire::status::internal, nullptr, 0, 0); });
}

caf::behavior session(session_actor* self, std::shared_ptr<connection> conn) {
  const server_options& opts = conn->srv->opts;
  self->state.conn = std::move(conn);
  self->state.ledger = opts.ledger;
  self->state.payments = opts.payments;
  self->state.shadow_ledger = opts.shadow_ledger;
  self->state.shadow_payments = opts.shadow_payments;
  return {
      [self](inbound& in) {
        const wire::header& h = in.h;
        const access::client* who = in.who;
        const actors::request_context ctx = context_of(h);
        const uint8_t* body = in.body.data();
        const size_t bytes = in.body.size();
        // The shadow flag picks the store: the real and the shadow store never see each
        // other's requests.
        const session_state& st = self->state;
        if (h.ctx.shadow && !st.shadow_ledger) {
          reply(self, h, wire::status::shadow_disabled, nullptr, 0, 0);
          return;
        }
        const caf::actor& ledger = h.ctx.shadow ? st.shadow_ledger : st.ledger;
        const caf::actor& payments = h.ctx.shadow ? st.shadow_payments : st.payments;
        using namespace actors;
        switch (h.op) {
          case wire::operation::create_accounts:
            forward(self, ledger, h, create_accounts_request{ctx, wire::records<ledger::account>(body, bytes), {}},
                    &create_reply::failures, who);
            break;
          case wire::operation::create_transfers:
            forward(self, ledger, h, create_transfers_request{ctx, wire::records<ledger::transfer>(body, bytes), {}},
                    &create_reply::failures, who);
            break;
          case wire::operation::lookup_accounts:
            forward(self, ledger, h, lookup_accounts_request{ctx, wire::records<u128>(body, bytes)},
                    &accounts_reply::accounts, who);
            break;
          case wire::operation::lookup_transfers:
            forward(self, ledger, h, lookup_transfers_request{ctx, wire::records<u128>(body, bytes)},
                    &transfers_reply::transfers, who);
            break;
          case wire::operation::get_account_transfers:
            forward(self, ledger, h, account_transfers_request{ctx, filter_of(in.body)}, &transfers_reply::transfers, who);
            break;
          case wire::operation::get_account_balances:
            forward_balances(self, ledger, h, ctx, filter_of(in.body), who);
            break;
          case wire::operation::submit_payments:
          case wire::operation::lookup_orders:
            if (!payments) {
              reply(self, h, wire::status::payments_disabled, nullptr, 0, 0);
            } else if (h.op == wire::operation::submit_payments) {
              forward(self, payments, h,
                      submit_payments_request{ctx, wire::records<ledger::payments::payment_command>(body, bytes)},
                      &payments_reply::replies, who);
            } else {
              forward(self, payments, h, lookup_orders_request{ctx, wire::records<u128>(body, bytes)},
                      &orders_reply::orders, who);
            }
            break;
          case wire::operation::hello: // hello and authenticate are answered by the I/O thread
          case wire::operation::authenticate:
            reply(self, h, wire::status::internal, nullptr, 0, 0);
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
      send(std::move(bytes), false);
      close_after_write = true;
      break;
    }
    if (d.outcome == wire::decode_outcome::error_keep_open) {
      std::vector<uint8_t> bytes;
      wire::encode_error(bytes, d.h, d.error);
      send(std::move(bytes), false);
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
  if (d.h.op == wire::operation::hello) {
    wire::hello_request hello;
    std::memcpy(&hello, d.body, sizeof hello);
    if (hello.version_min > wire::protocol_version || hello.version_max < wire::protocol_version) {
      wire::encode_error(bytes, d.h, wire::status::version_unsupported);
    } else {
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
    }
    send(std::move(bytes), false);
    return;
  }
  if (hello_done && d.h.op == wire::operation::authenticate) {
    authenticate(d);
    return;
  }
  wire::status refuse = wire::status::ok;
  if (!hello_done) refuse = wire::status::hello_required;
  else if (who == nullptr ? srv->opts.access.required : d.h.ctx.client_id != who->id)
    refuse = wire::status::unauthenticated;
  else if (who != nullptr && access::check_request(*who, d.h, d.body, d.body_bytes) != wire::status::ok)
    refuse = wire::status::forbidden;
  else if (srv->draining.load()) refuse = wire::status::shutting_down;
  else if (inflight >= srv->opts.requests_inflight_max) refuse = wire::status::inflight_limit;
  if (refuse != wire::status::ok) {
    wire::encode_error(bytes, d.h, refuse);
    send(std::move(bytes), false);
    return;
  }
  ++inflight;
  ++srv->inflight;
  caf::anon_send(session, inbound{d.h, std::vector<uint8_t>(d.body, d.body + d.body_bytes), who});
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
    wire::encode_error(bytes, d.h, wire::status::authentication_failed);
    send(std::move(bytes), false);
    if (closing) close_after_write = true;
    return;
  }
  if (who != nullptr && who != a.who) {
    // A connection has one identity for its life; another client opens its own connection.
    wire::encode_error(bytes, d.h, wire::status::forbidden);
    send(std::move(bytes), false);
    return;
  }
  if (who == nullptr) log::info("client authenticated", {{"client_id", client_id}, {"remote", remote()}});
  who = a.who;
  wire::header h = d.h;
  h.reply = true;
  h.event_count = 1;
  wire::encode(bytes, h, &a.reply, sizeof a.reply);
  send(std::move(bytes), false);
}

std::string connection::remote() const {
  boost::system::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string("?") : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

void connection::send(std::vector<uint8_t> bytes, bool completes_request) {
  // A session may still answer after close() wrote its requests off: drop the reply.
  if (closed) return;
  if (completes_request) {
    KASSA_ASSERT(inflight > 0);
    --inflight;
    --srv->inflight;
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
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      asio::async_write(*s, asio::buffer(*bytes), [s, bytes](const boost::system::error_code&, size_t) {
        boost::system::error_code ignored;
        s->close(ignored);
      });
    } else {
      auto conn = std::make_shared<connection>(self, std::move(sock));
      self->connection_count++;
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
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!impl_->io_done.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  impl_->io.stop(); // only matters when a handler did not finish in time
  impl_->thread.join();
}

bool server::start(std::string& error) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(impl_->opts.address, ec);
  if (ec) {
    error = "server.address '" + impl_->opts.address + "' is not an IP address";
    return false;
  }
  tcp::endpoint endpoint(address, impl_->opts.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on " + impl_->opts.address + ":" + std::to_string(impl_->opts.port) + ": " + ec.message();
    return false;
  }
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
