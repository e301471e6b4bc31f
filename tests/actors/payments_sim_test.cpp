// Deterministic simulation of the payment core on CAF's test_coordinator, with injected faults.
// The real gateway, order actors, flow supervisors and steps run over the real directory and
// two shards (LMDB stores, their writers held and failed on command) and the real payments
// store; the channels are stand-ins whose provider the simulation plays: it answers calls in
// any order, late or never, says `unknown` or `pending`, takes a call only after kassa gave up
// on it (a late success), declines, pays part or another amount, and sends callbacks again and
// late. Writes of the payments store and group commits of the shards fail now and then, and the
// payment core crashes and restarts from its store as kassad does at boot. Every random choice
// comes from one seed (printed; KASSA_SEED=N replays a run). Tagged [sim].
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "actors/channel.hpp"
#include "actors/directory.hpp"
#include "actors/payment_messages.hpp"
#include "actors/payments.hpp"
#include "actors/payments_core.hpp"
#include "actors/payments_writer.hpp"
#include "actors/shard.hpp"
#include "ledger/payments/booking_check.hpp"
#include "ledger/payments/gl.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/store/payments_store.hpp"
#include "tests/actors/held_writer.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/process.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::test;
namespace lp = kassa::ledger::payments;
namespace ks = kassa::ledger::store;
using lp::kind;
using lp::order_state;
using lp::payment_result;

namespace {

constexpr uint32_t shards_n = 2;
constexpr uint32_t usd = 840;
constexpr size_t providers_n = 2;
const char* const provider_names[providers_n] = {"alpha", "beta"};
constexpr u128 funding = 100'000; // each user's balance before the payments

// --- the provider's books: what it did with each payment id (survives kassa's restarts) ------

struct provider_payment {
  call_kind kind = call_kind::charge;
  u128 asked = 0;
  u128 refund_of = 0;
  call_status status = call_status::pending; // succeeded, partial, declined or pending
  u128 moved = 0;                            // what moved (succeeded or partial)
  call_status settles_as = call_status::succeeded; // what a pending one becomes
  u128 settles_moved = 0;
};

struct provider_books {
  std::map<u128, provider_payment> payments;
  uint64_t events = 0;
};

// --- what the simulation holds for the stand-ins -----------------------------------------------

// An answer is delivered from inside the stand-in that holds its promise (`by`): a promise
// is kept by the actor that made it.
struct held_call {
  payment_call call;
  caf::response_promise rp;
  size_t provider;
  caf::actor by;
};
struct held_query {
  status_query query;
  caf::response_promise rp;
  size_t provider;
  caf::actor by;
};
struct held_write {
  payments_write write;
  caf::response_promise rp;
  caf::actor by;
};
// A call that reached the provider after kassa had stopped waiting for it.
struct delayed_call {
  payment_call call;
  size_t provider;
};

// simulation -> stand-in: run this in the stand-in (deliver a promise it holds)
struct run_in {
  std::function<void()> fn;
};

} // namespace

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(run_in)

namespace {

template <class T>
void answer(const caf::actor& by, caf::response_promise rp, T x) {
  caf::anon_send(by, run_in{[rp, x]() mutable { rp.deliver(std::move(x)); }});
}

// One life of the payment core: its stand-ins for the outside world answer only while it lives.
struct generation {
  bool dead = false;
  // every actor of the core that spoke to a stand-in, by id: killed in the order they were
  // spawned, not by address, so that a seed replays alike in every build
  std::map<caf::actor_id, caf::strong_actor_ptr> seen;
};
using gen_ptr = std::shared_ptr<generation>;

struct world {
  std::mt19937_64 rng;
  std::vector<provider_books> providers = std::vector<provider_books>(providers_n);
  std::vector<held_call> calls;
  std::vector<held_query> queries;
  std::deque<held_write> writes;
  std::vector<delayed_call> delayed;
  std::vector<caf::actor> subscribers = std::vector<caf::actor>(providers_n);
  std::vector<std::string> problems; // invariant violations seen by the stand-ins
  bool credentials_fail = true;      // credential requests fail now and then
  uint32_t health_down_pct = 10;     // health answers that say the breaker is open

  explicit world(uint64_t seed) : rng(seed) {}
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool chance(uint32_t percent) { return below(100) < percent; }

  // The provider takes the call (once per payment id: a repeat gets the first outcome).
  const provider_payment& apply(size_t p, const payment_call& c) {
    auto& books = providers[p].payments;
    auto it = books.find(c.payment_id);
    if (it != books.end()) return it->second;
    provider_payment pp;
    pp.kind = c.kind;
    pp.asked = c.amount;
    pp.refund_of = c.refund_of;
    if (c.kind == call_kind::refund) {
      // kassa never asks to refund more than the charge moved, counting every refund it asked
      // before that was not declined
      u128 asked = c.amount;
      for (const auto& [id, other] : books)
        if (other.kind == call_kind::refund && other.refund_of == c.refund_of && other.status != call_status::declined)
          asked += other.status == call_status::succeeded ? other.moved : other.asked; // what it gave back
      auto charge = books.find(c.refund_of);
      const u128 moved = charge == books.end() ? 0 : charge->second.moved;
      if (asked > moved) {
        std::ostringstream out;
        out << "refunds asked of payment " << to_string_u128(c.refund_of) << " add up to " << to_string_u128(asked)
            << " but it moved " << to_string_u128(moved);
        problems.push_back(out.str());
      }
      pp.status = asked <= moved && !chance(5) ? call_status::succeeded : call_status::declined;
      pp.moved = pp.status == call_status::succeeded ? c.amount : 0;
      return books[c.payment_id] = pp;
    }
    const uint64_t r = below(100);
    if (r < 62) {
      pp.status = call_status::succeeded;
      pp.moved = c.amount;
    } else if (r < 67 && c.kind == call_kind::charge && c.amount > 1) {
      pp.status = call_status::partial;
      pp.moved = c.amount / 2;
    } else if (r < 70) {
      pp.status = call_status::succeeded; // another amount than asked
      pp.moved = c.amount + (c.kind == call_kind::charge ? 1 : 0) - (c.kind == call_kind::payout ? 1 : 0);
    } else if (r < 82) {
      pp.status = call_status::declined;
    } else {
      pp.status = call_status::pending;
      pp.settles_as = chance(75) ? call_status::succeeded : call_status::declined;
      pp.settles_moved = pp.settles_as == call_status::succeeded ? c.amount : 0;
    }
    return books[c.payment_id] = pp;
  }

  call_result result_of(const provider_payment& pp, u128 id) const {
    call_result r;
    r.status = pp.status;
    r.payment_id = id;
    r.amount = pp.moved;
    r.provider_ref = "ref-" + to_string_u128(u128_lo(id));
    r.attempts = 1;
    return r;
  }

  void event(size_t p, u128 id, const provider_payment& pp) {
    if (!subscribers[p]) return;
    provider_event ev;
    ev.provider = provider_names[p];
    ev.sequence = ++providers[p].events;
    ev.payment_id = id;
    ev.kind = pp.kind;
    ev.status = pp.status;
    ev.amount = pp.moved;
    ev.provider_ref = "ref-" + to_string_u128(u128_lo(id));
    caf::anon_send(subscribers[p], std::move(ev));
  }

  // Every callback of the provider's feed again, as a channel subscribing from the start sees it.
  void replay(size_t p) {
    for (const auto& [id, pp] : providers[p].payments)
      if (pp.status != call_status::pending) event(p, id, pp);
  }
};
using world_ptr = std::shared_ptr<world>;

void seen(caf::local_actor* self, const gen_ptr& g) {
  if (auto s = self->current_sender()) g->seen.emplace(s->id(), s);
}

// The channel stand-in: calls and status queries wait for the simulation; credentials and
// health are answered at once.
caf::behavior fake_channel(caf::event_based_actor* self, world_ptr w, gen_ptr g, size_t p) {
  return {
      [self, w, g, p](payment_call& c) -> caf::result<call_result> {
        seen(self, g);
        auto rp = self->make_response_promise<call_result>();
        if (!g->dead) w->calls.push_back({std::move(c), rp, p, caf::actor_cast<caf::actor>(self)});
        return rp;
      },
      [self, w, g, p](status_query& q) -> caf::result<call_result> {
        seen(self, g);
        auto rp = self->make_response_promise<call_result>();
        if (!g->dead) w->queries.push_back({q, rp, p, caf::actor_cast<caf::actor>(self)});
        return rp;
      },
      [self, w, g](credential_request&) -> credential_reply {
        seen(self, g);
        if (w->credentials_fail && w->chance(3)) return credential_reply{false, "", "injected: no token"};
        return credential_reply{true, "token", ""};
      },
      [self, w, g, p](health_request&) -> health_reply {
        seen(self, g);
        health_reply h;
        h.provider = provider_names[p];
        h.inflight_max = 1000;
        if (w->chance(w->health_down_pct)) h.state = health_state::down; // its breaker is open: routing picks another
        return h;
      },
      [w, g, p](subscribe_events& s) {
        if (g->dead) return;
        w->subscribers[p] = s.subscriber;
        w->replay(p); // from the start of the feed (the cursor is 0)
      },
      [](statement_request&) { return statement_reply{true, {}, ""}; },
      [g](run_in& r) {
        if (!g->dead) r.fn();
      },
  };
}

// The payments writer stand-in: each write waits until the simulation commits it to the real
// store (or fails it, writing nothing).
caf::behavior fake_payments_writer(caf::event_based_actor* self, world_ptr w, gen_ptr g) {
  return {
      [self, w, g](payments_write& pw) -> caf::result<payments_written> {
        seen(self, g);
        auto rp = self->make_response_promise<payments_written>();
        if (!g->dead) w->writes.push_back({std::move(pw), rp, caf::actor_cast<caf::actor>(self)});
        return rp;
      },
      [g](run_in& r) {
        if (!g->dead) r.fn();
      },
  };
}

// The ledger as the payment core sees it: the directory, behind a door that closes when the
// core crashes (a booking on its way may have landed; its answer is lost).
caf::behavior ledger_front(caf::event_based_actor* self, caf::actor directory, gen_ptr g) {
  auto relay = [self, directory, g](auto& req, auto reply_tag) {
    using reply_t = decltype(reply_tag);
    seen(self, g);
    auto rp = self->make_response_promise<reply_t>();
    if (g->dead) return rp;
    self->request(directory, caf::infinite, std::move(req))
        .then([rp, g](reply_t& r) mutable {
          if (!g->dead) rp.deliver(std::move(r));
        });
    return rp;
  };
  return {
      [relay](create_accounts_request& r) -> caf::result<create_reply> { return relay(r, create_reply{}); },
      [relay](create_transfers_request& r) -> caf::result<create_reply> { return relay(r, create_reply{}); },
      [relay](lookup_accounts_request& r) -> caf::result<accounts_reply> { return relay(r, accounts_reply{}); },
      [relay](lookup_transfers_request& r) -> caf::result<transfers_reply> { return relay(r, transfers_reply{}); },
  };
}

// A shard's writer that holds each group until the simulation commits it (or fails it); a
// release with nothing held does nothing (releases are sent before the group is seen).
struct ledger_writer_state {
  static inline const char* name = "sim_ledger_writer";
  std::deque<std::pair<commit_group, caf::response_promise>> held;
};
caf::behavior ledger_writer(caf::stateful_actor<ledger_writer_state>* self, std::shared_ptr<ks::store> store,
                            std::shared_ptr<size_t> held) {
  return {
      [self, held](commit_group& g) -> caf::response_promise {
        auto rp = self->make_response_promise();
        self->state.held.emplace_back(std::move(g), rp);
        *held = self->state.held.size();
        return rp;
      },
      [self, store, held](release_atom, bool succeed) {
        if (self->state.held.empty()) return;
        auto [g, rp] = std::move(self->state.held.front());
        self->state.held.pop_front();
        *held = self->state.held.size();
        commit_done done{g.group, {}, {}};
        done.error = succeed ? store->commit(g.changes) : ks::error{ks::errc::io, "injected: the disk refused the write"};
        rp.deliver(std::move(done));
      },
  };
}

// A client: sends submit_payments to the gateway it is given and keeps the replies.
struct client_log {
  std::vector<payments_reply> replies;
};
caf::behavior client(caf::event_based_actor* self, std::shared_ptr<client_log> log) {
  return {
      [self, log](caf::actor gateway, submit_payments_request& r) {
        self->request(gateway, caf::infinite, std::move(r)).then([log](payments_reply& x) { log->replies.push_back(x); });
      },
  };
}

} // namespace

namespace kassa::test {
// checker <- simulation: read these accounts of this shard
struct books_request {
  caf::actor shard;
  std::vector<u128> ids;
};
} // namespace kassa::test

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::test::books_request)

namespace {

// Balances read by the checker: one lookup of the users and one of the system accounts, sent
// together so that the shard answers both from one instant.
struct books_seen {
  std::vector<std::vector<ledger::account>> parts; // by request
  std::vector<std::string> problems;
};
caf::behavior checker(caf::event_based_actor* self, std::shared_ptr<books_seen> seen_books) {
  return {
      [self, seen_books](books_request& b) {
        struct gather {
          std::vector<ledger::account> accounts;
          int left = 2;
          bool ok = true;
        };
        auto g = std::make_shared<gather>();
        auto done = [seen_books, g](const accounts_reply& r) {
          g->ok = g->ok && r.status == outcome::ok; // a failed commit: the shard reloads, asks again later
          g->accounts.insert(g->accounts.end(), r.accounts.begin(), r.accounts.end());
          if (--g->left == 0) seen_books->parts.push_back(g->ok ? g->accounts : std::vector<ledger::account>{});
        };
        self->request(b.shard, caf::infinite, lookup_accounts_request{{}, std::move(b.ids)})
            .then([done](accounts_reply& r) { done(r); });
        self->request(b.shard, caf::infinite, system_accounts_request{})
            .then([done](accounts_reply& r) { done(r); });
      },
  };
}

// Debits equal credits, posted and pending, per ledger over `accounts` (one shard's).
std::string unbalanced(const std::vector<ledger::account>& accounts) {
  std::map<uint32_t, std::array<u128, 4>> sums; // debits posted, credits posted, debits pending, credits pending
  for (const auto& a : accounts) {
    auto& s = sums[a.ledger];
    s[0] += a.debits_posted;
    s[1] += a.credits_posted;
    s[2] += a.debits_pending;
    s[3] += a.credits_pending;
  }
  for (const auto& [ledger, s] : sums) {
    if (s[0] != s[1]) return "ledger " + std::to_string(ledger) + ": debits posted " + to_string_u128(s[0]) + " != credits posted " + to_string_u128(s[1]);
    if (s[2] != s[3]) return "ledger " + std::to_string(ledger) + ": debits pending " + to_string_u128(s[2]) + " != credits pending " + to_string_u128(s[3]);
  }
  return "";
}

// A row no flow works on any more (an order waits for its pay items as long as it likes).
bool final_state(const lp::order& r) {
  const auto s = order_state(r.state);
  if (r.kind == uint16_t(kind::create_order)) return s != order_state::processing && s != order_state::unknown;
  return s == order_state::completed || s == order_state::failed || s == order_state::partially_refunded ||
         s == order_state::refunded || s == order_state::in_review;
}

std::string signed_string(__int128 v) {
  return v < 0 ? "-" + to_string_u128(u128(-v)) : to_string_u128(u128(v));
}

std::string describe(const lp::order& r) {
  std::ostringstream out;
  out << lp::name(kind(r.kind)) << " " << to_string_u128(r.id) << " (sequence " << r.sequence << ", "
      << lp::name(order_state(r.state)) << ", result " << lp::name(payment_result(r.result)) << ", amount "
      << to_string_u128(r.amount) << ", captured " << to_string_u128(r.amount_captured) << ", provider "
      << to_string_u128(r.provider_amount) << ", fee " << to_string_u128(r.fee) << ")";
  return out.str();
}

// --- the simulation ----------------------------------------------------------------------------

// The faults beyond the provider's: "store" (writes of the payments store and group commits of
// the shards fail now and then) and "crash" (the payment core crashes once mid-run in 40 % of
// the runs and restarts from its store). Both by default; KASSA_SIM_FAULTS=store, crash or none
// narrows a run down.
bool faults(const char* which) {
  const char* env = std::getenv("KASSA_SIM_FAULTS");
  if (env == nullptr) return true;
  const std::string v = env;
  return v == "all" || v.find(which) != std::string::npos;
}

struct sim {
  world_ptr w;
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  caf::detail::test_actor_clock::time_point start;
  std::vector<std::shared_ptr<ks::store>> stores;
  std::vector<std::shared_ptr<size_t>> held;
  std::vector<caf::actor> writers; // ledger_writer: a writer_actor that also takes commands
  std::vector<shard_actor> shards;
  caf::actor directory;
  std::shared_ptr<ks::payments_store> pstore;
  config::payments_config pcfg;

  // the payment core's current life
  gen_ptr gen;
  std::vector<gen_ptr> gens;
  caf::actor gateway, client_actor, checker_actor;
  std::vector<caf::actor> fronts; // channels, writer and ledger front of every life
  std::shared_ptr<client_log> replies = std::make_shared<client_log>();
  std::shared_ptr<books_seen> books = std::make_shared<books_seen>();
  std::vector<std::string> errors; // the core's log_error lines

  std::vector<u128> users, merchants;
  std::vector<lp::payment_command> sent; // for repeats
  std::vector<u128> order_ids;
  uint64_t next_id = 1000;
  uint32_t restarts = 0, write_failures = 0, commit_failures = 0;
  std::vector<std::string> violations;
  // Store failures and the crash (KASSA_SIM_FAULTS, see faults())
  uint32_t write_fail_pct = faults("store") ? 4 : 0;
  uint32_t commit_fail_pct = faults("store") ? 2 : 0;
  bool crashes = faults("crash");

  void expect(bool ok, const std::string& what) {
    if (!ok && violations.size() < 50) violations.push_back(what);
  }

  uint64_t now_ns() const {
    const auto d = sched->clock().now() - start;
    return uint64_t{1'780'000'000} * 1'000'000'000 + uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }

  explicit sim(uint64_t seed, std::function<void(config::payments_config&)> tweak = {}) : w(std::make_shared<world>(seed)) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    start = sched->clock().now();
    for (uint32_t i = 0; i < shards_n; ++i) {
      ks::options o;
      o.path = dir.path() + "/shard-" + std::to_string(i);
      o.durability = ks::durability::none;
      o.map_size_bytes = 64ull << 20;
      ks::error err;
      stores.push_back(std::shared_ptr<ks::store>(ks::store::open(o, err)));
      REQUIRE(stores.back());
      held.push_back(std::make_shared<size_t>(0));
      writers.push_back(sys->spawn(ledger_writer, stores.back(), held.back()));
      shard_options so;
      so.shard = i;
      so.store = stores.back();
      so.writer = caf::actor_cast<writer_actor>(writers.back());
      so.clock = [this] { return now_ns(); };
      shards.push_back(spawn_shard(*sys, so, err));
      REQUIRE(shards.back());
    }
    ks::error err;
    directory_options d;
    d.shards = shards;
    d.saga_log = std::shared_ptr<ks::saga_log>(ks::saga_log::open(dir.path() + "/sagas", ks::durability::none, 16u << 20, err));
    REQUIRE(d.saga_log);
    d.saga_writer_detached = false;
    d.sweep_interval_ns = 0;
    d.clock = [this] { return now_ns(); };
    d.log_error = [this](const std::string& m, const std::string& detail) { errors.push_back("directory: " + m + " " + detail); };
    std::string error;
    directory = caf::actor_cast<caf::actor>(spawn_directory(*sys, d, error));
    REQUIRE(directory);
    pstore = std::shared_ptr<ks::payments_store>(
        ks::payments_store::open(dir.path() + "/payments", ks::durability::none, 64ull << 20, err));
    REQUIRE(pstore);
    configure();
    if (tweak) tweak(pcfg);
    client_actor = sys->spawn(client, replies);
    checker_actor = sys->spawn(checker, books);
    settle_ledger();
    create_accounts();
    boot();
  }

  ~sim() {
    for (auto& g : gens) {
      g->dead = true;
      for (auto& [id, a] : g->seen) caf::anon_send_exit(caf::actor_cast<caf::actor>(a), caf::exit_reason::kill);
    }
    w->calls.clear();
    w->queries.clear();
    w->writes.clear();
    for (auto& s : w->subscribers) s = caf::actor{};
    for (auto& a : fronts) caf::anon_send_exit(a, caf::exit_reason::kill);
    for (auto* a : {&gateway, &client_actor, &checker_actor, &directory})
      if (*a) caf::anon_send_exit(*a, caf::exit_reason::kill);
    for (auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::kill);
    for (auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::kill);
    sched->run();
    // actors killed above may have spoken to a stand-in on their way out
    for (int round = 0; round < 10; ++round) {
      size_t n = 0;
      for (auto& g : gens)
        for (auto& [id, a] : g->seen) {
          caf::anon_send_exit(caf::actor_cast<caf::actor>(a), caf::exit_reason::kill);
          ++n;
        }
      for (auto& g : gens) g->seen.clear();
      if (n == 0) break;
      sched->run();
    }
    while (sched->trigger_timeouts() > 0) sched->run();
  }

  void configure() {
    pcfg.enabled = true;
    pcfg.orders_inflight_max = 1000;
    pcfg.flow_wait_ms = 100;
    pcfg.ledgers = {{usd, "USD"}};
    for (size_t p = 0; p < providers_n; ++p) {
      config::provider_config c;
      c.name = provider_names[p];
      c.url = "http://127.0.0.1:1/" + c.name;
      c.host = "127.0.0.1";
      c.port = 1;
      c.ledgers = {usd};
      c.priority = uint32_t(p + 1);
      c.credentials = p == 0;
      c.timeout_ms = 1000;
      c.retries_max = 1;
      c.status_query.interval_ms = 500;
      c.status_query.queries_max = 200; // the provider always tells in the end
      pcfg.providers.push_back(c);
    }
    config::fee_config topup_fee;
    topup_fee.type = config::payment_type::topup;
    topup_fee.ledger = usd;
    topup_fee.fixed = 30;
    topup_fee.rate_ppm = 15000;
    topup_fee.rounding = config::fee_rounding::half_even;
    config::fee_config withdrawal_fee;
    withdrawal_fee.type = config::payment_type::withdrawal;
    withdrawal_fee.ledger = usd;
    withdrawal_fee.fixed = 10;
    config::fee_config transfer_fee;
    transfer_fee.type = config::payment_type::transfer;
    transfer_fee.ledger = usd;
    transfer_fee.rate_ppm = 5000;
    pcfg.fees = {topup_fee, withdrawal_fee, transfer_fee};
    config::limit_config limit;
    limit.type = config::payment_type::withdrawal;
    limit.ledger = usd;
    limit.payment_max = 20'000;
    pcfg.limits = {limit};
    auto& x = pcfg.exceptions;
    x.partial_payment = config::partial_payment_policy(w->below(3));
    x.partial_hold_ms = 1000;
    x.duplicate_payment = config::duplicate_payment_policy(w->below(2));
    x.late_success = config::late_success_policy(w->below(2));
    pcfg.accounting.enabled = false;
    pcfg.reconciliation.enabled = false;
  }

  // Users and merchants (no overdraft), each user funded from a bank account outside the model.
  void create_accounts() {
    const u128 bank = 1;
    std::vector<ledger::account> as{make_account(bank, usd)};
    for (int i = 0; i < 6; ++i) users.push_back(100 + i);
    for (int i = 0; i < 2; ++i) merchants.push_back(200 + i);
    for (u128 id : users) as.push_back(make_account(id, usd, ledger::account_debits_must_not_exceed_credits));
    for (u128 id : merchants) as.push_back(make_account(id, usd, ledger::account_debits_must_not_exceed_credits));
    ask_ledger(create_accounts_request{{}, as, {}});
    std::vector<ledger::transfer> ts;
    u128 tid = 1;
    for (u128 id : users) ts.push_back(make_transfer(tid++, bank, id, funding, 0, usd));
    ask_ledger(create_transfers_request{{}, ts, {}});
  }

  template <class Request>
  void ask_ledger(Request req) {
    auto done = std::make_shared<bool>(false);
    sys->spawn(
        [](caf::event_based_actor* self, caf::actor to, Request r, std::shared_ptr<bool> done) -> caf::behavior {
          self->request(to, caf::infinite, std::move(r)).then([self, done](create_reply& x) {
            REQUIRE(x.status == outcome::ok);
            REQUIRE(x.failures.empty());
            *done = true;
            self->quit();
          });
          return {[](int) {}};
        },
        directory, std::move(req), done);
    for (int i = 0; i < 100 && !*done; ++i) settle_ledger();
    REQUIRE(*done);
  }

  // What the directory holds of `ids`, as a client sees it.
  std::vector<ledger::transfer> lookup_ledger(std::vector<u128> ids) {
    auto out = std::make_shared<std::vector<ledger::transfer>>();
    auto done = std::make_shared<bool>(false);
    sys->spawn(
        [](caf::event_based_actor* self, caf::actor to, std::vector<u128> ids,
           std::shared_ptr<std::vector<ledger::transfer>> out, std::shared_ptr<bool> done) -> caf::behavior {
          self->request(to, caf::infinite, lookup_transfers_request{{}, std::move(ids)}).then([self, out, done](transfers_reply& x) {
            REQUIRE(x.status == outcome::ok);
            *out = std::move(x.transfers);
            *done = true;
            self->quit();
          });
          return {[](int) {}};
        },
        directory, std::move(ids), out, done);
    for (int i = 0; i < 100 && !*done; ++i) settle_ledger();
    REQUIRE(*done);
    return std::move(*out);
  }

  // Rows <-> ledger as the reconciler sees them (ledger/payments/booking_check.hpp): every
  // booking a row's journal notes is in the ledger with the noted amount, a completed row
  // notes its main booking, a failed row holds nothing that moved money.
  void check_bookings() {
    std::map<uint64_t, lp::order> by_sequence;
    std::map<uint64_t, lp::booking_expectation> expect_of;
    std::map<uint64_t, std::map<lp::leg, lp::found_booking>> found;
    for (const auto& r : rows()) {
      if (r.kind == uint16_t(kind::create_order)) continue;
      std::vector<ks::journal_entry> j;
      REQUIRE(pstore->journal_by_row(r.id, j).ok());
      std::vector<lp::booking_note> notes(j.size());
      for (size_t i = 0; i < j.size(); ++i) {
        std::memcpy(notes[i].step, j[i].step, sizeof notes[i].step);
        notes[i].amount = j[i].amount;
      }
      by_sequence[r.sequence] = r;
      expect_of[r.sequence] = lp::expected_bookings(kind(r.kind), order_state(r.state), r.fee, r.amount_captured, notes);
    }
    std::vector<u128> ids;
    for (const auto& [seq, e] : expect_of) {
      std::vector<u128> more = lp::booking_ids(seq, e);
      ids.insert(ids.end(), more.begin(), more.end());
    }
    for (const auto& t : lookup_ledger(std::move(ids))) lp::record_booking(found[lp::transfer_sequence(t.id)], t.id, t.amount);
    for (const auto& [seq, e] : expect_of)
      for (const auto& f : lp::compare_bookings(seq, e, found[seq])) {
        std::string journal; // what the row noted, for a look at a failing run
        std::vector<ks::journal_entry> j;
        REQUIRE(pstore->journal_by_row(by_sequence[seq].id, j).ok());
        for (const auto& x : j) journal += " " + std::string(x.step, strnlen(x.step, sizeof x.step)) + "=" + to_string_u128(x.amount);
        expect(false, describe(by_sequence[seq]) + ": rows <-> ledger finding " + std::to_string(int(f.kind)) + " leg " +
                          std::to_string(int(lp::transfer_leg(f.transfer_id))) + " row says " +
                          to_string_u128(f.expected) + ", ledger holds " + to_string_u128(f.found) + "; journal" + journal);
      }
  }

  // Runs every job and commits every held ledger group until nothing is left to do.
  void settle_ledger() {
    for (int round = 0; round < 1000; ++round) {
      sched->run();
      bool any = false;
      for (uint32_t i = 0; i < shards_n; ++i) {
        if (*held[i] > 0) {
          caf::anon_send(writers[i], release_atom::value, true);
          any = true;
        }
      }
      if (!any && !sched->has_job()) return;
    }
  }

  // A new life of the payment core over the same stores, as kassad boots.
  void boot() {
    gen = std::make_shared<generation>();
    gens.push_back(gen);
    payments_options po;
    po.cfg = pcfg;
    po.shards = shards_n;
    // an untyped stand-in that answers the directory's messages
    po.directory = caf::actor_cast<directory_actor>(sys->spawn(ledger_front, directory, gen));
    po.writer = sys->spawn(fake_payments_writer, w, gen);
    for (size_t p = 0; p < providers_n; ++p) po.channels.push_back(sys->spawn(fake_channel, w, gen, p));
    fronts.push_back(caf::actor_cast<caf::actor>(po.directory));
    fronts.push_back(po.writer);
    fronts.insert(fronts.end(), po.channels.begin(), po.channels.end());
    po.store = pstore;
    po.clock = [this] { return now_ns(); };
    po.log_error = [this](const std::string& m) { errors.push_back(m); };
    gateway = spawn_payments(*sys, std::move(po));
  }

  // The payment core dies at once: its actors are killed, its stand-ins answer nothing any more
  // (writes not yet committed are lost, calls in flight stay with the provider). Then it boots.
  void crash_and_restart() {
    ++restarts;
    gen->dead = true;
    for (auto& [id, a] : gen->seen) caf::anon_send_exit(caf::actor_cast<caf::actor>(a), caf::exit_reason::kill);
    caf::anon_send_exit(gateway, caf::exit_reason::kill);
    w->calls.clear();
    w->queries.clear();
    w->writes.clear();
    for (auto& s : w->subscribers) s = caf::actor{};
    boot();
  }

  // --- the workload ------------------------------------------------------------------------------

  u128 amount() { return 1 + w->below(w->chance(10) ? 30'000 : 3'000); }
  u128 user() { return users[w->below(users.size())]; }

  void submit() {
    lp::payment_command c{};
    if (!sent.empty() && w->chance(12)) {
      c = sent[w->below(sent.size())]; // the same command again
      if (w->chance(20)) c.amount += 1; // the same key with other fields
    } else {
      c.key = ++next_id;
      c.ledger = usd;
      const uint64_t r = w->below(100);
      if (r < 25) {
        c.kind = uint16_t(kind::topup);
        c.order_id = ++next_id;
        c.account_id = user();
        c.amount = amount();
      } else if (r < 40) {
        c.kind = uint16_t(kind::withdrawal);
        c.order_id = ++next_id;
        c.account_id = user();
        c.amount = amount();
      } else if (r < 52) {
        c.kind = uint16_t(kind::transfer);
        c.order_id = ++next_id;
        c.account_id = user();
        do c.counterparty_id = user();
        while (c.counterparty_id == c.account_id);
        c.amount = amount();
      } else if (r < 62 || order_ids.empty()) {
        c.kind = uint16_t(kind::create_order);
        c.order_id = ++next_id;
        c.account_id = merchants[w->below(merchants.size())];
        c.amount = amount();
        order_ids.push_back(c.order_id);
      } else if (r < 85) {
        c.kind = uint16_t(kind::pay);
        c.ledger = 0;
        c.order_id = order_ids[w->below(order_ids.size())];
        c.account_id = user();
        c.amount = amount();
        c.source = uint16_t(w->chance(50) ? lp::source::balance : lp::source::provider);
      } else {
        c.kind = uint16_t(kind::refund);
        c.ledger = 0;
        c.order_id = order_ids[w->below(order_ids.size())];
        c.amount = 1 + w->below(2'000);
      }
      if ((c.kind == uint16_t(kind::topup) || c.kind == uint16_t(kind::withdrawal)) && w->chance(20)) {
        const char* name = provider_names[w->below(providers_n)];
        std::memcpy(c.provider, name, std::min(std::strlen(name), sizeof c.provider));
      }
      sent.push_back(c);
    }
    submit_payments_request req;
    req.ctx.trace_id = next_id;
    req.commands = {c};
    caf::anon_send(client_actor, gateway, std::move(req));
  }

  // Runs one job, chosen at random among the actors that have mail.
  void run_one() {
    auto& jobs = sched->jobs;
    if (jobs.empty()) return;
    const size_t k = w->below(jobs.size());
    std::swap(jobs[0], jobs[k]);
    sched->run_once();
  }

  void answer_call(bool honest) {
    if (w->calls.empty()) return;
    const size_t k = w->below(w->calls.size()); // answers come in any order
    held_call h = std::move(w->calls[k]);
    w->calls.erase(w->calls.begin() + long(k));
    const uint64_t r = honest ? 0 : w->below(100);
    if (r < 70) {
      const auto& pp = w->apply(h.provider, h.call);
      answer(h.by, h.rp, w->result_of(pp, h.call.payment_id));
    } else if (r < 78) { // it arrived, the answer was lost
      w->apply(h.provider, h.call);
      call_result cr;
      cr.status = call_status::unknown;
      cr.payment_id = h.call.payment_id;
      cr.detail = "injected: timeout";
      answer(h.by, h.rp, cr);
    } else if (r < 86) { // still on its way to the provider: it arrives later
      w->delayed.push_back({h.call, h.provider});
      call_result cr;
      cr.status = call_status::unknown;
      cr.payment_id = h.call.payment_id;
      answer(h.by, h.rp, cr);
    } else if (r < 90) { // the provider answers with an error that is not a decline
      call_result cr;
      cr.status = call_status::failed;
      cr.payment_id = h.call.payment_id;
      // or the channel proves it never reached the provider (connection refused, breaker
      // open): the payment may go to the other channel
      cr.not_sent = w->chance(50);
      if (cr.not_sent && w->chance(50)) cr.status = call_status::rejected;
      answer(h.by, h.rp, cr);
    } else { // never answered; the provider may or may not have it
      if (w->chance(50)) w->apply(h.provider, h.call);
      else w->delayed.push_back({h.call, h.provider});
    }
  }

  void answer_query(bool honest) {
    if (w->queries.empty()) return;
    const size_t k = w->below(w->queries.size());
    held_query h = std::move(w->queries[k]);
    w->queries.erase(w->queries.begin() + long(k));
    call_result cr;
    cr.payment_id = h.query.payment_id;
    if (!honest && w->chance(25)) {
      cr.status = call_status::unknown;
    } else {
      const auto& books = w->providers[h.provider].payments;
      auto it = books.find(h.query.payment_id);
      if (it == books.end()) cr.status = call_status::not_found;
      else cr = w->result_of(it->second, h.query.payment_id);
    }
    answer(h.by, h.rp, cr);
  }

  // A pending payment settles at the provider, which calls back.
  void settle_pending() {
    std::vector<std::pair<size_t, u128>> pending;
    for (size_t p = 0; p < providers_n; ++p)
      for (auto& [id, pp] : w->providers[p].payments)
        if (pp.status == call_status::pending) pending.emplace_back(p, id);
    if (pending.empty()) return;
    auto [p, id] = pending[w->below(pending.size())];
    auto& pp = w->providers[p].payments[id];
    pp.status = pp.settles_as;
    pp.moved = pp.settles_moved;
    if (w->chance(80)) w->event(p, id, pp);
  }

  // A callback about a payment the provider decided: again, late, or for the first time.
  void callback() {
    std::vector<std::pair<size_t, u128>> decided;
    for (size_t p = 0; p < providers_n; ++p)
      for (auto& [id, pp] : w->providers[p].payments)
        if (pp.status != call_status::pending) decided.emplace_back(p, id);
    if (decided.empty()) return;
    auto [p, id] = decided[w->below(decided.size())];
    w->event(p, id, w->providers[p].payments[id]);
  }

  // A call that was on its way arrives at the provider.
  void arrive() {
    if (w->delayed.empty()) return;
    const size_t k = w->below(w->delayed.size());
    delayed_call d = w->delayed[k];
    w->delayed.erase(w->delayed.begin() + long(k));
    const auto& pp = w->apply(d.provider, d.call);
    if (pp.status != call_status::pending && w->chance(70)) w->event(d.provider, d.call.payment_id, pp);
  }

  void release_write(bool succeed) {
    if (w->writes.empty()) return;
    held_write h = std::move(w->writes.front()); // the store commits in arrival order
    w->writes.pop_front();
    payments_written done;
    if (succeed) {
      done.error = pstore->write(h.write.batch);
      done.journal_last = pstore->journal_last();
      if (done.error.ok())
        for (const auto& r : h.write.batch.rows) check_row(r); // what the store holds now
    } else {
      ++write_failures;
      done.error = ks::error{ks::errc::io, "injected: the payments store refused the write"};
    }
    answer(h.by, h.rp, std::move(done));
  }

  void release_commit(bool succeed) {
    std::vector<uint32_t> waiting;
    for (uint32_t i = 0; i < shards_n; ++i)
      if (*held[i] > 0) waiting.push_back(i);
    if (waiting.empty()) return;
    const uint32_t i = waiting[w->below(waiting.size())];
    if (!succeed) ++commit_failures;
    caf::anon_send(writers[i], release_atom::value, succeed);
    if (succeed) request_books(); // read after the commit lands; checked at the next step
  }

  bool idle() const {
    return !sched->has_job() && w->calls.empty() && w->queries.empty() && w->writes.empty() && w->delayed.empty() &&
           *held[0] == 0 && *held[1] == 0;
  }

  // One random step of the world.
  void step(bool submitting) {
    const uint64_t r = w->below(1000);
    if (r < 450) run_one();
    else if (r < 480) { if (submitting) submit(); }
    else if (r < 560) answer_call(false);
    else if (r < 620) answer_query(false);
    else if (r < 720) release_write(!w->chance(write_fail_pct));
    else if (r < 820) release_commit(!w->chance(commit_fail_pct));
    else if (r < 850) { if (!sched->has_job() || w->chance(20)) sched->trigger_timeout(); }
    else if (r < 870) settle_pending();
    else if (r < 890) callback();
    else if (r < 900) arrive();
    else run_one();
  }

  // Runs the core without a word from any provider: jobs, writes of the payments store and
  // group commits only, until none is left.
  void pump() {
    for (int i = 0; i < 100'000; ++i) {
      if (sched->has_job()) { sched->run_once(); continue; }
      if (!w->writes.empty()) { release_write(true); continue; }
      if (*held[0] > 0 || *held[1] > 0) { release_commit(true); continue; }
      return;
    }
    FAIL("the payment core did not come to rest");
  }

  // Whether a timer other than the directory's tick (every second, forever) is armed.
  bool timers_pending() {
    using clock = caf::detail::simple_actor_clock;
    const auto ticker = caf::actor_cast<caf::strong_actor_ptr>(directory);
    for (const auto& [due, ev] : sched->clock().schedule()) {
      if (ev->subtype == clock::actor_msg_type && static_cast<const clock::actor_msg&>(*ev).receiver == ticker) continue;
      return true;
    }
    return false;
  }

  // No more faults: every call and query answered truthfully, every write committed, every
  // timer fired, until nothing is left.
  void settle() {
    bool replayed = false;
    for (int i = 0; i < 2'000'000; ++i) {
      if (sched->has_job()) {
        run_one();
        continue;
      }
      if (!w->writes.empty()) { release_write(true); continue; }
      if (*held[0] > 0 || *held[1] > 0) { release_commit(true); continue; }
      if (!w->calls.empty()) { answer_call(true); continue; }
      if (!w->queries.empty()) { answer_query(true); continue; }
      if (!w->delayed.empty()) { arrive(); continue; }
      bool pending = false;
      for (auto& b : w->providers)
        for (auto& [id, pp] : b.payments) pending |= pp.status == call_status::pending;
      if (pending) { settle_pending(); continue; }
      if (timers_pending()) { sched->trigger_timeout(); continue; }
      if (!replayed) { // the provider's feed delivers every callback in the end
        replayed = true;
        for (size_t p = 0; p < providers_n; ++p) w->replay(p);
        continue;
      }
      return;
    }
    std::ostringstream why;
    why << "the simulation did not settle: jobs " << sched->jobs.size() << ", writes " << w->writes.size()
        << ", calls " << w->calls.size() << ", queries " << w->queries.size() << ", timeouts "
        << sched->has_pending_timeout();
    for (auto* j : sched->jobs)
      if (auto* a = dynamic_cast<caf::local_actor*>(j)) why << " " << a->name();
    FAIL(why.str());
  }

  // --- invariants --------------------------------------------------------------------------------

  std::vector<lp::order> rows() const {
    std::vector<lp::order> out;
    REQUIRE(pstore->scan_rows([&](const lp::order& r) {
      out.push_back(r);
      return true;
    }).ok());
    return out;
  }

  // What the payments store holds at any moment: a key names one row; no order or pay item
  // has refunds beyond what it captured. Checked for every row a write stores, as it lands,
  // and over the whole store every 100 steps.
  std::map<u128, u128> key_rows;
  void check_row(const lp::order& r) {
    // the parts of a split refund beyond the first are rows of their own under the command's key
    const bool part = r.kind == uint16_t(kind::refund) && r.id != r.key;
    auto [it, fresh] = part ? std::make_pair(key_rows.end(), true) : key_rows.emplace(r.key, r.id);
    expect(fresh || it->second == r.id, describe(r) + ": its key names another row too");
    if (r.kind == uint16_t(kind::create_order) || r.kind == uint16_t(kind::pay)) {
      expect(r.amount_refunded + r.amount_refund_pending <= r.amount_captured,
             describe(r) + ": refunded " + to_string_u128(r.amount_refunded) + " + pending " +
                 to_string_u128(r.amount_refund_pending) + " exceed what it captured");
    }
  }
  void check_rows() {
    for (const auto& r : rows()) check_row(r);
  }

  // Asks every shard for its balances; checked when the answers are in.
  void request_books() {
    std::vector<std::vector<u128>> ids(shards_n);
    for (u128 id : users) ids[shard_of(id, shards_n)].push_back(id);
    for (u128 id : merchants) ids[shard_of(id, shards_n)].push_back(id);
    ids[shard_of(1, shards_n)].push_back(1);
    for (uint32_t s = 0; s < shards_n; ++s) caf::anon_send(checker_actor, books_request{caf::actor_cast<caf::actor>(shards[s]), ids[s]});
  }

  void check_books_seen() {
    for (const auto& part : books->parts) {
      const std::string bad = unbalanced(part);
      expect(bad.empty(), "a shard's books do not balance: " + bad);
    }
    books->parts.clear();
  }

  std::map<u128, ledger::account> accounts_now() {
    std::map<u128, ledger::account> out;
    books->parts.clear();
    request_books();
    settle_ledger();
    REQUIRE(books->parts.size() == shards_n);
    for (const auto& part : books->parts)
      for (const auto& a : part) out[a.id] = a;
    check_books_seen();
    return out;
  }

  // The rows naming `account` and their journals, for a look at a failing run.
  void dump(u128 account) {
    for (const auto& r : rows()) {
      if (r.account_id != account && r.counterparty_id != account) {
        lp::order parent{};
        bool found = false;
        if (r.parent_id == 0 || !pstore->get_row(r.parent_id, parent, found).ok() || parent.account_id != account) continue;
      }
      std::printf("%s items=%u source=%u parent=%s\n", describe(r).c_str(), r.items, r.source, to_string_u128(r.parent_id).c_str());
      std::vector<ks::journal_entry> j;
      pstore->journal_by_row(r.id, j);
      for (const auto& e : j)
        std::printf("    #%llu %.16s %.16s result=%u amount=%s state=%u\n", (unsigned long long)e.sequence, e.actor, e.step, e.result,
                    to_string_u128(e.amount).c_str(), e.state);
      for (size_t p = 0; p < providers_n; ++p) // what the provider did under this row's payment ids
        for (const auto& [pid, pp] : w->providers[p].payments)
          if (pid == pstore->ids().id(r.sequence) || pid == pstore->ids().id(r.sequence, lp::call_role::compensation))
            std::printf("    provider %zu: role %d kind %d status %d asked %s moved %s\n", p, int(u128_lo(pid) >> 56),
                        int(pp.kind), int(pp.status), to_string_u128(pp.asked).c_str(), to_string_u128(pp.moved).c_str());
    }
  }

  // Once settled: every row final, every hold resolved, and each user's and merchant's balance
  // what the final rows say moved; the provider's books agree with the rows.
  void check_settled() {
    const auto all = rows();
    std::map<u128, lp::order> by_id;
    for (const auto& r : all) by_id[r.id] = r;
    std::map<u128, __int128> expected, captured_of, refunded_of; // by account; by order
    for (u128 id : users) expected[id] = __int128(funding);
    for (u128 id : merchants) expected[id] = 0;
    auto journal_has = [&](const lp::order& r, const char* step) {
      std::vector<ks::journal_entry> j;
      REQUIRE(pstore->journal_by_row(r.id, j).ok());
      for (const auto& e : j)
        if (std::strncmp(e.step, step, sizeof e.step) == 0) return true;
      return false;
    };
    for (const auto& r : all) {
      const auto s = order_state(r.state);
      expect(final_state(r), describe(r) + ": not final after the run settled");
      const bool completed = s == order_state::completed;
      const __int128 amount = __int128(r.amount), captured = __int128(r.amount_captured), fee = __int128(r.fee);
      switch (kind(r.kind)) {
        case kind::topup:
          if (completed) expected[r.account_id] += captured - fee;
          break;
        case kind::withdrawal:
          if (completed && journal_has(r, "book_late")) expected[r.account_id] -= captured;
          else if (completed || (s == order_state::in_review && r.result == uint32_t(payment_result::amount_mismatch)))
            expected[r.account_id] -= amount + fee;
          break;
        case kind::transfer:
          if (completed) {
            expected[r.account_id] -= amount + fee;
            expected[r.counterparty_id] += amount;
          }
          break;
        case kind::pay: {
          // amount_captured is set once the capture is booked to the merchant
          expected[r.counterparty_id] += captured;
          if (r.source == uint16_t(lp::source::balance)) expected[r.account_id] -= captured;
          if (r.source == uint16_t(lp::source::provider) && journal_has(r, "duplicate") && journal_has(r, "book_topup"))
            expected[r.account_id] += __int128(r.provider_amount); // a duplicate kept on the balance
          captured_of[r.parent_id] += captured;
          expect(r.amount_refund_pending == 0, describe(r) + ": a refund still pending");
          break;
        }
        case kind::refund:
          // what it gave back: what the provider confirmed, never more than asked
          if (completed) refunded_of[r.parent_id] += captured;
          if (completed) {
            const lp::order& parent = by_id[r.parent_id];
            expected[parent.account_id] -= captured;
            if (r.source == uint16_t(lp::source::balance)) expected[r.account_id] += captured;
          }
          break;
        case kind::create_order:
          expect(r.amount_refund_pending == 0, describe(r) + ": a refund still pending");
          break;
        default: break;
      }
    }
    // An order counts what its items captured and refunded.
    for (const auto& r : all) {
      if (r.kind != uint16_t(kind::create_order)) continue;
      expect(__int128(r.amount_captured) == captured_of[r.id],
             describe(r) + ": its pay items captured " + signed_string(captured_of[r.id]));
      expect(__int128(r.amount_refunded) == refunded_of[r.id],
             describe(r) + ": its refunds add up to " + signed_string(refunded_of[r.id]));
    }
    const auto accounts = accounts_now();
    for (const auto& [id, want] : expected) {
      REQUIRE(accounts.count(id));
      const auto& a = accounts.at(id);
      const std::string name = "account " + to_string_u128(id);
      expect(a.debits_pending == 0 && a.credits_pending == 0, name + ": a hold is left pending");
      const __int128 balance = __int128(a.credits_posted) - __int128(a.debits_posted);
      expect(balance == want, name + ": balance " + signed_string(balance) + " but the rows say " + signed_string(want));
      if (balance != want && std::getenv("KASSA_SIM_DUMP")) dump(id);
    }
    // The provider: what it took in for a topup or a pay item is what the row says stayed,
    // the rest was given back; a payout moved only for a withdrawal that went through.
    std::set<u128> in_review_refunds; // pay items with a refund in review
    for (const auto& r : all)
      if (r.kind == uint16_t(kind::refund) && order_state(r.state) == order_state::in_review)
        in_review_refunds.insert(r.counterparty_id);
    for (const auto& r : all) {
      if (r.kind != uint16_t(kind::topup) && r.kind != uint16_t(kind::withdrawal) &&
          !(r.kind == uint16_t(kind::pay) && r.source == uint16_t(lp::source::provider)))
        continue;
      const u128 id = pstore->ids().id(r.sequence);
      __int128 net = 0;
      bool found = false;
      for (const auto& b : w->providers) {
        auto it = b.payments.find(id);
        if (it == b.payments.end()) continue;
        found = true;
        net += __int128(it->second.moved);
        for (const auto& [rid, pp] : b.payments)
          if (pp.kind == call_kind::refund && pp.refund_of == id) net -= __int128(pp.moved);
      }
      const auto s = order_state(r.state);
      if (s == order_state::in_review) continue; // a case is open: a person settles it
      if (in_review_refunds.count(r.id)) continue; // likewise for a refund of it (in suspense)
      __int128 want = 0;
      if (r.kind == uint16_t(kind::withdrawal)) want = s == order_state::completed ? __int128(r.provider_amount) : 0;
      else if (r.kind == uint16_t(kind::topup)) want = s == order_state::completed ? __int128(r.amount_captured) : 0;
      else if (r.items == 1) want = __int128(r.amount_captured) - __int128(r.amount_refunded);
      else if (s != order_state::failed && s != order_state::refunded) continue;
      expect(net == want && (found || want == 0),
             describe(r) + ": the provider's books say " + signed_string(net) + " moved for it, the row " + signed_string(want));
      if (!(net == want && (found || want == 0)) && std::getenv("KASSA_SIM_DUMP")) {
        dump(r.account_id);
        for (size_t p = 0; p < providers_n; ++p)
          for (const auto& [pid, pp] : w->providers[p].payments)
            std::printf("  provider %zu: %s/%s kind %d status %d moved %s refund_of %s\n", p, to_string_u128(u128_hi(pid)).c_str(),
                        to_string_u128(u128_lo(pid)).c_str(), int(pp.kind), int(pp.status), to_string_u128(pp.moved).c_str(),
                        to_string_u128(u128_lo(pp.refund_of)).c_str());
      }
    }
    for (const auto& p : w->problems) expect(false, p);
  }
};

} // namespace

TEST_CASE("the payment core under random faults: keys apply once, refunds stay within captures, the books balance", "[sim][payments]") {
  const uint64_t seed = test::seed("payments sim");
  const int runs = 300;
  std::mt19937_64 seeds(seed);
  for (int run = 0; run < runs; ++run) {
    const uint64_t run_seed = seeds();
    INFO("run " << run << " of seed " << seed << " (run seed " << run_seed << ")");
    sim s(run_seed);
    const int steps = 1500 + int(s.w->below(1500));
    // a crash in 40 % of the runs, a second one in a quarter of those
    std::set<int> crash_at;
    if (s.crashes && s.w->chance(40)) {
      crash_at.insert(int(s.w->below(uint64_t(steps))));
      if (s.w->chance(25)) crash_at.insert(int(s.w->below(uint64_t(steps))));
    }
    for (int i = 0; i < steps; ++i) {
      s.step(true);
      if (crash_at.count(i)) s.crash_and_restart();
      s.check_books_seen(); // the shards' books as read after each commit (release_commit)
      if (i % 100 == 99) s.check_rows();
    }
    s.settle();
    // A write that failed leaves its row as last durable: kassad resumes it at the next start.
    bool unfinished = false;
    for (const auto& r : s.rows()) unfinished |= !final_state(r);
    if (unfinished) {
      s.crash_and_restart();
      s.settle();
    }
    s.check_rows();
    s.check_settled();
    s.check_bookings();
    // the default flows hold before every payout and refund: the provider step's guard never fires
    for (const auto& r : s.rows())
      s.expect(r.result != uint32_t(payment_result::funds_not_held), describe(r) + ": funds_not_held");
    std::string all;
    for (const auto& v : s.violations) all += "\n  " + v;
    if (!s.violations.empty() && std::getenv("KASSA_SIM_DUMP"))
      for (const auto& e : s.errors) std::printf("  error: %s\n", e.c_str()); // what the core logged
    INFO("restarts " << s.restarts << ", failed payments writes " << s.write_failures << ", failed group commits "
                     << s.commit_failures << all);
    REQUIRE(s.violations.empty());
  }
}

TEST_CASE("beyond payments.orders_inflight_max a command is answered busy and does nothing", "[sim][payments]") {
  sim s(test::seed("inflight limit"), [](config::payments_config& c) { c.orders_inflight_max = 2; });
  s.write_fail_pct = s.commit_fail_pct = 0;
  s.w->credentials_fail = false;
  s.settle(); // booted
  auto send = [&](std::vector<lp::payment_command> cs) {
    s.replies->replies.clear();
    submit_payments_request req;
    req.ctx.trace_id = 77;
    req.commands = std::move(cs);
    caf::anon_send(s.client_actor, s.gateway, std::move(req));
    s.settle();
    REQUIRE(s.replies->replies.size() == 1);
    REQUIRE(s.replies->replies[0].status == outcome::ok);
    return s.replies->replies[0].replies;
  };
  auto command = [&](kind k, u128 order, u128 amount) {
    lp::payment_command c{};
    c.key = ++s.next_id;
    c.order_id = order;
    c.kind = uint16_t(k);
    c.amount = amount;
    c.account_id = k == kind::create_order ? s.merchants[0] : s.users[0];
    if (k == kind::transfer) c.counterparty_id = s.users[1];
    if (k == kind::pay) c.source = uint16_t(lp::source::balance);
    else c.ledger = usd;
    return c;
  };
  auto results = [](const std::vector<lp::payment_reply>& rs) {
    std::map<payment_result, int> n;
    for (const auto& r : rs) ++n[payment_result(r.result)];
    return n;
  };
  // Six transfers in one request: all are taken before any row is written, so the limit
  // counts commands being written, not only flows running.
  std::vector<lp::payment_command> transfers;
  for (int i = 0; i < 6; ++i) transfers.push_back(command(kind::transfer, ++s.next_id, 10));
  auto n = results(send(transfers));
  CHECK(n[payment_result::ok] == 2);
  CHECK(n[payment_result::busy] == 4);
  CHECK(s.rows().size() == 2); // busy ones left nothing: no row, no key
  // Pay items handed to their order count too.
  const u128 order_id = ++s.next_id;
  REQUIRE(results(send({command(kind::create_order, order_id, 1000)}))[payment_result::ok] == 1);
  std::vector<lp::payment_command> pays;
  for (int i = 0; i < 5; ++i) pays.push_back(command(kind::pay, order_id, 10));
  n = results(send(pays));
  CHECK(n[payment_result::ok] == 2);
  CHECK(n[payment_result::busy] == 3);
  // Sent again once the others are done, the refused ones go through (their keys were free).
  std::vector<lp::payment_command> again;
  for (const auto& c : transfers) again.push_back(c);
  n = results(send({again[2], again[3]}));
  CHECK(n[payment_result::ok] == 2);
  // A refund split in parts runs a flow per part: one that needs more parts than there are
  // places left is refused whole and leaves nothing; one that fits goes through.
  REQUIRE(results(send({command(kind::pay, order_id, 10)}))[payment_result::ok] == 1); // three items of 10
  const size_t rows_before = s.rows().size();
  lp::payment_command refund = command(kind::refund, order_id, 30);
  refund.account_id = 0;
  refund.ledger = 0;
  CHECK(results(send({refund}))[payment_result::busy] == 1); // three parts, two places
  CHECK(s.rows().size() == rows_before);
  refund = command(kind::refund, order_id, 20);
  refund.account_id = 0;
  refund.ledger = 0;
  CHECK(results(send({refund}))[payment_result::ok] == 1); // two parts
  CHECK(s.rows().size() == rows_before + 2);
  s.check_rows();
  CHECK(s.violations.empty());
}

TEST_CASE("a payout whose flow placed no hold never reaches the provider: the withdrawal fails with funds_not_held",
          "[sim][payments]") {
  // A withdrawal flow without hold_funds, as kassad refuses it at boot (the flow check); the
  // provider step is the last guard should one run anyway.
  sim s(test::seed("payout without hold"), [](config::payments_config& c) {
    std::vector<config::flow_step> unsafe;
    for (const auto& step : c.flows.withdrawal)
      if (step.step != "hold_funds" && step.step != "fetch_credentials") unsafe.push_back(step);
    c.flows.withdrawal = unsafe;
  });
  s.write_fail_pct = s.commit_fail_pct = 0;
  s.w->credentials_fail = false;
  s.settle(); // booted
  auto withdraw = [&] {
    lp::payment_command c{};
    c.key = ++s.next_id;
    c.order_id = ++s.next_id;
    c.kind = uint16_t(kind::withdrawal);
    c.account_id = s.users[0];
    c.amount = 5000;
    c.ledger = usd;
    s.replies->replies.clear();
    submit_payments_request req;
    req.ctx.trace_id = 78;
    req.commands = {c};
    caf::anon_send(s.client_actor, s.gateway, std::move(req));
    s.settle();
    REQUIRE(s.replies->replies.size() == 1);
    REQUIRE(s.replies->replies[0].replies.size() == 1);
    return std::make_pair(c.order_id, s.replies->replies[0].replies[0]);
  };
  // the channels report themselves down now and then: routing refuses the payment at once
  auto [order_id, reply] = withdraw();
  for (int attempt = 0; attempt < 20 && reply.result == uint32_t(payment_result::no_channel_available); ++attempt)
    std::tie(order_id, reply) = withdraw();
  CHECK(reply.result == uint32_t(payment_result::funds_not_held));
  lp::order row{};
  for (const auto& r : s.rows())
    if (r.id == order_id) row = r;
  CHECK(row.state == uint16_t(order_state::failed));
  CHECK(row.result == uint32_t(payment_result::funds_not_held));
  for (const auto& books : s.w->providers) CHECK(books.payments.empty()); // nothing was sent
  bool logged = false;
  for (const auto& e : s.errors) logged = logged || e.find("with no hold placed before it (hold_funds): not sent") != std::string::npos;
  CHECK(logged);
  s.check_settled(); // the user's balance is untouched
  CHECK(s.violations.empty());
}

TEST_CASE("a refund through a provider whose flow placed no hold never reaches the provider: funds_not_held",
          "[sim][payments]") {
  sim s(test::seed("refund without hold"), [](config::payments_config& c) {
    std::vector<config::flow_step> unsafe; // refused at boot by the flow check (refund_bounded)
    for (const auto& step : c.flows.refund)
      if (step.step != "hold_funds" && step.step != "fetch_credentials") unsafe.push_back(step);
    c.flows.refund = unsafe;
  });
  s.write_fail_pct = s.commit_fail_pct = 0;
  s.w->credentials_fail = false;
  s.settle(); // booted
  auto send = [&](kind k, u128 order_id, u128 account, u128 amount) {
    lp::payment_command c{};
    c.key = ++s.next_id;
    c.order_id = order_id;
    c.kind = uint16_t(k);
    c.account_id = account;
    c.amount = amount;
    if (k == kind::create_order) c.ledger = usd;
    if (k == kind::pay) c.source = uint16_t(lp::source::provider);
    s.replies->replies.clear();
    submit_payments_request req;
    req.ctx.trace_id = 79;
    req.commands = {c};
    caf::anon_send(s.client_actor, s.gateway, std::move(req));
    s.settle();
    REQUIRE(s.replies->replies.size() == 1);
    REQUIRE(s.replies->replies[0].replies.size() == 1);
    return s.replies->replies[0].replies[0];
  };
  // an order paid in full through a provider (the simulated provider declines now and then)
  u128 paid = 0;
  for (int attempt = 0; attempt < 30 && paid == 0; ++attempt) {
    const u128 order_id = ++s.next_id;
    REQUIRE(send(kind::create_order, order_id, s.merchants[0], 1000).result == uint32_t(payment_result::ok));
    const auto r = send(kind::pay, order_id, s.users[0], 1000);
    if (r.result == uint32_t(payment_result::ok) && r.state == uint16_t(order_state::completed)) paid = order_id;
  }
  REQUIRE(paid != 0);
  auto refunds_sent = [&] {
    size_t n = 0;
    for (const auto& books : s.w->providers)
      for (const auto& [id, pp] : books.payments) n += pp.kind == call_kind::refund;
    return n;
  };
  const size_t before = refunds_sent(); // partial payments given back, duplicates
  // the item's channel reports itself down now and then: routing refuses the refund at once
  auto r = send(kind::refund, paid, 0, 500);
  for (int attempt = 0; attempt < 20 && r.result == uint32_t(payment_result::no_channel_available); ++attempt)
    r = send(kind::refund, paid, 0, 500);
  CHECK(r.result == uint32_t(payment_result::funds_not_held));
  CHECK(refunds_sent() == before); // nothing was sent
  s.check_settled(); // the merchant keeps what it was paid
  CHECK(s.violations.empty());
}

// --- failover and stray messages, step by step -------------------------------------------------

namespace {

// A simulation without random faults, booted, whose channels both say they are healthy.
std::unique_ptr<sim> calm(const char* what, std::function<void(config::payments_config&)> tweak = {}) {
  auto s = std::make_unique<sim>(test::seed(what), std::move(tweak));
  s->write_fail_pct = s->commit_fail_pct = 0;
  s->w->credentials_fail = false;
  s->w->health_down_pct = 0;
  s->settle();
  return s;
}

lp::payment_command submit_topup(sim& s, u128 amount) {
  lp::payment_command c{};
  c.key = ++s.next_id;
  c.order_id = ++s.next_id;
  c.kind = uint16_t(kind::topup);
  c.ledger = usd;
  c.account_id = s.users[0];
  c.amount = amount;
  submit_payments_request req;
  req.ctx.trace_id = c.key;
  req.commands = {c};
  caf::anon_send(s.client_actor, s.gateway, std::move(req));
  return c;
}

lp::order row_of(sim& s, u128 id) {
  lp::order row{};
  bool found = false;
  REQUIRE(s.pstore->get_row(id, row, found).ok());
  REQUIRE(found);
  return row;
}

std::string provider_of(const lp::order& row) { return std::string(row.provider, strnlen(row.provider, sizeof row.provider)); }

held_call take_call(sim& s) {
  REQUIRE(s.w->calls.size() == 1);
  held_call h = std::move(s.w->calls.front());
  s.w->calls.clear();
  return h;
}

void refuse(const held_call& h, call_status how, bool not_sent) {
  call_result cr;
  cr.status = how;
  cr.payment_id = h.call.payment_id;
  cr.not_sent = not_sent;
  cr.detail = "injected: refused";
  answer(h.by, h.rp, cr);
}

// The provider takes the held call whole and says so.
// The provider takes the held call, moves `moved` and says `status`.
void settle_call(sim& s, const held_call& h, call_status status, u128 moved) {
  provider_payment pp;
  pp.kind = h.call.kind;
  pp.asked = h.call.amount;
  pp.refund_of = h.call.refund_of;
  pp.status = status;
  pp.moved = moved;
  s.w->providers[h.provider].payments[h.call.payment_id] = pp;
  answer(h.by, h.rp, s.w->result_of(pp, h.call.payment_id));
}

void succeed(sim& s, const held_call& h) { settle_call(s, h, call_status::succeeded, h.call.amount); }

bool journal_has(sim& s, const lp::order& row, const char* step) {
  std::vector<ks::journal_entry> j;
  REQUIRE(s.pstore->journal_by_row(row.id, j).ok());
  for (const auto& e : j)
    if (std::strncmp(e.step, step, sizeof e.step) == 0) return true;
  return false;
}

} // namespace

TEST_CASE("a top-up its channel refuses unsent goes to the next channel and is booked once", "[sim][payments][failover]") {
  for (const auto how : {call_status::rejected, call_status::failed}) {
    INFO((how == call_status::rejected ? "breaker open" : "every connection refused"));
    auto s = calm("failover");
    const auto c = submit_topup(*s, 1000);
    s->pump();
    held_call first = take_call(*s);
    CHECK(first.provider == 0); // alpha: the best priority
    refuse(first, how, true);
    s->pump();
    held_call second = take_call(*s);
    CHECK(second.provider == 1);
    CHECK(second.call.payment_id == first.call.payment_id);
    CHECK(provider_of(row_of(*s, c.order_id)) == "beta"); // durable before beta hears of it
    succeed(*s, second);
    s->settle();
    const auto row = row_of(*s, c.order_id);
    CHECK(order_state(row.state) == order_state::completed);
    CHECK(provider_of(row) == "beta");
    CHECK(journal_has(*s, row, "failover"));
    CHECK(s->w->providers[0].payments.empty());
    CHECK(s->w->providers[1].payments.size() == 1);
    s->check_settled(); // the user's balance: the top-up once, less its fee
    for (const auto& v : s->violations) UNSCOPED_INFO(v);
    CHECK(s->violations.empty());
  }
}

TEST_CASE("a payment that failed over and was cut short by a crash resumes on its new channel", "[sim][payments][failover]") {
  auto s = calm("failover and restart");
  const auto c = submit_topup(*s, 1000);
  s->pump();
  refuse(take_call(*s), call_status::rejected, true);
  s->pump();
  held_call lost = take_call(*s); // on its way to beta when kassa stops
  CHECK(lost.provider == 1);
  s->crash_and_restart();
  s->pump();
  // the resumed flow asks beta (the row names it), never alpha
  for (int i = 0; i < 10 && !s->w->queries.empty(); ++i) {
    CHECK(s->w->queries.front().provider == 1);
    s->answer_query(true);
    s->pump();
  }
  held_call again = take_call(*s);
  CHECK(again.provider == 1);
  CHECK(again.call.payment_id == lost.call.payment_id);
  succeed(*s, again);
  s->settle();
  const auto row = row_of(*s, c.order_id);
  CHECK(order_state(row.state) == order_state::completed);
  CHECK(provider_of(row) == "beta");
  CHECK(s->w->providers[0].payments.empty());
  s->check_settled();
  CHECK(s->violations.empty());
}

TEST_CASE("after a timeout or an unknown outcome a payment is never sent to another channel", "[sim][payments][failover]") {
  SECTION("unknown: the provider took it, the answer was lost") {
    auto s = calm("no failover after unknown");
    const auto c = submit_topup(*s, 1000);
    s->pump();
    held_call first = take_call(*s);
    s->w->apply(first.provider, first.call);
    refuse(first, call_status::unknown, false);
    s->pump();
    CHECK(s->w->calls.empty()); // parked: the channel is asked, no other one
    s->settle();
    const auto row = row_of(*s, c.order_id);
    CHECK(provider_of(row) == "alpha");
    CHECK(s->w->providers[1].payments.empty());
    s->check_settled();
    CHECK(s->violations.empty());
  }
  SECTION("failed with an answer that may have come after the provider acted (a 5xx)") {
    auto s = calm("no failover after a 5xx");
    const auto c = submit_topup(*s, 1000);
    s->pump();
    refuse(take_call(*s), call_status::failed, false);
    s->settle();
    const auto row = row_of(*s, c.order_id);
    CHECK(order_state(row.state) == order_state::failed);
    CHECK(s->w->providers[1].payments.empty());
    s->check_settled();
    CHECK(s->violations.empty());
  }
  SECTION("the step timed out: a refusal that comes later starts nothing") {
    auto s = calm("no failover after a timeout");
    const auto c = submit_topup(*s, 1000);
    s->pump();
    held_call first = take_call(*s);
    // every timer until the flow parks (the provider step's timeout makes the outcome unknown)
    for (int i = 0; i < 50 && order_state(row_of(*s, c.order_id).state) != order_state::unknown; ++i) {
      s->sched->trigger_timeout();
      s->pump();
    }
    REQUIRE(order_state(row_of(*s, c.order_id).state) == order_state::unknown);
    refuse(first, call_status::rejected, true);
    s->pump();
    CHECK(s->w->calls.empty());
    s->settle();
    CHECK(provider_of(row_of(*s, c.order_id)) == "alpha");
    CHECK(s->w->providers[1].payments.empty());
    s->check_settled();
    CHECK(s->violations.empty());
  }
}

TEST_CASE("a payment every channel refuses fails once each, without going back, and moves nothing", "[sim][payments][failover]") {
  auto s = calm("failover exhausted");
  const auto c = submit_topup(*s, 1000);
  s->pump();
  held_call first = take_call(*s);
  refuse(first, call_status::rejected, true);
  s->pump();
  held_call second = take_call(*s);
  CHECK(second.provider == 1);
  refuse(second, call_status::failed, true);
  s->pump();
  CHECK(s->w->calls.empty());
  s->settle();
  const auto row = row_of(*s, c.order_id);
  CHECK(order_state(row.state) == order_state::failed);
  CHECK(payment_result(row.result) == payment_result::provider_failed);
  s->check_settled();
  CHECK(s->violations.empty());
}

namespace {

// A stranger to the payment core: sends what it is told to whom it is told; its requests'
// answers (values or errors) are counted.
struct stranger_log {
  int asked = 0, answered = 0;
};
struct junk {
  caf::actor to;
  caf::message what;
  bool request = false;
};

} // namespace

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(junk)

namespace {

caf::behavior stranger(caf::event_based_actor* self, std::shared_ptr<stranger_log> log) {
  self->set_default_handler(caf::drop); // whatever comes back
  self->set_error_handler([](caf::error&) {});
  return {
      [self, log](junk& j) {
        if (!j.request) {
          self->send(j.to, std::move(j.what));
          return;
        }
        ++log->asked;
        self->request(j.to, caf::infinite, std::move(j.what))
            .then([log](int) { ++log->answered; }, [log](caf::error&) { ++log->answered; });
      },
  };
}

// Asks `to` once; the answer lands in the returned slot.
template <class Reply, class Request>
std::shared_ptr<std::optional<Reply>> ask_once(sim& s, caf::actor to, Request r) {
  auto out = std::make_shared<std::optional<Reply>>();
  s.sys->spawn(
      [](caf::event_based_actor* self, caf::actor to, Request r, std::shared_ptr<std::optional<Reply>> out) -> caf::behavior {
        self->request(to, caf::infinite, std::move(r))
            .then(
                [self, out](Reply& x) {
                  *out = std::move(x);
                  self->quit();
                },
                [self](caf::error&) { self->quit(); });
        return {[](int) {}};
      },
      to, std::move(r), out);
  return out;
}

} // namespace

TEST_CASE("a flow that stops before its end lets go of its slot and its order; its row runs again at the next start", "[sim][payments][stray]") {
  auto s = std::make_unique<sim>(test::seed("flow stops"), [](config::payments_config& c) { c.orders_inflight_max = 1; });
  s->write_fail_pct = s->commit_fail_pct = 0;
  s->w->credentials_fail = false;
  s->w->health_down_pct = 0;
  s->settle();
  auto kill_flows = [&] {
    for (const auto& [id, a] : s->gen->seen) {
      auto* local = dynamic_cast<caf::local_actor*>(a->get());
      if (local && std::string(local->name()) == "kassa.flow") caf::anon_send_exit(caf::actor_cast<caf::actor>(a), caf::exit_reason::kill);
    }
    s->pump();
  };
  // A top-up's flow stops while its provider call waits: the one slot is free again.
  const auto first = submit_topup(*s, 100);
  s->pump();
  REQUIRE(s->w->calls.size() == 1);
  kill_flows();
  s->w->calls.clear(); // its answer would reach nobody
  s->replies->replies.clear();
  const auto second = submit_topup(*s, 200);
  s->pump();
  REQUIRE(s->w->calls.size() == 1);
  succeed(*s, take_call(*s));
  s->pump();
  REQUIRE(s->replies->replies.size() == 1);
  CHECK(payment_result(s->replies->replies[0].replies.at(0).result) == payment_result::ok);
  // A pay item's flow stops: the slot is free again and its order takes the next pay item (the
  // stopped one still counts against what is left to pay: it runs again at the next start).
  lp::payment_command order{};
  order.key = ++s->next_id;
  order.order_id = ++s->next_id;
  order.kind = uint16_t(kind::create_order);
  order.ledger = usd;
  order.account_id = s->merchants[0];
  order.amount = 1000;
  lp::payment_command item{};
  item.key = ++s->next_id;
  item.order_id = order.order_id;
  item.kind = uint16_t(kind::pay);
  item.account_id = s->users[1];
  item.amount = 400;
  item.source = uint16_t(lp::source::provider);
  lp::payment_command next = item;
  next.key = ++s->next_id;
  next.amount = 600;
  for (const auto& c : {order, item}) {
    submit_payments_request req;
    req.commands = {c};
    caf::anon_send(s->client_actor, s->gateway, std::move(req));
    s->pump();
  }
  REQUIRE(s->w->calls.size() == 1);
  kill_flows();
  s->w->calls.clear();
  s->replies->replies.clear();
  submit_payments_request req;
  req.commands = {next};
  caf::anon_send(s->client_actor, s->gateway, std::move(req));
  s->pump();
  REQUIRE(s->w->calls.size() == 1); // the slot and the order took it
  succeed(*s, take_call(*s));
  s->settle();
  REQUIRE(s->replies->replies.size() == 1);
  CHECK(payment_result(s->replies->replies[0].replies.at(0).result) == payment_result::ok);
  // the rows the stopped flows left run again at the next start
  CHECK_FALSE(final_state(row_of(*s, first.order_id)));
  CHECK_FALSE(final_state(row_of(*s, item.key)));
  s->crash_and_restart();
  s->settle();
  CHECK(final_state(row_of(*s, first.order_id)));
  CHECK(final_state(row_of(*s, item.key)));
  CHECK(final_state(row_of(*s, second.order_id)));
  s->check_settled();
  for (const auto& v : s->violations) UNSCOPED_INFO(v);
  CHECK(s->violations.empty());
}

TEST_CASE("late, stray and unexpected messages never stop or wedge the gateway, orders, flows or channels", "[sim][payments][stray]") {
  auto s = calm("stray messages");
  std::mt19937_64 rng(s->w->rng());
  using pay::flow_event;
  using pay::flow_report;
  // A top-up the provider declines, then says succeeded after all, again and again: a late
  // flow books it while the same callback keeps coming.
  const auto late = submit_topup(*s, 700);
  s->pump();
  held_call declined = take_call(*s);
  provider_payment pp;
  pp.kind = call_kind::charge;
  pp.asked = 700;
  pp.status = call_status::declined;
  answer(declined.by, declined.rp, s->w->result_of(pp, declined.call.payment_id));
  s->pump();
  REQUIRE(order_state(row_of(*s, late.order_id).state) == order_state::failed);
  pp.status = call_status::succeeded;
  pp.moved = 700;
  s->w->providers[declined.provider].payments[declined.call.payment_id] = pp;
  for (int i = 0; i < 3; ++i) s->w->event(declined.provider, declined.call.payment_id, pp);
  // An order with a pay item whose provider call waits: an order actor and a flow are alive.
  lp::payment_command order{};
  order.key = ++s->next_id;
  order.order_id = ++s->next_id;
  order.kind = uint16_t(kind::create_order);
  order.ledger = usd;
  order.account_id = s->merchants[0];
  order.amount = 5000;
  lp::payment_command item{};
  item.key = ++s->next_id;
  item.order_id = order.order_id;
  item.kind = uint16_t(kind::pay);
  item.account_id = s->users[1];
  item.amount = 1000;
  item.source = uint16_t(lp::source::provider);
  for (const auto& c : {order, item}) {
    submit_payments_request req;
    req.commands = {c};
    caf::anon_send(s->client_actor, s->gateway, std::move(req));
    s->pump();
  }
  REQUIRE(!s->w->calls.empty()); // the pay item's call (and a late success's refund, by policy)
  std::vector<caf::actor> targets{s->gateway};
  for (const auto& [id, a] : s->gen->seen) {
    auto* local = dynamic_cast<caf::local_actor*>(a->get());
    const std::string name = local ? local->name() : "";
    if (name == "kassa.order" || name == "kassa.flow") targets.push_back(caf::actor_cast<caf::actor>(a));
  }
  REQUIRE(targets.size() >= 3); // the gateway, the order and the pay item's flow
  channel_options co;
  co.name = "gamma";
  co.port = 1; // nobody listens: nothing here needs the provider
  co.events_poll_ms = 0;
  targets.push_back(spawn_channel(*s->sys, co));
  // The flood: random atoms, kassa's own timer atoms from a stranger, replies nobody asked for,
  // errors as messages, callbacks again, reports from no flow, some of them as requests.
  auto log = std::make_shared<stranger_log>();
  auto x = s->sys->spawn(stranger, log);
  const u128 item_id = item.key;
  auto some = [&](size_t k) -> caf::message {
    lp::order row{};
    row.id = rng() % 2 ? item_id : u128(rng());
    row.sequence = rng() % 8;
    row.kind = uint16_t(kind::pay);
    row.state = uint16_t(order_state::completed);
    provider_event ev;
    ev.provider = provider_names[declined.provider];
    ev.payment_id = rng() % 2 ? declined.call.payment_id : make_u128(rng(), rng()); // the truth, or no payment
    ev.status = call_status::succeeded;
    ev.amount = 700;
    switch (k % 14) {
      case 0: return caf::make_message(static_cast<caf::atom_value>(rng() >> 4));
      case 1: return caf::make_message(pay::step_timeout_atom::value, uint64_t(rng() % 4), uint64_t(rng() % 8));
      case 2: return caf::make_message(pay::flow_down_atom::value);
      case 3: return caf::make_message(pay::query_atom::value);
      case 4: return caf::make_message(pay::timer_atom::value, uint64_t(rng() % 8));
      case 5: return caf::make_message(caf::atom("ch_retry"), uint64_t(rng() % 8));
      case 6: return caf::make_message(call_result{});
      case 7: return caf::make_message(payments_written{});
      case 8: return caf::make_message(health_reply{});
      case 9: return caf::make_message(caf::make_error(caf::sec::request_timeout));
      case 10: return caf::make_message(ev);
      case 11: return caf::make_message(flow_event{ev});
      case 12: return caf::make_message(flow_report{row, payment_result::ok, true, {}});
      default: return caf::make_message(pay::hold_atom::value);
    }
  };
  for (int i = 0; i < 2000; ++i) {
    const caf::actor& to = targets[rng() % targets.size()];
    const size_t k = rng();
    caf::anon_send(x, junk{to, some(k), rng() % 8 == 0 && k % 14 != 9}); // an error is never a request
    if (i % 50 == 0) s->pump();
  }
  s->pump();
  CHECK(log->answered == log->asked); // no request of the stranger waits for ever
  // Everyone still serves: the late success is booked, the waiting pay item completes, a new
  // top-up completes, lookups answer, and the channel reports its health.
  s->settle();
  CHECK(row_of(*s, late.order_id).provider_amount == 700); // the late success was taken in hand
  CHECK(final_state(row_of(*s, item.key)));
  s->replies->replies.clear();
  const auto next = submit_topup(*s, 300);
  s->settle();
  REQUIRE(s->replies->replies.size() == 1);
  CHECK(s->replies->replies[0].status == outcome::ok);
  CHECK(final_state(row_of(*s, next.order_id)));
  auto found = ask_once<orders_reply>(*s, s->gateway, lookup_orders_request{{}, {late.order_id, order.order_id}});
  auto health = ask_once<health_reply>(*s, targets.back(), health_request{});
  s->pump();
  REQUIRE(found->has_value());
  CHECK((*found)->status == outcome::ok);
  CHECK((*found)->orders.size() == 2);
  REQUIRE(health->has_value());
  CHECK((*health)->provider == "gamma");
  s->check_settled();
  for (const auto& v : s->violations) UNSCOPED_INFO(v);
  CHECK(s->violations.empty());
  caf::anon_send_exit(targets.back(), caf::exit_reason::kill);
  caf::anon_send_exit(x, caf::exit_reason::kill);
}

// --- what each provider outcome books, and what an order's items show ----------------------------

namespace {

// Sends one command; the core runs until it waits on a provider (or is done).
void send_one(sim& s, const lp::payment_command& c) {
  submit_payments_request req;
  req.ctx.trace_id = c.key;
  req.commands = {c};
  caf::anon_send(s.client_actor, s.gateway, std::move(req));
  s.pump();
}

lp::payment_reply last_reply(sim& s) {
  REQUIRE(!s.replies->replies.empty());
  REQUIRE(s.replies->replies.back().replies.size() == 1);
  return s.replies->replies.back().replies[0];
}

lp::payment_command order_command(sim& s, kind k, u128 order_id, u128 account, u128 amount,
                                  lp::source src = lp::source::none) {
  lp::payment_command c{};
  c.key = ++s.next_id;
  c.order_id = order_id;
  c.kind = uint16_t(k);
  c.account_id = k == kind::refund ? 0 : account;
  c.amount = amount;
  if (k != kind::pay && k != kind::refund) c.ledger = usd;
  c.source = uint16_t(src);
  return c;
}

// The provider answers the held call with `status`, having moved `moved`.
void provider_answers(sim& s, const held_call& h, call_status status, u128 moved) {
  provider_payment pp;
  pp.kind = h.call.kind;
  pp.asked = h.call.amount;
  pp.refund_of = h.call.refund_of;
  pp.status = status;
  pp.moved = moved;
  s.w->providers[h.provider].payments[h.call.payment_id] = pp;
  answer(h.by, h.rp, s.w->result_of(pp, h.call.payment_id));
}

// The provider makes the call it had declined after all (`moved`) and calls back.
void made_after_all(sim& s, const held_call& h, u128 moved, int callbacks = 1) {
  provider_payment pp;
  pp.kind = h.call.kind;
  pp.asked = h.call.amount;
  pp.moved = moved;
  pp.refund_of = h.call.refund_of;
  pp.status = call_status::succeeded;
  s.w->providers[h.provider].payments[h.call.payment_id] = pp;
  for (int i = 0; i < callbacks; ++i) {
    s.w->event(h.provider, h.call.payment_id, pp);
    s.settle();
  }
}

void declined_then_made(sim& s, const held_call& h, u128 moved, int callbacks = 1) {
  refuse(h, call_status::declined, false);
  s.settle();
  made_after_all(s, h, moved, callbacks);
}

// An order of `amount` paid in full through a provider; returns the order id and the pay item.
std::pair<u128, lp::payment_command> paid_order(sim& s, u128 amount) {
  const u128 order_id = ++s.next_id;
  send_one(s, order_command(s, kind::create_order, order_id, s.merchants[0], amount));
  REQUIRE(last_reply(s).result == uint32_t(payment_result::ok));
  const auto pay = order_command(s, kind::pay, order_id, s.users[0], amount, lp::source::provider);
  send_one(s, pay);
  succeed(s, take_call(s));
  s.settle();
  REQUIRE(order_state(row_of(s, order_id).state) == order_state::completed);
  return {order_id, pay};
}

u128 journal_amount(sim& s, const lp::order& row, const char* step) {
  std::vector<ks::journal_entry> j;
  REQUIRE(s.pstore->journal_by_row(row.id, j).ok());
  u128 sum = 0;
  for (const auto& e : j)
    if (std::strncmp(e.step, step, sizeof e.step) == 0) sum += e.amount;
  return sum;
}

// The general ledger's customer funds as the accounting actor derives them from the journal
// (ledger/payments/gl.hpp): what kassa owes its users and merchants, net.
__int128 gl_customer_funds(sim& s) {
  __int128 net = 0;
  for (const auto& r : s.rows()) {
    std::vector<ks::journal_entry> j;
    REQUIRE(s.pstore->journal_by_row(r.id, j).ok());
    for (const auto& e : j) {
      const lp::gl_rule* rule = lp::gl_rule_for(e.step, e.kind);
      if (!rule) continue;
      if (rule->credit == lp::gl_account::customer_funds) net += __int128(e.amount);
      if (rule->debit == lp::gl_account::customer_funds) net -= __int128(e.amount);
    }
  }
  return net;
}

// The same in the ledger: every user's and merchant's balance, less what the bank funded.
__int128 ledger_customer_funds(sim& s) {
  __int128 net = 0;
  for (const auto& [id, a] : s.accounts_now()) {
    const bool customer = std::find(s.users.begin(), s.users.end(), id) != s.users.end() ||
                          std::find(s.merchants.begin(), s.merchants.end(), id) != s.merchants.end();
    if (customer) net += __int128(a.credits_posted) - __int128(a.debits_posted);
  }
  return net - __int128(funding) * __int128(s.users.size());
}

// Rows <-> ledger agree, the general ledger derived from the journal equals the ledger, and
// no invariant broke.
void books_agree(sim& s) {
  s.check_bookings();
  CHECK(gl_customer_funds(s) == ledger_customer_funds(s));
  for (const auto& v : s.violations) UNSCOPED_INFO(v);
  CHECK(s.violations.empty());
}

} // namespace

TEST_CASE("a failed payment shows no fee: not in its reply, its row, lookup_orders, its journal or a repeat",
          "[sim][payments][fees]") {
  auto s = calm("failed fee");
  lp::payment_command c{};
  c.key = ++s->next_id;
  c.order_id = ++s->next_id;
  c.kind = uint16_t(kind::withdrawal);
  c.ledger = usd;
  c.account_id = s->users[0];
  c.amount = 1000; // the withdrawal fee is 10: held with the amount, then released
  send_one(*s, c);
  held_call h = take_call(*s);
  CHECK(h.call.kind == call_kind::payout);
  refuse(h, call_status::declined, false);
  s->settle();
  const auto reply = last_reply(*s);
  CHECK(reply.result == uint32_t(payment_result::provider_declined));
  CHECK(reply.fee == 0);
  const auto row = row_of(*s, c.order_id);
  CHECK(order_state(row.state) == order_state::failed);
  CHECK(row.fee == 0);
  CHECK(journal_amount(*s, row, "book_fee") == 0);
  send_one(*s, c); // the same key again: exists, with the row's fee
  CHECK(last_reply(*s).result == uint32_t(payment_result::exists));
  CHECK(last_reply(*s).fee == 0);
  // a failed row written before failures cleared their fee is shown without it too
  lp::order legacy = row;
  legacy.id = ++s->next_id;
  legacy.key = ++s->next_id;
  legacy.sequence = 1'000'000;
  legacy.fee = 10;
  ks::payments_batch b;
  b.rows.push_back(legacy);
  REQUIRE(s->pstore->write(b).ok());
  auto found = ask_once<orders_reply>(*s, s->gateway, lookup_orders_request{{}, {c.order_id, legacy.id}});
  s->pump();
  REQUIRE(found->has_value());
  REQUIRE((*found)->orders.size() == 2);
  CHECK((*found)->orders[0].fee == 0);
  CHECK((*found)->orders[1].fee == 0);
  CHECK(lp::fee_charged(legacy) == 0);
  CHECK(lp::item_of(legacy, 0).fee == 0);
  CHECK(s->accounts_now().at(s->users[0]).debits_pending == 0);
  CHECK(s->violations.empty());
}

TEST_CASE("a compensating refund the provider confirms for less than asked books what it gave back; the rest stays "
          "in suspense with a case", "[sim][payments][compensation]") {
  auto sp = calm("compensation confirmed for less",
                 [](config::payments_config& c) { c.exceptions.partial_payment = config::partial_payment_policy::refund; });
  sim& s = *sp;
  const auto c = submit_topup(s, 1000);
  s.pump();
  settle_call(s, take_call(s), call_status::partial, 500); // the charge moves 500 of 1000: the policy gives it back
  s.pump();
  held_call refund = take_call(s);
  REQUIRE(refund.call.kind == call_kind::refund);
  REQUIRE(refund.call.amount == 500);
  settle_call(s, refund, call_status::succeeded, 400); // "succeeded", yet only 400 came back
  s.settle();
  const auto row = row_of(s, c.order_id);
  CHECK(journal_amount(s, row, "compensated") == 400);
  CHECK(journal_amount(s, row, "book_suspense_ou") == 400);
  CHECK(journal_has(s, row, "case_opened"));
  CHECK(order_state(row.state) == order_state::in_review);
}

TEST_CASE("a withdrawal a late success completes shows no fee: none was booked", "[sim][payments][fees][late]") {
  auto s = calm("late withdrawal fee");
  lp::payment_command c{};
  c.key = ++s->next_id;
  c.order_id = ++s->next_id;
  c.kind = uint16_t(kind::withdrawal);
  c.ledger = usd;
  c.account_id = s->users[0];
  c.amount = 1000;
  send_one(*s, c);
  declined_then_made(*s, take_call(*s), 1000); // paid out after all
  const auto row = row_of(*s, c.order_id);
  CHECK(order_state(row.state) == order_state::completed);
  CHECK(row.fee == 0);
  CHECK(journal_amount(*s, row, "book_late") == 1000);
  CHECK(journal_amount(*s, row, "book_fee") == 0);
  CHECK(s->accounts_now().at(s->users[0]).debits_posted == 1000); // the amount alone
  s->check_settled();
  books_agree(*s);
}

TEST_CASE("lookup_order_items lists an order's pay items and refunds with what moved, fee and provider id",
          "[sim][payments][items]") {
  auto s = calm("order items");
  const u128 order_id = ++s->next_id;
  send_one(*s, order_command(*s, kind::create_order, order_id, s->merchants[0], 3000));
  const auto by_balance = order_command(*s, kind::pay, order_id, s->users[0], 1000, lp::source::balance);
  send_one(*s, by_balance);
  s->settle();
  const auto declined = order_command(*s, kind::pay, order_id, s->users[1], 2000, lp::source::provider);
  send_one(*s, declined);
  refuse(take_call(*s), call_status::declined, false);
  s->settle();
  const auto by_card = order_command(*s, kind::pay, order_id, s->users[1], 2000, lp::source::provider);
  send_one(*s, by_card);
  succeed(*s, take_call(*s));
  s->settle();
  const auto refund = order_command(*s, kind::refund, order_id, 0, 500);
  send_one(*s, refund);
  succeed(*s, take_call(*s));
  s->settle();
  auto got = ask_once<items_reply>(*s, s->gateway, lookup_items_request{{}, {order_id, 77777}, 100});
  s->pump();
  REQUIRE(got->has_value());
  REQUIRE((*got)->status == outcome::ok);
  const auto& items = (*got)->items;
  REQUIRE(items.size() == 4);
  CHECK(items[0].id == by_balance.key);
  CHECK(order_state(items[0].state) == order_state::completed);
  CHECK(items[0].amount_moved == 1000);
  CHECK(items[0].provider_payment_id == 0);
  CHECK(items[1].id == declined.key);
  CHECK(order_state(items[1].state) == order_state::failed);
  CHECK(items[1].fee == 0);
  CHECK(items[1].amount_moved == 0);
  CHECK(items[1].provider_payment_id == s->pstore->ids().id(row_of(*s, declined.key).sequence));
  CHECK(items[2].id == by_card.key);
  CHECK(order_state(items[2].state) == order_state::partially_refunded);
  CHECK(items[2].amount_moved == 2000);
  CHECK(items[2].amount_refunded == 500);
  CHECK(std::string(items[2].provider, strnlen(items[2].provider, sizeof items[2].provider)) ==
        provider_of(row_of(*s, by_card.key)));
  CHECK(items[3].id == refund.key);
  CHECK(items[3].kind == uint16_t(kind::refund));
  CHECK(items[3].refund_of == by_card.key);
  CHECK(items[3].amount_moved == 500);
  for (const auto& i : items) CHECK(i.order_id == order_id);
  // more items than a reply may hold: nothing, and a status that says so
  auto few = ask_once<items_reply>(*s, s->gateway, lookup_items_request{{}, {order_id}, 3});
  s->pump();
  REQUIRE(few->has_value());
  CHECK((*few)->status == outcome::too_many);
  CHECK((*few)->items.empty());
  s->check_settled();
  CHECK(s->violations.empty());
}

TEST_CASE("a refund the provider confirms for less than asked books what it confirmed; the rest stays refundable",
          "[sim][payments][refund]") {
  auto s = calm("partial refund");
  auto [order_id, pay] = paid_order(*s, 2000);
  const auto refund = order_command(*s, kind::refund, order_id, 0, 1500);
  send_one(*s, refund);
  held_call h = take_call(*s);
  CHECK(h.call.kind == call_kind::refund);
  provider_answers(*s, h, call_status::succeeded, 1000);
  s->settle();
  const auto row = row_of(*s, refund.key);
  CHECK(order_state(row.state) == order_state::completed);
  CHECK(row.amount_captured == 1000);
  CHECK(row.result == uint32_t(payment_result::amount_mismatch));
  CHECK(journal_amount(*s, row, "book_refund_prv") == 1000);
  CHECK(journal_has(*s, row, "case_opened"));
  CHECK(last_reply(*s).amount == 1000);
  CHECK(row_of(*s, order_id).amount_refunded == 1000);
  CHECK(row_of(*s, pay.key).amount_refunded == 1000);
  const auto merchant = s->accounts_now().at(s->merchants[0]);
  CHECK(merchant.debits_pending == 0); // the rest of the hold is released
  CHECK(__int128(merchant.credits_posted) - __int128(merchant.debits_posted) == 1000);
  // what the provider did not give back may be refunded again; beyond it, nothing is booked
  CHECK(gl_customer_funds(*s) == ledger_customer_funds(*s));
  send_one(*s, order_command(*s, kind::refund, order_id, 0, 1001));
  CHECK(last_reply(*s).result == uint32_t(payment_result::refund_exceeds_captured));
  send_one(*s, order_command(*s, kind::refund, order_id, 0, 1000));
  succeed(*s, take_call(*s));
  s->settle();
  CHECK(row_of(*s, order_id).amount_refunded == 2000);
  CHECK(order_state(row_of(*s, order_id).state) == order_state::refunded);
  s->check_settled();
  books_agree(*s);
}

TEST_CASE("a refund the provider confirms for more than asked books what was asked; the rest goes to suspense",
          "[sim][payments][refund]") {
  auto s = calm("over-confirmed refund");
  auto [order_id, pay] = paid_order(*s, 2000);
  const auto refund = order_command(*s, kind::refund, order_id, 0, 500);
  send_one(*s, refund);
  provider_answers(*s, take_call(*s), call_status::succeeded, 700);
  s->settle();
  const auto row = row_of(*s, refund.key);
  CHECK(order_state(row.state) == order_state::completed);
  CHECK(row.amount_captured == 500);
  CHECK(row.provider_amount == 700);
  CHECK(row.result == uint32_t(payment_result::amount_mismatch));
  CHECK(journal_amount(*s, row, "book_refund_prv") == 500);
  CHECK(journal_amount(*s, row, "book_suspense_ou") == 200); // the step name as stored: 16 bytes
  CHECK(journal_has(*s, row, "case_opened"));
  CHECK(row_of(*s, order_id).amount_refunded == 500);
  const auto merchant = s->accounts_now().at(s->merchants[0]);
  CHECK(__int128(merchant.credits_posted) - __int128(merchant.debits_posted) == 1500);
  books_agree(*s);
}

TEST_CASE("a declined refund that the provider makes after all is booked once and counted in the order's refunded",
          "[sim][payments][refund][late]") {
  auto s = calm("late refund");
  auto [order_id, pay] = paid_order(*s, 2000);
  const auto refund = order_command(*s, kind::refund, order_id, 0, 800);
  send_one(*s, refund);
  declined_then_made(*s, take_call(*s), 800, 2); // the callback, and the same callback again
  const auto row = row_of(*s, refund.key);
  CHECK(order_state(row.state) == order_state::completed);
  CHECK(row.amount_captured == 800);
  CHECK(journal_amount(*s, row, "book_late") == 800); // once
  const auto o = row_of(*s, order_id);
  CHECK(o.amount_refunded == 800);
  CHECK(o.amount_refund_pending == 0);
  CHECK(order_state(o.state) == order_state::partially_refunded);
  CHECK(row_of(*s, pay.key).amount_refunded == 800);
  // the room it took is gone: the rest of the order, no more, may be refunded
  send_one(*s, order_command(*s, kind::refund, order_id, 0, 1201));
  CHECK(last_reply(*s).result == uint32_t(payment_result::refund_exceeds_captured));
  // the order's actor is loaded again from the store: the same counts
  s->crash_and_restart();
  s->settle();
  CHECK(row_of(*s, order_id).amount_refunded == 800);
  s->check_settled();
  books_agree(*s);
}

TEST_CASE("a late refund its order has no room for any more goes to suspense with a case, not to the merchant",
          "[sim][payments][refund][late]") {
  auto s = calm("late refund without room");
  auto [order_id, pay] = paid_order(*s, 1000);
  const auto first = order_command(*s, kind::refund, order_id, 0, 1000);
  send_one(*s, first);
  held_call h = take_call(*s);
  refuse(h, call_status::declined, false);
  s->settle();
  // the merchant refunds the whole order again, and that one goes through
  send_one(*s, order_command(*s, kind::refund, order_id, 0, 1000));
  succeed(*s, take_call(*s));
  s->settle();
  REQUIRE(row_of(*s, order_id).amount_refunded == 1000);
  made_after_all(*s, h, 1000);
  const auto row = row_of(*s, first.key);
  CHECK(order_state(row.state) == order_state::in_review);
  CHECK(journal_amount(*s, row, "book_late") == 0);
  CHECK(journal_amount(*s, row, "book_suspense_ou") == 1000);
  CHECK(journal_has(*s, row, "case_opened"));
  CHECK(row_of(*s, order_id).amount_refunded == 1000); // never beyond what was captured
  const auto merchant = s->accounts_now().at(s->merchants[0]);
  CHECK(merchant.credits_posted == merchant.debits_posted);
  books_agree(*s);
}

TEST_CASE("a late refund whose merchant part an earlier run booked before kassad stopped is not booked again to "
          "suspense when its order has no room left", "[sim][payments][refund][late]") {
  auto s = calm("late refund booked before a stop");
  auto [order_id, pay] = paid_order(*s, 1000);
  // the provider clearing account the pay item was booked against
  const auto pay_booking = s->lookup_ledger({lp::transfer_id(row_of(*s, pay.key).sequence, lp::leg::book)});
  REQUIRE(pay_booking.size() == 1);
  const u128 clearing = pay_booking[0].debit_account_id;
  const auto first = order_command(*s, kind::refund, order_id, 0, 1000);
  send_one(*s, first);
  held_call h = take_call(*s);
  refuse(h, call_status::declined, false);
  s->settle();
  // An earlier run of its late flow had the room and booked the merchant's part, then kassad
  // stopped before the row was written (the merchant is funded for it and for the refund below).
  s->ask_ledger(create_transfers_request{{}, {make_transfer(++s->next_id, 1, s->merchants[0], 1000, 0, usd)}, {}});
  const lp::order first_row = row_of(*s, first.key);
  ledger::transfer earlier = make_transfer(lp::transfer_id(first_row.sequence, lp::leg::late), s->merchants[0], clearing,
                                           1000, 0, usd);
  earlier.code = uint16_t(kind::refund);
  s->ask_ledger(create_transfers_request{{}, {earlier}, {1}});
  // meanwhile the merchant refunded the whole order again, which took the room
  send_one(*s, order_command(*s, kind::refund, order_id, 0, 1000));
  succeed(*s, take_call(*s));
  s->settle();
  REQUIRE(row_of(*s, order_id).amount_refunded == 1000);
  made_after_all(*s, h, 1000);
  const auto row = row_of(*s, first.key);
  CHECK(order_state(row.state) == order_state::in_review);
  CHECK(journal_has(*s, row, "case_opened"));
  CHECK(journal_amount(*s, row, "book_suspense_ou") == 0); // not a second booking of the same refund
  CHECK(s->lookup_ledger({lp::transfer_id(row.sequence, lp::leg::suspense_out)}).empty());
  CHECK(row_of(*s, order_id).amount_refunded == 1000); // never beyond what was captured
}

namespace {

// An order of 3000 paid 1000 from a balance, then 2000 through a provider; its items.
struct two_item_order {
  u128 order_id = 0;
  lp::payment_command by_balance{}, by_card{};
};
two_item_order order_of_two_items(sim& s) {
  two_item_order o;
  o.order_id = ++s.next_id;
  send_one(s, order_command(s, kind::create_order, o.order_id, s.merchants[0], 3000));
  o.by_balance = order_command(s, kind::pay, o.order_id, s.users[0], 1000, lp::source::balance);
  send_one(s, o.by_balance);
  s.settle();
  o.by_card = order_command(s, kind::pay, o.order_id, s.users[1], 2000, lp::source::provider);
  send_one(s, o.by_card);
  succeed(s, take_call(s));
  s.settle();
  REQUIRE(order_state(row_of(s, o.order_id).state) == order_state::completed);
  return o;
}

std::vector<lp::order> refund_rows(sim& s, u128 key) {
  std::vector<lp::order> out;
  for (const auto& r : s.rows())
    if (r.kind == uint16_t(kind::refund) && r.key == key) out.push_back(r);
  std::sort(out.begin(), out.end(), [](const lp::order& a, const lp::order& b) { return a.sequence < b.sequence; });
  return out;
}

} // namespace

TEST_CASE("a refund larger than any one pay item is split over the order's items, newest first, each within its room",
          "[sim][payments][refund][split]") {
  auto s = calm("split refund");
  const auto o = order_of_two_items(*s);
  send_one(*s, order_command(*s, kind::refund, o.order_id, 0, 500)); // the newest item takes it whole
  succeed(*s, take_call(*s));
  s->settle();
  // 2200: more than either item has left (1500 and 1000)
  const auto refund = order_command(*s, kind::refund, o.order_id, 0, 2200);
  send_one(*s, refund);
  held_call h = take_call(*s); // the card item's part; the balance part books at once
  CHECK(h.call.amount == 1500);
  succeed(*s, h);
  s->settle();
  auto reply = last_reply(*s);
  CHECK(reply.result == uint32_t(payment_result::ok));
  CHECK(reply.amount == 2200);
  CHECK(order_state(reply.state) == order_state::partially_refunded);
  const auto parts = refund_rows(*s, refund.key);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].id == refund.key);
  CHECK(parts[0].counterparty_id == o.by_card.key);
  CHECK(parts[0].amount_captured == 1500);
  CHECK(parts[1].id == s->pstore->ids().id(parts[1].sequence)); // a kassa-made id
  CHECK(parts[1].counterparty_id == o.by_balance.key);
  CHECK(parts[1].amount_captured == 700);
  for (const auto& p : parts) CHECK(order_state(p.state) == order_state::completed);
  CHECK(row_of(*s, o.order_id).amount_refunded == 2700);
  CHECK(row_of(*s, o.by_card.key).amount_refunded == 2000);
  CHECK(row_of(*s, o.by_balance.key).amount_refunded == 700);
  // the same command again: what its parts gave back together
  send_one(*s, refund);
  CHECK(last_reply(*s).result == uint32_t(payment_result::exists));
  CHECK(last_reply(*s).amount == 2200);
  // beyond what is left: refused, nothing stored
  const size_t rows_before = s->rows().size();
  send_one(*s, order_command(*s, kind::refund, o.order_id, 0, 301));
  CHECK(last_reply(*s).result == uint32_t(payment_result::refund_exceeds_captured));
  CHECK(s->rows().size() == rows_before);
  send_one(*s, order_command(*s, kind::refund, o.order_id, 0, 300));
  s->settle();
  CHECK(last_reply(*s).result == uint32_t(payment_result::ok));
  CHECK(order_state(row_of(*s, o.order_id).state) == order_state::refunded);
  // the items as lookup_order_items shows them: each part a refund of its own item
  auto got = ask_once<items_reply>(*s, s->gateway, lookup_items_request{{}, {o.order_id}, 100});
  s->pump();
  REQUIRE(got->has_value());
  size_t refunds = 0;
  for (const auto& i : (*got)->items) refunds += i.kind == uint16_t(kind::refund);
  CHECK(refunds == 4);
  s->check_settled();
  books_agree(*s);
}

TEST_CASE("a split refund whose part the provider declines answers the decline and what the other parts gave back",
          "[sim][payments][refund][split]") {
  auto s = calm("split refund declined");
  const auto o = order_of_two_items(*s);
  const auto refund = order_command(*s, kind::refund, o.order_id, 0, 2500);
  send_one(*s, refund);
  refuse(take_call(*s), call_status::declined, false);
  s->settle();
  const auto reply = last_reply(*s);
  CHECK(reply.result == uint32_t(payment_result::provider_declined));
  CHECK(reply.amount == 500); // the balance part
  const auto parts = refund_rows(*s, refund.key);
  REQUIRE(parts.size() == 2);
  CHECK(order_state(parts[0].state) == order_state::failed);
  CHECK(order_state(parts[1].state) == order_state::completed);
  const auto order_row = row_of(*s, o.order_id);
  CHECK(order_row.amount_refunded == 500);
  CHECK(order_row.amount_refund_pending == 0);
  s->check_settled();
  books_agree(*s);
}
