#include "perf/bench/driver.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <sys/random.h>
#include <thread>

#include <boost/asio.hpp>

#include "runtime/wire/crypto.hpp"

namespace kassa::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr size_t read_chunk_bytes = 64 * 1024;
// After a `busy` reply a connection sends nothing for this long: kassad asked for less, and
// an immediate resend would spin both sides on the shared cores.
constexpr auto busy_pause = std::chrono::milliseconds(10);
constexpr uint32_t slot_bits = 16; // request_id = sequence << 16 | slot
static_assert((uint64_t{1} << slot_bits) > depth_max);
const wire::limits reply_limits{64u << 20, 65535, true};

tally empty_tally(size_t results) {
  tally t;
  t.results.assign(results, 0);
  return t;
}

// What every connection of a run shares.
struct run_state {
  run_state(const scenario& sc, const driver_options& op) : s(sc), o(op) {}
  const scenario& s;
  const driver_options& o;
  clock_type::time_point start, deadline;
  std::atomic<uint64_t> requests_claimed{0};
  std::atomic<uint32_t> open{0}; // connections not finished
  std::mutex mutex;
  std::condition_variable changed;
  size_t results = 0;

  void finished_one() {
    std::lock_guard<std::mutex> lock(mutex);
    --open;
    changed.notify_all();
  }
};

// One event loop thread and what its connections counted since the last tick.
struct loop {
  asio::io_context io;
  std::mutex mutex;
  tally window;
  std::thread thread;
};

class connection {
public:
  connection(loop& l, run_state& r, uint32_t index, std::unique_ptr<generator> g)
      : l_(l), r_(r), index_(index), gen_(std::move(g)), socket_(l.io), timer_(l.io), slots_(r.s.depth) {
    for (size_t i = r.s.depth; i > 0; --i) free_.push_back(uint16_t(i - 1));
    // Open loop: this connection's share of the rate, its sends spread over the others'.
    if (r.s.loop == loop_kind::open) {
      interval_s_ = double(r.s.connections) / double(r.s.rate_per_s);
      phase_s_ = interval_s_ * double(index) / double(r.s.connections);
    }
  }

  // Connects and says hello (and authenticates) with blocking calls, before the loop runs.
  void handshake() {
    socket_.connect(r_.o.endpoint);
    socket_.set_option(tcp::no_delay(true));
    wire::hello_request hello;
    const auto h = exchange(wire::operation::hello, &hello, sizeof hello);
    wire::hello_reply limits;
    if (h.size() != sizeof limits) throw std::runtime_error("kassad sent a bad hello reply");
    std::memcpy(&limits, h.data(), sizeof limits);
    if (r_.s.events > limits.batch_events_max)
      throw std::runtime_error("events " + std::to_string(r_.s.events) + " is above kassad's batch_events_max " +
                               std::to_string(limits.batch_events_max));
    if (r_.s.depth > limits.requests_inflight_max)
      throw std::runtime_error("depth " + std::to_string(r_.s.depth) + " is above kassad's requests_inflight_max " +
                               std::to_string(limits.requests_inflight_max));
    if (!r_.o.key.empty()) {
      authenticate(limits);
    } else if ((limits.access_flags & wire::access_required) != 0) {
      throw std::runtime_error("kassad requires authentication: give --client-id and --key-file");
    }
    socket_.non_blocking(true);
  }

  void start() {
    read();
    try_send();
  }

  // The run is over: send nothing more, finish once the replies are in.
  void stop() {
    stopping_ = true;
    timer_.cancel();
    finish_if_idle();
  }

  // The drain is over: what is still in flight timed out.
  void abort() {
    if (finished_) return;
    fail_inflight(request_error_timeout);
    finish();
  }

private:
  struct slot {
    bool used = false;
    uint32_t sequence = 0;
    clock_type::time_point start;
    uint32_t events = 0;
  };

  // --- the blocking handshake ----------------------------------------------------------

  std::vector<uint8_t> exchange(wire::operation op, const void* body, size_t bytes) {
    wire::header h;
    h.op = op;
    h.request_id = ++handshake_id_;
    h.event_count = 1;
    h.ctx.client_id = r_.o.client_id;
    std::vector<uint8_t> frame;
    wire::encode(frame, h, body, bytes);
    asio::write(socket_, asio::buffer(frame));
    std::vector<uint8_t> in;
    for (;;) {
      const wire::decoded d = wire::decode(in.data(), in.size(), reply_limits);
      if (d.outcome == wire::decode_outcome::frame) {
        if (d.h.st != wire::status::ok)
          throw std::runtime_error(std::string(wire::name(op)) + ": kassad answered " + std::string(wire::name(d.h.st)));
        std::vector<uint8_t> out(d.body, d.body + d.body_bytes);
        in.erase(in.begin(), in.begin() + long(d.consumed));
        if (!in.empty()) throw std::runtime_error("kassad sent more than one reply");
        return out;
      }
      if (d.outcome != wire::decode_outcome::need_more) throw std::runtime_error("kassad sent an unreadable reply");
      uint8_t chunk[4096];
      const size_t n = socket_.read_some(asio::buffer(chunk));
      in.insert(in.end(), chunk, chunk + n);
    }
  }

  // The challenge-response of docs/security.md, as the client library does it.
  void authenticate(const wire::hello_reply& hello) {
    wire::authenticate_request a;
    a.client_id = r_.o.client_id;
    if (::getrandom(a.client_nonce, sizeof a.client_nonce, 0) != ssize_t(sizeof a.client_nonce))
      throw std::runtime_error("no random bytes for the client nonce");
    uint8_t key[wire::key_bytes];
    std::memcpy(key, r_.o.key.data(), sizeof key);
    const auto proof = wire::auth_proof(wire::proof_side::client, key, hello.server_nonce, a.client_nonce, a.client_id);
    std::memcpy(a.proof, proof.data(), proof.size());
    const auto expected = wire::auth_proof(wire::proof_side::server, key, hello.server_nonce, a.client_nonce, a.client_id);
    const auto reply = exchange(wire::operation::authenticate, &a, sizeof a);
    wire::authenticate_reply got;
    if (reply.size() != sizeof got) throw std::runtime_error("kassad sent a bad authenticate reply");
    std::memcpy(&got, reply.data(), sizeof got);
    if (!wire::equal_constant_time(got.proof, sizeof got.proof, expected.data(), expected.size()))
      throw std::runtime_error("kassad did not prove that it holds this client's key");
  }

  // --- sending -------------------------------------------------------------------------

  clock_type::time_point scheduled(uint64_t k) const {
    return r_.start + std::chrono::duration_cast<clock_type::duration>(
                          std::chrono::duration<double>(phase_s_ + double(k) * interval_s_));
  }

  void try_send() {
    if (finished_) return;
    const auto now = clock_type::now();
    if (now >= r_.deadline) stopping_ = true;
    if (!stopping_ && now < paused_until_) {
      arm_timer(paused_until_);
      flush();
      return;
    }
    while (!stopping_ && !free_.empty()) {
      auto start = now;
      if (r_.s.loop == loop_kind::open) {
        start = scheduled(scheduled_);
        if (start > now) {
          arm_timer(start);
          break;
        }
      }
      if (r_.requests_claimed.fetch_add(1) >= r_.s.requests_max) {
        stopping_ = true;
        break;
      }
      ++scheduled_;
      send_one(start);
    }
    flush();
    finish_if_idle();
  }

  void arm_timer(clock_type::time_point at) {
    if (timer_armed_ && timer_at_ == at) return;
    timer_armed_ = true;
    timer_at_ = at;
    timer_.expires_at(at);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      timer_armed_ = false;
      if (!ec) try_send();
    });
  }

  void send_one(clock_type::time_point start) {
    const uint16_t index = free_.back();
    free_.pop_back();
    slot& sl = slots_[index];
    body_.clear();
    const request_shape shape = gen_->next(index, body_);
    sl.used = true;
    sl.sequence = ++sequence_;
    sl.start = start;
    sl.events = shape.events;
    wire::header h;
    h.op = shape.op;
    h.request_id = (uint64_t(sl.sequence) << slot_bits) | index;
    h.event_count = shape.events;
    h.ctx.trace_id = (u128{r_.s.seed} << 64) | (u128{index_} << 40) | sl.sequence;
    h.ctx.client_id = r_.o.client_id;
    h.ctx.shadow = r_.o.shadow;
    wire::encode(outbox_, h, body_.data(), body_.size());
    ++inflight_;
  }

  void flush() {
    if (writing_active_ || outbox_.empty() || finished_) return;
    writing_.swap(outbox_);
    outbox_.clear();
    writing_active_ = true;
    asio::async_write(socket_, asio::buffer(writing_), [this](const boost::system::error_code& ec, size_t) {
      writing_active_ = false;
      writing_.clear();
      if (ec) {
        lost();
        return;
      }
      flush();
      finish_if_idle();
    });
  }

  // --- replies -------------------------------------------------------------------------

  void read() {
    // The inbox keeps its size (only ever grows, for a reply larger than what it holds):
    // resizing a vector up per read would zero-fill the chunk every time.
    if (inbox_start_ == inbox_used_) {
      inbox_used_ = inbox_start_ = 0;
    } else if (inbox_start_ > 0) {
      std::memmove(inbox_.data(), inbox_.data() + inbox_start_, inbox_used_ - inbox_start_);
      inbox_used_ -= inbox_start_;
      inbox_start_ = 0;
    }
    if (inbox_.size() < inbox_used_ + read_chunk_bytes) inbox_.resize(inbox_used_ + read_chunk_bytes);
    socket_.async_read_some(asio::buffer(inbox_.data() + inbox_used_, inbox_.size() - inbox_used_),
                            [this](const boost::system::error_code& ec, size_t n) {
                              inbox_used_ += n;
                              if (finished_) return;
                              if (ec) {
                                lost();
                                return;
                              }
                              if (!drain()) return;
                              try_send();
                              if (!finished_) read();
                            });
  }

  // Handles every complete reply in the inbox; false once the connection is gone.
  bool drain() {
    for (;;) {
      const wire::decoded d = wire::decode(inbox_.data() + inbox_start_, inbox_used_ - inbox_start_, reply_limits);
      if (d.outcome == wire::decode_outcome::need_more) return true;
      if (d.outcome != wire::decode_outcome::frame) {
        lost();
        return false;
      }
      inbox_start_ += d.consumed;
      if (d.h.request_id == 0) { // a connection-level error: kassad closes
        {
          std::lock_guard<std::mutex> lock(l_.mutex);
          l_.window.request_errors[size_t(d.h.st)]++;
        }
        lost();
        return false;
      }
      const size_t index = d.h.request_id & ((uint64_t{1} << slot_bits) - 1);
      if (index >= slots_.size() || !slots_[index].used || slots_[index].sequence != (d.h.request_id >> slot_bits)) {
        lost(); // a reply to nothing this connection sent: the stream cannot be trusted
        return false;
      }
      slot& sl = slots_[index];
      const auto now = clock_type::now();
      {
        std::lock_guard<std::mutex> lock(l_.mutex);
        tally& t = l_.window;
        if (d.h.st == wire::status::ok) {
          t.latency.add(uint64_t(std::max<int64_t>(
              0, std::chrono::duration_cast<std::chrono::microseconds>(now - sl.start).count())));
          t.requests++;
          t.events += sl.events;
          gen_->replied(index, d.body, d.body_bytes, t);
        } else {
          t.request_errors[size_t(d.h.st)]++;
          gen_->failed(index, t);
          if (d.h.st == wire::status::busy) paused_until_ = now + busy_pause;
        }
      }
      release(index);
    }
  }

  void release(size_t index) {
    slots_[index].used = false;
    free_.push_back(uint16_t(index));
    --inflight_;
  }

  // --- the end -------------------------------------------------------------------------

  void fail_inflight(size_t error) {
    std::lock_guard<std::mutex> lock(l_.mutex);
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].used) continue;
      l_.window.request_errors[error]++;
      gen_->failed(i, l_.window);
      release(i);
    }
  }

  void lost() {
    if (finished_) return;
    fail_inflight(request_error_connection_lost);
    finish();
  }

  void finish_if_idle() {
    if (stopping_ && inflight_ == 0 && !finished_ && !writing_active_) finish();
  }

  void finish() {
    finished_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    r_.finished_one();
  }

  loop& l_;
  run_state& r_;
  const uint32_t index_;
  std::unique_ptr<generator> gen_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  clock_type::time_point timer_at_;
  std::vector<slot> slots_;
  std::vector<uint16_t> free_;
  uint32_t sequence_ = 0;
  uint64_t handshake_id_ = 0;
  size_t inflight_ = 0;
  uint64_t scheduled_ = 0;
  clock_type::time_point paused_until_;
  double interval_s_ = 0, phase_s_ = 0;
  std::vector<uint8_t> body_, outbox_, writing_, inbox_;
  size_t inbox_start_ = 0; // the first byte not yet decoded
  size_t inbox_used_ = 0;  // bytes of inbox_ that hold received data
  bool writing_active_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

} // namespace

tcp::endpoint loopback_endpoint(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size())
    throw std::invalid_argument("the address is HOST:PORT, got '" + host_port + "'");
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = host_port.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) == 0 || std::stoul(port_text) > 65535)
    throw std::invalid_argument("the port of '" + host_port + "' is not 1..65535");
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto found = resolver.resolve(host, port_text, ec);
  if (ec || found.empty()) throw std::invalid_argument("cannot resolve '" + host + "': " + ec.message());
  for (const auto& e : found) {
    const auto a = e.endpoint().address();
    const bool loopback = a.is_v4() ? (a.to_v4().to_uint() >> 24) == 127 : a.to_v6() == asio::ip::address_v6::loopback();
    if (!loopback)
      throw std::invalid_argument("'" + host + "' is " + a.to_string() +
                                  ": kassa-bench sends load to loopback only (127.0.0.0/8 or ::1)");
  }
  return found.begin()->endpoint();
}

uint64_t tally::errors() const {
  uint64_t n = 0;
  for (uint64_t e : request_errors) n += e;
  return n;
}

void tally::merge(const tally& o) {
  latency.merge(o.latency);
  requests += o.requests;
  events += o.events;
  if (results.size() < o.results.size()) results.resize(o.results.size());
  for (size_t i = 0; i < o.results.size(); ++i) results[i] += o.results[i];
  for (size_t i = 0; i < request_errors.size(); ++i) request_errors[i] += o.request_errors[i];
  for (size_t i = 0; i < commands.size(); ++i) commands[i] += o.commands[i];
}

std::string request_error_name(size_t index) {
  if (index == request_error_timeout) return "timeout";
  if (index == request_error_connection_lost) return "connection_lost";
  return std::string(wire::name(wire::status(index)));
}

load_result run_load(const scenario& s, workload& w, const driver_options& o, const tick_fn& tick) {
  run_state r{s, o};
  r.results = w.result_names().size();
  const uint32_t threads = std::clamp<uint32_t>(o.threads, 1, s.connections);
  std::vector<std::unique_ptr<loop>> loops;
  for (uint32_t t = 0; t < threads; ++t) {
    loops.push_back(std::make_unique<loop>());
    loops.back()->window = empty_tally(r.results);
  }
  std::vector<std::unique_ptr<connection>> conns;
  for (uint32_t c = 0; c < s.connections; ++c) {
    conns.push_back(std::make_unique<connection>(*loops[c % threads], r, c, w.make_generator(c)));
    try {
      conns.back()->handshake();
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("connection " + std::to_string(c) + ": " + e.code().message());
    }
  }

  r.open = s.connections;
  r.start = clock_type::now();
  r.deadline = r.start + std::chrono::seconds(s.duration_s);
  for (uint32_t c = 0; c < s.connections; ++c) {
    connection* conn = conns[c].get();
    asio::post(loops[c % threads]->io, [conn] { conn->start(); });
  }
  for (auto& l : loops) {
    loop* raw = l.get();
    raw->thread = std::thread([raw] { raw->io.run(); });
  }

  load_result out;
  out.total = empty_tally(r.results);
  auto take = [&](double t_s, double window_s) {
    tally window = empty_tally(r.results);
    for (auto& l : loops) {
      std::lock_guard<std::mutex> lock(l->mutex);
      window.merge(l->window);
      l->window = empty_tally(r.results);
    }
    if (t_s - window_s + 1e-9 >= double(s.warmup_s)) out.total.merge(window);
    tick(t_s, window_s, window);
  };
  auto post_all = [&](void (connection::*what)()) {
    for (uint32_t c = 0; c < s.connections; ++c) {
      connection* conn = conns[c].get();
      asio::post(loops[c % threads]->io, [conn, what] { (conn->*what)(); });
    }
  };

  bool stopped = false, aborted = false;
  const auto drain_until = r.deadline + std::chrono::milliseconds(s.request_timeout_ms);
  uint64_t ticks = 0;
  for (;;) {
    const auto next_tick = r.start + std::chrono::seconds(ticks + 1);
    auto wake = next_tick;
    if (!stopped) wake = std::min(wake, r.deadline);
    else if (!aborted) wake = std::min(wake, drain_until);
    {
      std::unique_lock<std::mutex> lock(r.mutex);
      r.changed.wait_until(lock, wake, [&] { return r.open.load() == 0; });
    }
    const auto now = clock_type::now();
    if (r.open.load() == 0) break;
    if (now >= next_tick) {
      ++ticks;
      take(double(ticks), 1.0);
    }
    if (!stopped && now >= r.deadline) {
      stopped = true;
      post_all(&connection::stop);
    }
    if (stopped && !aborted && now >= drain_until) {
      aborted = true;
      post_all(&connection::abort);
    }
  }
  const auto end = clock_type::now();
  for (auto& l : loops) l->thread.join();
  const double elapsed = std::chrono::duration<double>(end - r.start).count();
  const double last = elapsed - double(ticks);
  take(elapsed, last > 0 ? last : 0);
  out.seconds = std::max(0.0, elapsed - double(s.warmup_s));
  out.unanswered = out.total.request_errors[request_error_timeout];
  return out;
}

} // namespace kassa::bench
