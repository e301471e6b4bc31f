// libFuzzer target: the bytes of one client connection to an in-process kassad core (the real
// TCP server and sessions, the directory over two shards with their writers and saga log, and
// the payment core's gateway with its payments store, on temporary LMDB stores). The core is
// started once per process and serves every input. The payment core serves ledgers 1 and 2
// without providers: topups and withdrawals find no channel, while transfers, orders paid
// from a balance and their refunds move money in the ledger.
// After each input:
//   - every reply is a well-formed frame that answers a frame of the input (request id and
//     operation), each at most once; without a frame that closes the connection, every frame
//     is answered and the server keeps the connection open; an ok submit_payments reply holds
//     one payment reply per command, in order, with a known result and state;
//   - per shard and ledger, debits equal credits (posted and pending) over every account any
//     input created, the shard's clearing accounts (of posted and of pending transfers) and the
//     payment core's chart of accounts (fees, suspense, escrow), as one lookup at one instant;
//   - a fresh connection is still served: hello, a transfer, a lookup and a payment transfer
//     answer ok.
// The input is sent as it is, except that a frame whose checksum field is 0 gets its correct
// checksum (so that mutated frames reach the server's logic instead of all failing at the
// checksum); any other checksum is sent unchanged. The seed corpus is written by
// request_corpus (tests/fuzz/request_corpus.cpp); KASSA_FUZZ_PRINT=1 prints the replies to
// each input (operation, status, each payment reply's result and state). Run with -detect_leaks=0: the core and what
// the checks track live on across inputs, so libFuzzer's per-input leak check would scan the
// heap after nearly every input (the ASan pass of the test suite checks leaks instead):
//   request_fuzz -detect_leaks=0 -dict=tests/fuzz/request.dict tests/fuzz/corpus/request
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/payments.hpp"
#include "actors/payments_writer.hpp"
#include "actors/shard.hpp"
#include "actors/writer.hpp"
#include "config/config.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/store/payments_store.hpp"
#include "ledger/store/saga_log.hpp"
#include "ledger/store/store.hpp"
#include "ledger/system_ids.hpp"
#include "runtime/log.hpp"
#include "runtime/server.hpp"
#include "runtime/wire/wire.hpp"

namespace {

using namespace kassa;
namespace ks = kassa::ledger::store;
namespace sid = kassa::ledger::system_ids;
namespace lp = kassa::ledger::payments;

// Small limits, so that inputs reach them: events per frame, requests in flight.
constexpr uint32_t shards_n = 2;
constexpr uint32_t frame_bytes_max = 64 * 1024;
constexpr uint32_t batch_events_max = 64;
constexpr uint32_t requests_inflight_max = 4;
constexpr uint32_t orders_inflight_max = 2;
// The ledgers the payment core serves (inputs may name others).
constexpr uint32_t payment_ledgers[] = {1, 2};
// A fresh store once the accounts to check, the transfers or the payment commands sent grow
// beyond these: the checks after each input stay cheap and the stores stay far from their
// map size.
constexpr size_t tracked_accounts_max = 4096;
constexpr uint64_t transfers_per_store_max = 200'000;
constexpr uint64_t payments_per_store_max = 100'000;
constexpr auto reply_timeout = std::chrono::seconds(10);

// The probe's accounts (ledger 1), created with every store; far from what inputs name.
constexpr u128 probe_debit = make_u128(0x4b41'5353'4655'5a5aull, 1);
constexpr u128 probe_credit = make_u128(0x4b41'5353'4655'5a5aull, 2);

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "request_fuzz: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// One kassad core on a temporary directory.
struct core {
  caf::actor_system& sys;
  std::string dir;
  std::vector<std::shared_ptr<ks::store>> stores;
  std::shared_ptr<ks::saga_log> saga_log;
  std::vector<actors::shard_actor> shards;
  std::vector<actors::writer_actor> writers;
  actors::directory_actor directory;
  std::shared_ptr<ks::payments_store> payments_store;
  caf::actor payments_writer, payments;
  std::unique_ptr<runtime::server> server;
  uint16_t port = 0;
  // What the balance check looks up: every account id an input tried to create, per shard,
  // and every ledger named by one.
  std::vector<std::set<u128>> accounts = std::vector<std::set<u128>>(shards_n);
  size_t accounts_count = 0;
  std::set<uint32_t> ledgers{std::begin(payment_ledgers), std::end(payment_ledgers)};
  uint64_t transfers_sent = 0;
  uint64_t payments_sent = 0;
  uint64_t probe_next = 1;
  uint32_t probe_payments_busy = 0; // in a row

  explicit core(caf::actor_system& s) : sys(s) {
    char pattern[] = "/tmp/kassa-request-fuzz-XXXXXX";
    if (mkdtemp(pattern) == nullptr) fail("cannot make a temporary directory");
    dir = pattern;
    for (uint32_t i = 0; i < shards_n; ++i) {
      ks::options o;
      o.path = dir + "/shard-" + std::to_string(i);
      o.durability = ks::durability::none;
      o.map_size_bytes = uint64_t{1} << 30;
      ks::error err;
      auto store = std::shared_ptr<ks::store>(ks::store::open(o, err));
      if (!store) fail("cannot open a store: " + err.message);
      actors::shard_options so;
      so.shard = i;
      so.store = store;
      so.writer = actors::spawn_writer(sys, store);
      so.clock = actors::now_ns;
      so.commit_events_max = 4096;
      so.query_limit_max = batch_events_max;
      actors::shard_actor shard = actors::spawn_shard(sys, so, err);
      if (!shard) fail("cannot start a shard: " + err.message);
      stores.push_back(store);
      writers.push_back(so.writer);
      shards.push_back(shard);
    }
    ks::error err;
    saga_log = std::shared_ptr<ks::saga_log>(ks::saga_log::open(dir + "/sagas", ks::durability::none, 64u << 20, err));
    if (!saga_log) fail("cannot open the saga log: " + err.message);
    actors::directory_options dopts;
    dopts.shards = shards;
    dopts.saga_log = saga_log;
    dopts.round_events_max = 2048;
    dopts.clock = actors::now_ns;
    std::string error;
    directory = actors::spawn_directory(sys, std::move(dopts), error);
    if (!directory) fail("cannot start the directory: " + error);
    start_payments();
    runtime::server_options so;
    so.address = "127.0.0.1";
    so.port = 0;
    so.connections_max = 16;
    so.frame_bytes_max = frame_bytes_max;
    so.batch_events_max = batch_events_max;
    so.requests_inflight_max = requests_inflight_max;
    so.ledger = directory;
    so.payments = payments;
    server = std::make_unique<runtime::server>(sys, so);
    if (!server->start(error)) fail("cannot start the server: " + error);
    port = server->port();
    create_probe_accounts();
  }

  // The payment core without providers, accounting or reconciliation; a fee on transfers and
  // on pay items, and a per-payment limit on transfers, so that both are exercised.
  void start_payments() {
    ks::error err;
    payments_store = std::shared_ptr<ks::payments_store>(
        ks::payments_store::open(dir + "/payments", ks::durability::none, uint64_t{256} << 20, err));
    if (!payments_store) fail("cannot open the payments store: " + err.message);
    config::payments_config pc;
    pc.enabled = true;
    pc.orders_inflight_max = orders_inflight_max;
    pc.flow_wait_ms = 2000;
    for (uint32_t l : payment_ledgers) pc.ledgers.push_back({l, "C" + std::to_string(l)});
    for (config::payment_type type : {config::payment_type::transfer, config::payment_type::pay}) {
      config::fee_config fee;
      fee.type = type;
      fee.ledger = 1;
      fee.fixed = 1;
      fee.rate_ppm = 10'000;
      pc.fees.push_back(fee);
    }
    config::limit_config limit;
    limit.type = config::payment_type::transfer;
    limit.ledger = 1;
    limit.payment_max = 1'000'000;
    pc.limits.push_back(limit);
    pc.accounting.enabled = false;
    pc.reconciliation.enabled = false;
    actors::check_flows(pc);
    payments_writer = actors::spawn_payments_writer(sys, payments_store);
    actors::payments_options po;
    po.cfg = std::move(pc);
    po.shards = shards_n;
    po.directory = directory;
    po.writer = payments_writer;
    po.store = payments_store;
    po.clock = actors::now_ns;
    po.log_info = [](const std::string&) {};
    po.log_error = [](const std::string&) {};
    payments = actors::spawn_payments(sys, std::move(po));
    if (!payments) fail("cannot start the payment core");
  }

  void create_probe_accounts() {
    std::vector<ledger::account> accounts(2, ledger::account{});
    accounts[0].id = probe_debit;
    accounts[1].id = probe_credit;
    for (auto& a : accounts) {
      a.ledger = 1;
      a.code = 1;
      track_account(a.id);
    }
    caf::scoped_actor self{sys};
    self->request(directory, std::chrono::seconds(10), actors::create_accounts_request{{}, std::move(accounts), {}})
        .receive(
            [&](actors::create_reply& r) {
              if (r.status != actors::outcome::ok || !r.failures.empty()) fail("cannot create the probe's accounts");
            },
            [&](caf::error& err) { fail("cannot create the probe's accounts: " + sys.render(err)); });
  }

  ~core() {
    server.reset();
    caf::anon_send_exit(payments, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(payments_writer, caf::exit_reason::user_shutdown);
    payments = caf::actor{};
    payments_writer = caf::actor{};
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    for (auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    directory = actors::directory_actor{};
    shards.clear();
    writers.clear();
    // The stores close when the last actor holding one is gone.
    std::vector<std::weak_ptr<ks::store>> closing(stores.begin(), stores.end());
    std::weak_ptr<ks::saga_log> log_closing = saga_log;
    std::weak_ptr<ks::payments_store> payments_closing = payments_store;
    stores.clear();
    saga_log.reset();
    payments_store.reset();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto open = [&] {
      for (const auto& w : closing) if (!w.expired()) return true;
      return !log_closing.expired() || !payments_closing.expired();
    };
    while (open() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (open()) fail("the stores were not closed 10 s after the actors were told to exit");
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  void track_account(u128 id) {
    if (id == 0 || id == u128_max || sid::reserved(id)) return;
    if (accounts[actors::shard_of(id, shards_n)].insert(id).second) ++accounts_count;
  }
};

caf::actor_system* actor_system = nullptr;
core* the_core = nullptr;

// At exit: the stores close and the temporary directory goes. The actor system stays (its
// threads may still run while the process ends).
void stop_everything() {
  delete the_core;
  the_core = nullptr;
}

core& get_core() {
  if (actor_system == nullptr) {
    kassa::log::set_level(kassa::log::level::error); // framing errors are the daily bread here
    static caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", 2);
    actor_system = new caf::actor_system(cfg);
    std::atexit(stop_everything);
  }
  if (the_core != nullptr &&
      (the_core->accounts_count > tracked_accounts_max || the_core->transfers_sent > transfers_per_store_max ||
       the_core->payments_sent > payments_per_store_max)) {
    delete the_core;
    the_core = nullptr;
  }
  if (the_core == nullptr) the_core = new core(*actor_system);
  return *the_core;
}

// --- the input as the server will see it -----------------------------------------------------

// Fills in the checksum of every frame whose checksum field is 0, as far as frames can be told
// apart (magic and a length within the input).
void fill_checksums(std::vector<uint8_t>& bytes) {
  size_t at = 0;
  while (bytes.size() - at >= wire::header_bytes) {
    uint32_t magic, frame_bytes, checksum;
    std::memcpy(&magic, bytes.data() + at, 4);
    std::memcpy(&frame_bytes, bytes.data() + at + 8, 4);
    std::memcpy(&checksum, bytes.data() + at + 12, 4);
    if (magic != wire::magic || frame_bytes < wire::header_bytes || frame_bytes > bytes.size() - at) return;
    if (checksum == 0) {
      checksum = wire::frame_checksum(bytes.data() + at, frame_bytes);
      std::memcpy(bytes.data() + at + 12, &checksum, 4);
    }
    at += frame_bytes;
  }
}

// What the server owes for an input: one reply per frame it can delimit, matched by request id
// and operation; `may_close` when the input holds something after which the server closes
// (lost framing, or as many authenticate frames as it allows to fail).
struct expectation {
  std::multiset<std::pair<uint64_t, uint16_t>> replies;
  // The command count of each submit_payments frame, by request id.
  std::multiset<std::pair<uint64_t, uint32_t>> payment_commands;
  bool may_close = false;
};

expectation expect(const std::vector<uint8_t>& bytes, core& c) {
  expectation e;
  const wire::limits limits{frame_bytes_max, batch_events_max, false};
  size_t at = 0, authenticates = 0;
  while (at < bytes.size()) {
    const wire::decoded d = wire::decode(bytes.data() + at, bytes.size() - at, limits);
    if (d.outcome == wire::decode_outcome::need_more) break;
    if (d.outcome == wire::decode_outcome::error_close) {
      e.replies.emplace(0, uint16_t(wire::operation::hello)); // a connection-level error
      e.may_close = true;
      break;
    }
    e.replies.emplace(d.h.request_id, uint16_t(d.h.op));
    if (d.outcome == wire::decode_outcome::frame) {
      if (d.h.op == wire::operation::authenticate && ++authenticates >= 3) e.may_close = true;
      if (d.h.op == wire::operation::create_accounts) {
        for (const auto& a : wire::records<ledger::account>(d.body, d.body_bytes)) {
          c.track_account(a.id);
          c.ledgers.insert(a.ledger);
        }
      }
      if (d.h.op == wire::operation::create_transfers) c.transfers_sent += d.h.event_count;
      if (d.h.op == wire::operation::submit_payments) {
        c.payments_sent += d.h.event_count;
        e.payment_commands.emplace(d.h.request_id, d.h.event_count);
      }
    }
    at += d.consumed;
  }
  return e;
}

// --- one connection --------------------------------------------------------------------------

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("cannot connect to the server");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

struct reply_frame {
  wire::header h;
  std::vector<uint8_t> body;
};

// An ok submit_payments reply: one payment reply per command of a frame with that request id,
// in order, each with a result and a state the protocol knows.
void check_payment_replies(const wire::decoded& d, expectation& e) {
  auto it = e.payment_commands.find({d.h.request_id, d.h.event_count});
  if (it == e.payment_commands.end()) {
    fail("a submit_payments reply with " + std::to_string(d.h.event_count) +
         " payment replies answers no frame with as many commands (request_id " + std::to_string(d.h.request_id) + ")");
  }
  e.payment_commands.erase(it);
  for (uint32_t i = 0; i < d.h.event_count; ++i) {
    lp::payment_reply r;
    std::memcpy(&r, d.body + size_t(i) * sizeof r, sizeof r);
    if (r.index != i) fail("payment reply " + std::to_string(i) + " names command " + std::to_string(r.index));
    if (r.result > lp::payment_result_max)
      fail("payment reply " + std::to_string(i) + " has an unknown result " + std::to_string(r.result));
    if (r.state > lp::order_state_max)
      fail("payment reply " + std::to_string(i) + " has an unknown state " + std::to_string(r.state));
  }
}

// Sends `bytes` and reads replies until `e` is met: all replies in (and the connection still
// open unless the input may close it), or the server closed a connection it may close.
std::vector<reply_frame> exchange(uint16_t port, const std::vector<uint8_t>& bytes, expectation e) {
  const size_t expected = e.replies.size();
  const int fd = connect_to(port);
  std::vector<reply_frame> replies;
  std::vector<uint8_t> in;
  size_t sent = 0;
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + reply_timeout;
  const wire::limits limits{frame_bytes_max, batch_events_max, true};
  while (replies.size() < expected || (sent < bytes.size() && !closed)) {
    if (closed) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      fail("no reply within 10 s: " + std::to_string(replies.size()) + " of " + std::to_string(expected) +
           " replies, " + std::to_string(sent) + " of " + std::to_string(bytes.size()) + " bytes sent");
    }
    pollfd p{fd, short(POLLIN | (sent < bytes.size() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, int(left.count())) < 0) fail("poll() failed");
    if ((p.revents & POLLOUT) != 0) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += size_t(n);
      else if (n < 0 && errno != EAGAIN && errno != EINTR) sent = bytes.size(); // the server closed
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      uint8_t buf[64 * 1024];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
      } else {
        in.insert(in.end(), buf, buf + n);
      }
      size_t at = 0;
      while (at < in.size()) {
        const wire::decoded d = wire::decode(in.data() + at, in.size() - at, limits);
        if (d.outcome == wire::decode_outcome::need_more) break;
        // An error reply echoes the request's operation: one the codec does not know is the
        // only thing a reply decoder may then object to.
        const bool unknown_operation_echoed = d.outcome == wire::decode_outcome::error_keep_open &&
                                              d.error == wire::status::operation_unknown && d.h.reply &&
                                              d.h.st != wire::status::ok && d.h.event_count == 0 &&
                                              d.consumed == wire::header_bytes;
        if (d.outcome != wire::decode_outcome::frame && !unknown_operation_echoed)
          fail(std::string("a reply is not a well-formed frame: ") + std::string(wire::name(d.error)));
        if (!d.h.reply) fail("a reply without the reply flag");
        if (d.h.st == wire::status::ok && d.body_bytes != d.h.event_count * wire::record_bytes(d.h.op, true))
          fail("an ok reply whose body is not event_count records");
        if (d.h.st != wire::status::ok && (d.body_bytes != 0 || d.h.event_count != 0))
          fail("an error reply with a body");
        auto it = e.replies.find({d.h.request_id, uint16_t(d.h.op)});
        if (it == e.replies.end()) {
          fail("a reply (request_id " + std::to_string(d.h.request_id) + ", operation " +
               std::to_string(uint16_t(d.h.op)) + ", " + std::string(wire::name(d.h.st)) +
               ") answers no frame of the input, or one already answered");
        }
        e.replies.erase(it);
        if (d.h.op == wire::operation::submit_payments && d.h.st == wire::status::ok) check_payment_replies(d, e);
        replies.push_back({d.h, std::vector<uint8_t>(d.body, d.body + d.body_bytes)});
        at += d.consumed;
      }
      in.erase(in.begin(), in.begin() + long(at));
    }
  }
  if (closed && !e.may_close) {
    fail("the server closed the connection after " + std::to_string(replies.size()) + " of " +
         std::to_string(expected) + " replies, with nothing in the input that closes it");
  }
  if (closed && !in.empty()) fail("the connection closed in the middle of a reply frame");
  ::close(fd);
  return replies;
}

// --- the checks after each input -------------------------------------------------------------

// A 256-bit sum: 2^128 of each of many accounts' totals does not overflow it.
struct wide_sum {
  u128 hi = 0, lo = 0;
  void add(u128 v) {
    lo += v;
    if (lo < v) ++hi;
  }
  bool operator==(const wide_sum& o) const { return hi == o.hi && lo == o.lo; }
};

// Per shard and ledger, debits equal credits, posted and pending, over every tracked account,
// the shard's clearing accounts (those of posted and those of pending transfers across shards)
// and its part of the payment core's chart of accounts (no provider clearing accounts: there
// are no providers), read in one message (one instant of the shard).
void check_books(core& c) {
  caf::scoped_actor self{c.sys};
  for (uint32_t s = 0; s < shards_n; ++s) {
    actors::lookup_accounts_request req;
    req.ids.assign(c.accounts[s].begin(), c.accounts[s].end());
    for (uint32_t ledger : c.ledgers) {
      for (uint32_t other = 0; other < shards_n; ++other) {
        if (other == s) continue;
        for (bool two_phase : {false, true}) req.ids.push_back(sid::clearing(s, other, ledger, two_phase));
      }
    }
    for (uint32_t ledger : payment_ledgers) {
      for (lp::role role : {lp::role::fees, lp::role::suspense, lp::role::escrow}) {
        req.ids.push_back(lp::account_id(role, 0, s, ledger));
      }
    }
    actors::accounts_reply reply;
    reply.status = actors::outcome::store_unavailable;
    self->request(c.shards[s], std::chrono::seconds(10), std::move(req))
        .receive([&](actors::accounts_reply& r) { reply = std::move(r); },
                 [&](caf::error& err) { fail("shard lookup failed: " + c.sys.render(err)); });
    if (reply.status != actors::outcome::ok) fail("a shard does not answer a lookup ok");
    struct sums { wide_sum dp, dpo, cp, cpo; };
    std::map<uint32_t, sums> per_ledger;
    for (const ledger::account& a : reply.accounts) {
      sums& t = per_ledger[a.ledger];
      t.dp.add(a.debits_pending);
      t.dpo.add(a.debits_posted);
      t.cp.add(a.credits_pending);
      t.cpo.add(a.credits_posted);
    }
    for (const auto& [ledger, t] : per_ledger) {
      if (!(t.dpo == t.cpo) || !(t.dp == t.cp)) {
        for (const ledger::account& a : reply.accounts) {
          if (a.ledger != ledger) continue;
          std::fprintf(stderr, "  account %s: debits pending %s posted %s, credits pending %s posted %s\n",
                       to_string_u128(a.id).c_str(), to_string_u128(a.debits_pending).c_str(),
                       to_string_u128(a.debits_posted).c_str(), to_string_u128(a.credits_pending).c_str(),
                       to_string_u128(a.credits_posted).c_str());
        }
      }
      if (!(t.dpo == t.cpo)) fail("shard " + std::to_string(s) + " ledger " + std::to_string(ledger) + ": debits posted != credits posted");
      if (!(t.dp == t.cp)) fail("shard " + std::to_string(s) + " ledger " + std::to_string(ledger) + ": debits pending != credits pending");
    }
  }
}

std::vector<uint8_t> frame(wire::operation op, uint64_t request_id, const void* body, size_t bytes, uint32_t count) {
  wire::header h;
  h.op = op;
  h.request_id = request_id;
  h.event_count = count;
  std::vector<uint8_t> out;
  wire::encode(out, h, body, bytes);
  return out;
}

// A fresh connection is served: hello, a transfer between the probe's accounts, a lookup, and
// a payment transfer between them (done, or still running, or turned away as busy while the
// input's payments run on).
void check_serving(core& c) {
  std::vector<uint8_t> bytes;
  auto append = [&](const std::vector<uint8_t>& f) { bytes.insert(bytes.end(), f.begin(), f.end()); };
  const wire::hello_request hello;
  append(frame(wire::operation::hello, 1, &hello, sizeof hello, 1));
  ledger::transfer t{};
  t.id = make_u128(0x4b41'5353'4655'5a5aull, c.probe_next++);
  t.debit_account_id = probe_debit;
  t.credit_account_id = probe_credit;
  t.amount = 1;
  t.ledger = 1;
  t.code = 1;
  append(frame(wire::operation::create_transfers, 3, &t, sizeof t, 1));
  const u128 ids[2] = {probe_debit, probe_credit};
  append(frame(wire::operation::lookup_accounts, 4, ids, sizeof ids, 2));
  lp::payment_command p{};
  p.key = make_u128(0x4b41'5353'4655'5a5bull, c.probe_next);
  p.order_id = p.key;
  p.account_id = probe_debit;
  p.counterparty_id = probe_credit;
  p.amount = 1;
  p.ledger = 1;
  p.kind = uint16_t(lp::kind::transfer);
  append(frame(wire::operation::submit_payments, 5, &p, sizeof p, 1));
  ++c.payments_sent;
  expectation e;
  e.replies = {{1, uint16_t(wire::operation::hello)},
               {3, uint16_t(wire::operation::create_transfers)},
               {4, uint16_t(wire::operation::lookup_accounts)},
               {5, uint16_t(wire::operation::submit_payments)}};
  e.payment_commands = {{5, 1}};
  for (const reply_frame& r : exchange(c.port, bytes, e)) {
    if (r.h.st != wire::status::ok) {
      fail("a fresh connection's " + std::string(wire::name(r.h.op)) + " was answered " +
           std::string(wire::name(r.h.st)));
    }
    if (r.h.op == wire::operation::lookup_accounts && r.h.event_count != 2) fail("the probe's accounts are not found");
    if (r.h.op == wire::operation::submit_payments) {
      lp::payment_reply pr;
      std::memcpy(&pr, r.body.data(), sizeof pr);
      const auto result = lp::payment_result(pr.result);
      if (result != lp::payment_result::ok && result != lp::payment_result::in_progress &&
          result != lp::payment_result::busy) {
        fail("a fresh connection's payment transfer was answered " + std::string(lp::name(result)));
      }
      // Flows end within the flow wait when no provider is called: a payment core that stays
      // busy has lost count of its flows.
      c.probe_payments_busy = result == lp::payment_result::busy ? c.probe_payments_busy + 1 : 0;
      if (c.probe_payments_busy >= 100) fail("the payment core answered busy to 100 probes in a row");
    }
  }
}

// KASSA_FUZZ_PRINT=1: what the server answered, to see what a seed or a crash input does.
void print_replies(const std::vector<reply_frame>& replies) {
  for (const reply_frame& r : replies) {
    std::fprintf(stderr, "reply %llu %s: %s", static_cast<unsigned long long>(r.h.request_id),
                 std::string(wire::name(r.h.op)).c_str(), std::string(wire::name(r.h.st)).c_str());
    if (r.h.op == wire::operation::submit_payments && r.h.st == wire::status::ok) {
      for (size_t at = 0; at + sizeof(lp::payment_reply) <= r.body.size(); at += sizeof(lp::payment_reply)) {
        lp::payment_reply pr;
        std::memcpy(&pr, r.body.data() + at, sizeof pr);
        std::fprintf(stderr, " %s/%s", std::string(lp::name(lp::payment_result(pr.result))).c_str(),
                     std::string(lp::name(lp::order_state(pr.state))).c_str());
      }
    } else if (r.h.st == wire::status::ok) {
      std::fprintf(stderr, " (%u records)", r.h.event_count);
    }
    std::fprintf(stderr, "\n");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool print = std::getenv("KASSA_FUZZ_PRINT") != nullptr;
  core& c = get_core();
  std::vector<uint8_t> bytes(data, data + size);
  fill_checksums(bytes);
  const expectation e = expect(bytes, c);
  const std::vector<reply_frame> replies = exchange(c.port, bytes, e);
  if (print) print_replies(replies);
  check_books(c);
  check_serving(c);
  return 0;
}
