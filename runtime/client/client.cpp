#include "runtime/client/client.hpp"

#include "runtime/wire/crypto.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cassert>
#include <deque>
#include <map>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sys/stat.h>
#include <sys/random.h>
#include <thread>
#include <unordered_map>

namespace kassa::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::exception_ptr make_error(error_kind kind, wire::status st, const std::string& message) {
  return std::make_exception_ptr(error(kind, st, message));
}

// The client's nonce: unpredictable, from the kernel.
void random_bytes(uint8_t* out, size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::getrandom(out + done, bytes - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw error(error_kind::connection, wire::status::ok, "no random bytes for the client nonce");
    done += size_t(n);
  }
}

std::exception_ptr status_error(wire::operation op, wire::status st) {
  return make_error(error_kind::status, st,
                    std::string(wire::name(op)) + ": server answered " + std::string(wire::name(st)));
}

} // namespace

// Everything below runs on the io thread, except the entry points that post to it.
struct connection::impl {
  struct request {
    uint64_t request_id = 0;
    wire::operation op{};
    std::vector<uint8_t> body;
    uint32_t event_count = 0;
    wire::context ctx;
    callback done; // empty once answered (e.g. timed out while still in flight)
    std::unique_ptr<asio::steady_timer> timeout;
    std::unique_ptr<asio::steady_timer> backoff;
    uint32_t busy_retries = 0;
    enum { waiting, in_flight, backing_off } state = waiting;
  };

  explicit impl(const options& o) : opts(o), socket(io), work(asio::make_work_guard(io)) {}

  options opts;
  asio::io_context io;
  tcp::socket socket;
  // Used while connecting. Members after `io`, so that they are destroyed before it; the
  // handlers waiting on them refer to them by this object, never own them.
  std::unique_ptr<tcp::resolver> connect_resolver;
  std::unique_ptr<asio::steady_timer> connect_timer;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;

  // Guarded by running on the io thread.
  std::unordered_map<uint64_t, std::unique_ptr<request>> requests; // every open request
  std::deque<uint64_t> waiting;  // not sent yet: no in-flight slot
  size_t inflight = 0;           // sent, reply not yet received (timed out ones included)
  size_t inflight_max = 1;       // 1 until hello tells
  uint64_t request_id_next = 1;
  std::vector<uint8_t> outbox, writing;
  std::vector<uint8_t> inbox;
  size_t inbox_start = 0;
  wire::limits decode_limits{64u << 20, 65535, true};
  std::atomic<bool> open{false};
  wire::hello_reply hello{};
  bool is_authenticated = false; // set once, before connect() returns
  wire::authenticate_reply authentication{};

  // Proves the key to the server (the answer to the hello's nonce) and checks the server's
  // proof in return; `done` gets nullptr or the error connect() throws.
  void authenticate(std::function<void(std::exception_ptr)> done) {
    wire::authenticate_request a;
    a.client_id = opts.client_id;
    uint8_t key[wire::key_bytes];
    std::memcpy(key, opts.key.data(), sizeof key);
    try {
      random_bytes(a.client_nonce, sizeof a.client_nonce);
    } catch (...) {
      done(std::current_exception());
      return;
    }
    const auto proof = wire::auth_proof(wire::proof_side::client, key, hello.server_nonce, a.client_nonce, a.client_id);
    std::memcpy(a.proof, proof.data(), proof.size());
    const auto expected = wire::auth_proof(wire::proof_side::server, key, hello.server_nonce, a.client_nonce, a.client_id);
    std::vector<uint8_t> body(sizeof a);
    std::memcpy(body.data(), &a, sizeof a);
    wire::context ctx;
    ctx.client_id = opts.client_id;
    submit(wire::operation::authenticate, std::move(body), 1, ctx,
           [this, expected, done](std::exception_ptr err, reply r) {
             if (err) {
               done(err);
               return;
             }
             wire::authenticate_reply got;
             if (r.body.size() != sizeof got) {
               protocol_failure("bad authenticate reply");
               done(make_error(error_kind::protocol, wire::status::ok, "bad authenticate reply"));
               return;
             }
             std::memcpy(&got, r.body.data(), sizeof got);
             if (!wire::equal_constant_time(got.proof, sizeof got.proof, expected.data(), expected.size())) {
               protocol_failure("the server's proof does not match the key");
               done(make_error(error_kind::protocol, wire::status::ok,
                               "the server did not prove that it holds this client's key"));
               return;
             }
             authentication = got;
             is_authenticated = true;
             done(nullptr);
           });
  }

  void start_thread() {
    thread = std::thread([this] { io.run(); });
  }

  void stop_thread() {
    asio::post(io, [this] {
      close_socket();
      fail_all(make_error(error_kind::connection, wire::status::ok, "connection closed by the client"));
      io.stop(); // what is left (aborted reads, timers) only refers to this object
    });
    work.reset();
    if (thread.joinable()) thread.join();
  }

  // --- submitting --------------------------------------------------------------------------

  void submit(wire::operation op, std::vector<uint8_t> body, uint32_t event_count,
              wire::context ctx, callback done) {
    if (ctx.client_id == 0) ctx.client_id = opts.client_id;
    if (opts.shadow) ctx.shadow = true;
    if (ctx.deadline_ns == 0 && opts.deadline_from_timeout) {
      const auto now = std::chrono::system_clock::now().time_since_epoch();
      ctx.deadline_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     now + opts.request_timeout).count());
    }
    auto r = std::make_shared<request>();
    r->op = op;
    r->body = std::move(body);
    r->event_count = event_count;
    r->ctx = ctx;
    r->done = std::move(done);
    if (!open) { // closed: answer now, the io thread may be gone
      finish(*r, make_error(error_kind::connection, wire::status::ok, "not connected"), {});
      return;
    }
    asio::post(io, [this, r]() mutable {
      auto owned = std::make_unique<request>(std::move(*r));
      if (!open) {
        finish(*owned, make_error(error_kind::connection, wire::status::ok, "not connected"), {});
        return;
      }
      const uint64_t id = request_id_next++;
      owned->request_id = id;
      owned->timeout = std::make_unique<asio::steady_timer>(io, opts.request_timeout);
      owned->timeout->async_wait([this, id](const boost::system::error_code& ec) {
        if (!ec) on_timeout(id);
      });
      requests.emplace(id, std::move(owned));
      waiting.push_back(id);
      pump();
    });
  }

  // Sends waiting requests while in-flight slots are free.
  void pump() {
    while (open && inflight < inflight_max && !waiting.empty()) {
      const uint64_t id = waiting.front();
      waiting.pop_front();
      auto it = requests.find(id);
      if (it == requests.end()) continue; // timed out while waiting
      request& r = *it->second;
      wire::header h;
      h.op = r.op;
      h.request_id = r.request_id;
      h.event_count = r.event_count;
      h.ctx = r.ctx;
      wire::encode(outbox, h, r.body.data(), r.body.size());
      r.state = request::in_flight;
      ++inflight;
    }
    flush();
  }

  void flush() {
    if (!writing.empty() || outbox.empty() || !open) return;
    writing.swap(outbox);
    asio::async_write(socket, asio::buffer(writing),
                      [this](const boost::system::error_code& ec, size_t) {
                        writing.clear();
                        if (ec) {
                          lost("write failed: " + ec.message());
                          return;
                        }
                        flush();
                      });
  }

  // --- replies -----------------------------------------------------------------------------

  void read() {
    if (inbox_start > 0) { // drop the decoded frames; a partial frame moves to the front
      inbox.erase(inbox.begin(), inbox.begin() + long(inbox_start));
      inbox_start = 0;
    }
    const size_t have = inbox.size();
    inbox.resize(have + 65536);
    socket.async_read_some(asio::buffer(inbox.data() + have, 65536),
                           [this, have](const boost::system::error_code& ec, size_t n) {
                             inbox.resize(have + n);
                             if (ec) {
                               lost(ec == asio::error::eof ? "the server closed the connection"
                                                           : "read failed: " + ec.message());
                               return;
                             }
                             if (!drain()) return;
                             read();
                           });
  }

  // Decodes every complete frame in the inbox; false once the connection is closed.
  bool drain() {
    for (;;) {
      const wire::decoded d =
          wire::decode(inbox.data() + inbox_start, inbox.size() - inbox_start, decode_limits);
      if (d.outcome == wire::decode_outcome::need_more) return true;
      if (d.outcome != wire::decode_outcome::frame) {
        protocol_failure("unreadable reply from the server: " + std::string(wire::name(d.error)));
        return false;
      }
      std::vector<uint8_t> body(d.body, d.body + d.body_bytes);
      inbox_start += d.consumed;
      if (!on_reply(d.h, std::move(body))) return false;
    }
  }

  bool on_reply(const wire::header& h, std::vector<uint8_t> body) {
    if (h.request_id == 0) {
      // A connection-level error: the server is about to close (or refused us).
      fail_all(status_error(h.op, h.st));
      close_socket();
      return false;
    }
    auto it = requests.find(h.request_id);
    if (it == requests.end()) {
      protocol_failure("a reply to request " + std::to_string(h.request_id) + " that is not in flight");
      return false;
    }
    if (h.op != it->second->op) {
      protocol_failure("a reply with another operation than its request");
      return false;
    }
    assert(inflight > 0);
    --inflight;
    request& r = *it->second;
    if (h.st == wire::status::busy && r.done && r.busy_retries < opts.busy_retries_max) {
      // Back off, then queue it again (nothing was applied).
      auto delay = opts.busy_backoff_min * (1u << std::min<uint32_t>(r.busy_retries, 20));
      delay = std::min(delay, opts.busy_backoff_max);
      ++r.busy_retries;
      r.state = request::backing_off;
      r.backoff = std::make_unique<asio::steady_timer>(io, delay);
      const uint64_t id = r.request_id;
      r.backoff->async_wait([this, id](const boost::system::error_code& ec) {
        auto it = requests.find(id);
        if (ec || it == requests.end()) return;
        it->second->state = request::waiting;
        waiting.push_front(id);
        pump();
      });
      pump();
      return true;
    }
    auto owned = std::move(it->second);
    requests.erase(it);
    if (h.st != wire::status::ok)
      finish(*owned, status_error(h.op, h.st), {});
    else
      finish(*owned, nullptr, reply{h, std::move(body)});
    pump();
    return true;
  }

  void on_timeout(uint64_t id) {
    auto it = requests.find(id);
    if (it == requests.end()) return;
    request& r = *it->second;
    finish(r, make_error(error_kind::timeout, wire::status::ok,
                         std::string(wire::name(r.op)) + ": no reply within " +
                             std::to_string(opts.request_timeout.count()) + " ms"),
           {});
    // Still in flight on the server: it keeps its slot until the reply comes (then dropped).
    // Waiting or backing off, it holds none: forget it.
    if (r.state != request::in_flight) requests.erase(it);
  }

  void finish(request& r, std::exception_ptr err, reply rep) {
    if (!r.done) return;
    callback done = std::move(r.done);
    r.done = nullptr;
    try {
      done(err, std::move(rep));
    } catch (...) {
      // A callback that throws must not take the io thread down.
    }
  }

  // --- failure -----------------------------------------------------------------------------

  void fail_all(std::exception_ptr err) {
    open = false;
    auto all = std::move(requests);
    requests.clear();
    waiting.clear();
    inflight = 0;
    for (auto& [id, r] : all) finish(*r, err, {});
  }

  void close_socket() {
    open = false;
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  void lost(const std::string& why) {
    if (!open && requests.empty()) return;
    fail_all(make_error(error_kind::connection, wire::status::ok, why));
    close_socket();
  }

  void protocol_failure(const std::string& why) {
    fail_all(make_error(error_kind::protocol, wire::status::ok, why));
    close_socket();
  }
};

// --- connection ------------------------------------------------------------------------------

connection::connection(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

connection::~connection() { close(); }

void connection::close() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl* p = impl_.get();
  asio::post(p->io, [p] { p->close_socket(); });
  p->stop_thread();
}

bool connection::is_open() const { return impl_->open; }

const wire::hello_reply& connection::server_limits() const { return impl_->hello; }

const wire::authenticate_reply* connection::authenticated() const {
  return impl_->is_authenticated ? &impl_->authentication : nullptr;
}

std::unique_ptr<connection> connection::connect(const std::string& host, uint16_t port,
                                                const options& o) {
  if (!o.key.empty() && (o.key.size() != wire::key_bytes || o.client_id == 0)) {
    throw std::invalid_argument("client::options: a key is 32 bytes and needs a non-zero client_id");
  }
  auto p = std::make_unique<impl>(o);
  impl* raw = p.get();
  // The resolver and timer of the attempt are the impl's own (see there), so that they go
  // before the io_context also when connecting fails.
  std::unique_ptr<connection> c;
  {
  auto result = std::make_shared<std::promise<void>>();
  auto future = result->get_future();
  raw->connect_resolver = std::make_unique<tcp::resolver>(raw->io);
  raw->connect_timer = std::make_unique<asio::steady_timer>(raw->io, o.connect_timeout);
  tcp::resolver* resolver = raw->connect_resolver.get();
  asio::steady_timer* timer = raw->connect_timer.get();
  auto settled = std::make_shared<bool>(false);
  auto settle = [result, settled, timer](std::exception_ptr err) {
    if (*settled) return;
    *settled = true;
    timer->cancel();
    if (err)
      result->set_exception(err);
    else
      result->set_value();
  };

  asio::post(raw->io, [=] {
    timer->async_wait([=](const boost::system::error_code& ec) {
      if (ec) return;
      resolver->cancel();
      raw->close_socket();
      raw->fail_all(make_error(error_kind::timeout, wire::status::ok, "connect timed out"));
      settle(make_error(error_kind::timeout, wire::status::ok,
                        "connect to " + host + ":" + std::to_string(port) + " timed out after " +
                            std::to_string(o.connect_timeout.count()) + " ms"));
    });
    resolver->async_resolve(host, std::to_string(port), [=](const boost::system::error_code& ec,
                                                             tcp::resolver::results_type eps) {
      if (*settled) return;
      if (ec) {
        settle(make_error(error_kind::connection, wire::status::ok,
                          "cannot resolve " + host + ": " + ec.message()));
        return;
      }
      asio::async_connect(raw->socket, eps, [=](const boost::system::error_code& ec,
                                                const tcp::endpoint&) {
        if (*settled) return;
        if (ec) {
          settle(make_error(error_kind::connection, wire::status::ok,
                            "cannot connect to " + host + ":" + std::to_string(port) + ": " +
                                ec.message()));
          return;
        }
        raw->socket.set_option(tcp::no_delay(true));
        raw->open = true;
        raw->read();
        wire::hello_request hello;
        std::vector<uint8_t> body(sizeof hello);
        std::memcpy(body.data(), &hello, sizeof hello);
        raw->submit(wire::operation::hello, std::move(body), 1, {},
                    [=](std::exception_ptr err, reply r) {
                      if (err) {
                        settle(err);
                        return;
                      }
                      if (r.body.size() != sizeof(wire::hello_reply)) {
                        settle(make_error(error_kind::protocol, wire::status::ok, "bad hello reply"));
                        return;
                      }
                      std::memcpy(&raw->hello, r.body.data(), sizeof raw->hello);
                      const auto& h = raw->hello;
                      if (h.version != wire::protocol_version || h.frame_bytes_max < wire::header_bytes ||
                          h.batch_events_max == 0 || h.requests_inflight_max == 0) {
                        raw->protocol_failure("the hello reply offers unusable limits");
                        settle(make_error(error_kind::protocol, wire::status::ok,
                                          "the hello reply offers unusable limits"));
                        return;
                      }
                      raw->decode_limits = {h.frame_bytes_max, h.batch_events_max, true};
                      raw->inflight_max = h.requests_inflight_max;
                      raw->pump();
                      if (raw->opts.key.empty()) {
                        settle(nullptr);
                      } else {
                        raw->authenticate(settle);
                      }
                    });
      });
    });
  });
  raw->start_thread();
  c.reset(new connection(std::move(p)));
  future.get(); // throws; ~connection then stops the io thread
  }
  return c;
}

void connection::send(wire::operation op, std::vector<uint8_t> body, uint32_t event_count,
                      const wire::context& ctx, callback done) {
  impl_->submit(op, std::move(body), event_count, ctx, std::move(done));
}

std::future<reply> connection::send(wire::operation op, std::vector<uint8_t> body,
                                    uint32_t event_count, const wire::context& ctx) {
  auto p = std::make_shared<std::promise<reply>>();
  auto f = p->get_future();
  send(op, std::move(body), event_count, ctx, [p](std::exception_ptr err, reply r) {
    if (err)
      p->set_exception(err);
    else
      p->set_value(std::move(r));
  });
  return f;
}

// --- batching ----------------------------------------------------------------------------------

std::vector<uint8_t> key_of_hex(const std::string& what, const std::string& text) {
  auto digit = [](char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  };
  std::vector<uint8_t> key(wire::key_bytes);
  bool ok = text.size() == 2 * key.size();
  for (size_t i = 0; ok && i < key.size(); ++i) {
    const int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    key[i] = uint8_t(hi << 4 | lo);
  }
  if (!ok) throw std::invalid_argument(what + " must be 64 hex digits (32 bytes)");
  return key;
}

std::vector<uint8_t> key_of_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::invalid_argument("cannot read the key file '" + path + "': " + std::strerror(errno));
  if ((st.st_mode & 077) != 0) {
    throw std::invalid_argument("the key file '" + path +
                                "' may be read by others; make it readable by its owner only: chmod 600 " + path);
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw std::invalid_argument("cannot read the key file '" + path + "'");
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return key_of_hex("the key in '" + path + "'", text);
}

std::vector<size_t> batch_starts(const std::vector<uint16_t>& flags, size_t max) {
  assert(max > 0);
  std::vector<size_t> starts;
  const size_t n = flags.size();
  size_t s = 0;
  while (s < n) {
    starts.push_back(s);
    size_t end = std::min(n, s + max);
    if (end < n) {
      size_t cut = end;
      while (cut > s && (flags[cut - 1] & 1u) != 0) --cut; // bit 0 is `linked` in both records
      if (cut > s) end = cut; // else: a chain longer than a frame; the server reports it
    }
    s = end;
  }
  return starts;
}

namespace {

// Sends the frames of one typed call one after another, merging their replies.
template <class Record, class Result>
struct batch_call {
  connection* conn;
  wire::operation op;
  std::vector<Record> records;
  std::vector<size_t> starts;
  wire::context ctx;
  size_t next = 0;
  Result merged;
  std::promise<Result> promise;
  std::function<void(Result&, const reply&, size_t first, size_t count)> merge;

  static void step(std::shared_ptr<batch_call> self) {
    if (self->next == self->starts.size()) {
      self->promise.set_value(std::move(self->merged));
      return;
    }
    const size_t first = self->starts[self->next];
    const size_t last = self->next + 1 < self->starts.size() ? self->starts[self->next + 1]
                                                             : self->records.size();
    ++self->next;
    std::vector<uint8_t> body((last - first) * sizeof(Record));
    if (!body.empty()) std::memcpy(body.data(), self->records.data() + first, body.size());
    self->conn->send(self->op, std::move(body), uint32_t(last - first), self->ctx,
                     [self, first, count = last - first](std::exception_ptr err, reply r) {
                       if (err) {
                         self->promise.set_exception(err);
                         return;
                       }
                       try {
                         self->merge(self->merged, r, first, count);
                       } catch (...) {
                         self->promise.set_exception(std::current_exception());
                         return;
                       }
                       step(self);
                     });
  }
};

template <class Record, class Result>
std::future<Result> run_batches(connection& c, wire::operation op, std::vector<Record> records,
                                std::vector<size_t> starts, const wire::context& ctx,
                                std::function<void(Result&, const reply&, size_t, size_t)> merge) {
  auto call = std::make_shared<batch_call<Record, Result>>();
  call->conn = &c;
  call->op = op;
  call->records = std::move(records);
  call->starts = std::move(starts);
  call->ctx = ctx;
  call->merge = std::move(merge);
  auto f = call->promise.get_future();
  batch_call<Record, Result>::step(call);
  return f;
}

size_t events_per_frame(const wire::hello_reply& h, size_t record_bytes) {
  const size_t fit = (h.frame_bytes_max - wire::header_bytes) / record_bytes;
  return std::max<size_t>(1, std::min<size_t>(h.batch_events_max, fit));
}

template <class Record>
std::vector<size_t> starts_by_chain(const std::vector<Record>& records, size_t max) {
  std::vector<uint16_t> flags(records.size());
  for (size_t i = 0; i < records.size(); ++i) flags[i] = records[i].flags;
  return batch_starts(flags, max);
}

std::vector<size_t> starts_plain(size_t count, size_t max) {
  std::vector<size_t> starts;
  for (size_t s = 0; s < count; s += max) starts.push_back(s);
  return starts;
}

template <class Outcome, class Code>
std::function<void(std::vector<Outcome>&, const reply&, size_t, size_t)> merge_results() {
  return [](std::vector<Outcome>& out, const reply& r, size_t first, size_t count) {
    const auto results = wire::records<wire::event_result>(r.body.data(), r.body.size());
    for (const auto& e : results) {
      // Indexes are within the frame and strictly increasing (frames are merged in order).
      if (e.index >= count || (!out.empty() && first + e.index <= out.back().index))
        throw error(error_kind::protocol, wire::status::ok, "event results out of order or range");
      out.push_back(Outcome{uint32_t(first + e.index), Code(e.result)});
    }
  };
}

template <class Record>
std::function<void(std::vector<Record>&, const reply&, size_t, size_t)> append_records() {
  return [](std::vector<Record>& out, const reply& r, size_t, size_t) {
    const auto got = wire::records<Record>(r.body.data(), r.body.size());
    out.insert(out.end(), got.begin(), got.end());
  };
}

// One reply per command of the frame, in order; indexes become indexes into the whole call.
std::function<void(std::vector<ledger::payments::payment_reply>&, const reply&, size_t, size_t)>
merge_payment_replies() {
  return [](std::vector<ledger::payments::payment_reply>& out, const reply& r, size_t first, size_t count) {
    auto got = wire::records<ledger::payments::payment_reply>(r.body.data(), r.body.size());
    if (got.size() != count)
      throw error(error_kind::protocol, wire::status::ok, "submit_payments: not one reply per command");
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i].index != i)
        throw error(error_kind::protocol, wire::status::ok, "submit_payments: replies out of order");
      got[i].index = uint32_t(first + i);
    }
    out.insert(out.end(), got.begin(), got.end());
  };
}

} // namespace

std::future<std::vector<ledger::create_account_outcome>>
connection::create_accounts(std::vector<ledger::account> accounts, const wire::context& ctx) {
  auto starts = starts_by_chain(accounts, events_per_frame(server_limits(), sizeof(ledger::account)));
  return run_batches<ledger::account, std::vector<ledger::create_account_outcome>>(
      *this, wire::operation::create_accounts, std::move(accounts), std::move(starts), ctx,
      merge_results<ledger::create_account_outcome, ledger::account_result>());
}

std::future<std::vector<ledger::create_transfer_outcome>>
connection::create_transfers(std::vector<ledger::transfer> transfers, const wire::context& ctx) {
  auto starts =
      starts_by_chain(transfers, events_per_frame(server_limits(), sizeof(ledger::transfer)));
  return run_batches<ledger::transfer, std::vector<ledger::create_transfer_outcome>>(
      *this, wire::operation::create_transfers, std::move(transfers), std::move(starts), ctx,
      merge_results<ledger::create_transfer_outcome, ledger::transfer_result>());
}

std::future<std::vector<ledger::account>> connection::lookup_accounts(std::vector<u128> ids,
                                                                      const wire::context& ctx) {
  // Replies carry 128-byte records, so a frame holds as many ids as records fit in a reply.
  auto starts = starts_plain(ids.size(), events_per_frame(server_limits(), sizeof(ledger::account)));
  return run_batches<u128, std::vector<ledger::account>>(*this, wire::operation::lookup_accounts,
                                                         std::move(ids), std::move(starts), ctx,
                                                         append_records<ledger::account>());
}

std::future<std::vector<ledger::transfer>> connection::lookup_transfers(std::vector<u128> ids,
                                                                        const wire::context& ctx) {
  auto starts = starts_plain(ids.size(), events_per_frame(server_limits(), sizeof(ledger::transfer)));
  return run_batches<u128, std::vector<ledger::transfer>>(*this, wire::operation::lookup_transfers,
                                                          std::move(ids), std::move(starts), ctx,
                                                          append_records<ledger::transfer>());
}

std::future<std::vector<ledger::transfer>>
connection::get_account_transfers(const wire::filter& f, const wire::context& ctx) {
  return run_batches<wire::filter, std::vector<ledger::transfer>>(
      *this, wire::operation::get_account_transfers, {f}, {0}, ctx,
      append_records<ledger::transfer>());
}

std::future<std::vector<ledger::account_balance>>
connection::get_account_balances(const wire::filter& f, const wire::context& ctx) {
  return run_batches<wire::filter, std::vector<ledger::account_balance>>(
      *this, wire::operation::get_account_balances, {f}, {0}, ctx,
      append_records<ledger::account_balance>());
}

std::future<std::vector<ledger::payments::payment_reply>>
connection::submit_payments(std::vector<ledger::payments::payment_command> commands,
                            const wire::context& ctx) {
  using ledger::payments::payment_command;
  auto starts = starts_plain(commands.size(), events_per_frame(server_limits(), sizeof(payment_command)));
  return run_batches<payment_command, std::vector<ledger::payments::payment_reply>>(
      *this, wire::operation::submit_payments, std::move(commands), std::move(starts), ctx,
      merge_payment_replies());
}

std::future<std::vector<ledger::payments::order>> connection::lookup_orders(std::vector<u128> ids,
                                                                          const wire::context& ctx) {
  // Orders are 256 bytes: a frame asks for no more than a reply frame holds.
  auto starts = starts_plain(ids.size(), events_per_frame(server_limits(), sizeof(ledger::payments::order)));
  return run_batches<u128, std::vector<ledger::payments::order>>(
      *this, wire::operation::lookup_orders, std::move(ids), std::move(starts), ctx,
      append_records<ledger::payments::order>());
}

std::future<std::vector<ledger::payments::order_item>>
connection::lookup_order_items(std::vector<u128> ids, const wire::context& ctx) {
  // One order a frame: its reply may hold as many items as fit in a frame.
  auto starts = starts_plain(ids.size(), 1);
  return run_batches<u128, std::vector<ledger::payments::order_item>>(
      *this, wire::operation::lookup_order_items, std::move(ids), std::move(starts), ctx,
      append_records<ledger::payments::order_item>());
}

std::future<std::vector<wire::case_record>> connection::get_cases(const wire::cases_filter& f,
                                                                 const wire::context& ctx) {
  return run_batches<wire::cases_filter, std::vector<wire::case_record>>(
      *this, wire::operation::get_cases, {f}, {0}, ctx, append_records<wire::case_record>());
}

std::future<wire::resolve_reply> connection::resolve_case(const ledger::store::recon_resolution& r,
                                                          const wire::context& ctx) {
  auto replies = run_batches<ledger::store::recon_resolution, std::vector<wire::resolve_reply>>(
      *this, wire::operation::resolve_case, {r}, {0}, ctx, append_records<wire::resolve_reply>());
  return std::async(std::launch::deferred, [f = std::move(replies)]() mutable {
    auto got = f.get();
    if (got.size() != 1) throw error(error_kind::protocol, wire::status::ok, "resolve_case: not one reply");
    return got[0];
  });
}

// --- blocking_client ---------------------------------------------------------------------------

void blocking_client::connect(const std::string& host, uint16_t port,
                              std::chrono::milliseconds timeout) {
  options o = options_;
  o.connect_timeout = timeout;
  conn_.reset();
  conn_ = connection::connect(host, port, o);
}

void blocking_client::close() { conn_.reset(); }

connection& blocking_client::async() {
  if (!conn_) throw error(error_kind::connection, wire::status::ok, "not connected");
  return *conn_;
}

std::vector<ledger::create_account_outcome>
blocking_client::create_accounts(const std::vector<ledger::account>& accounts,
                                 const wire::context& ctx) {
  return async().create_accounts(accounts, ctx).get();
}

std::vector<ledger::create_transfer_outcome>
blocking_client::create_transfers(const std::vector<ledger::transfer>& transfers,
                                  const wire::context& ctx) {
  return async().create_transfers(transfers, ctx).get();
}

std::vector<ledger::account> blocking_client::lookup_accounts(const std::vector<u128>& ids,
                                                              const wire::context& ctx) {
  return async().lookup_accounts(ids, ctx).get();
}

std::vector<ledger::transfer> blocking_client::lookup_transfers(const std::vector<u128>& ids,
                                                                const wire::context& ctx) {
  return async().lookup_transfers(ids, ctx).get();
}

std::vector<ledger::transfer> blocking_client::get_account_transfers(const wire::filter& f,
                                                                     const wire::context& ctx) {
  return async().get_account_transfers(f, ctx).get();
}

std::vector<ledger::account_balance>
blocking_client::get_account_balances(const wire::filter& f, const wire::context& ctx) {
  return async().get_account_balances(f, ctx).get();
}

std::vector<ledger::payments::payment_reply>
blocking_client::submit_payments(const std::vector<ledger::payments::payment_command>& commands,
                                 const wire::context& ctx) {
  return async().submit_payments(commands, ctx).get();
}

std::vector<ledger::payments::order> blocking_client::lookup_orders(const std::vector<u128>& ids,
                                                                    const wire::context& ctx) {
  return async().lookup_orders(ids, ctx).get();
}

std::vector<ledger::payments::order_item>
blocking_client::lookup_order_items(const std::vector<u128>& ids, const wire::context& ctx) {
  return async().lookup_order_items(ids, ctx).get();
}

std::vector<wire::case_record> blocking_client::get_cases(const wire::cases_filter& f, const wire::context& ctx) {
  return async().get_cases(f, ctx).get();
}

wire::resolve_reply blocking_client::resolve_case(const ledger::store::recon_resolution& r,
                                                  const wire::context& ctx) {
  return async().resolve_case(r, ctx).get();
}

} // namespace kassa::client
