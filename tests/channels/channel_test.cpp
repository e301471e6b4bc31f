// The channel actor against a real kassa-channel-sim process on 127.0.0.1: outcomes, retries
// and unknown outcomes, the breaker, the in-flight limit, callbacks, the statement feed, and
// many concurrent calls. Tagged [channels].
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "actors/channel.hpp"
#include "channels/text.hpp"
#include "metrics/shared.hpp"
#include "tests/ask.hpp"
#include "tests/channels/sim_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace std::chrono_literals;
using kassa::test::channel_sim;

namespace {

// A provider whose answers take `latency_ms` exactly, and nothing random.
std::string provider_yaml(const std::string& name, uint64_t latency_ms = 5, const std::string& extra = "") {
  const std::string l = std::to_string(latency_ms);
  return "  " + name + ":\n    latency: {min_ms: " + l + ", median_ms: " + l + ", p99_ms: " + l + ", max_ms: " + l +
         "}\n    timeout_hold_ms: 3000\n" + extra;
}

struct harness {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<channel_sim> sim;
  caf::actor channel;
  uint64_t seed;
  std::mt19937_64 rng;
  uint64_t next_id = 1;

  harness(const std::string& what, const std::string& yaml, channel_options o,
          const std::string& server = "  connections_max: 4096\n")
      : seed(test::seed(what.c_str())), rng(seed) {
    cfg.set("scheduler.max-threads", 2);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sim = std::make_unique<channel_sim>(yaml, seed, server);
    o.port = sim->port();
    o.seed = seed;
    if (o.path_prefix.empty()) o.path_prefix = "/p/" + o.name;
    channel = spawn_channel(*sys, o);
  }
  ~harness() {
    caf::anon_send_exit(channel, caf::exit_reason::user_shutdown);
    sys->await_all_actors_done();
  }

  payment_call charge(u128 amount = 1000) {
    payment_call c;
    c.payment_id = make_u128(rng(), next_id++);
    c.kind = call_kind::charge;
    c.amount = amount;
    c.ledger = 978;
    c.account_id = 42;
    return c;
  }

  // Through tests/ask.hpp rather than a scoped_actor, so that ThreadSanitizer sees the reply
  // reach the test's thread (docs/reliability.md#threadsanitizer).
  template <class Reply, class Request>
  Reply ask(Request req) {
    auto r = test::ask<Reply>(*sys, channel, std::move(req), 30s);
    INFO("the channel answers with an error or not within 30 s");
    REQUIRE(r);
    return std::move(*r);
  }
  call_result pay(payment_call c) { return ask<call_result>(std::move(c)); }
  call_result status(u128 id) { return ask<call_result>(status_query{{}, id}); }
  health_reply health() { return ask<health_reply>(health_request{}); }

  // Sends every call at once and waits for all answers.
  std::vector<call_result> pay_all(const std::vector<payment_call>& calls) {
    auto replies = test::ask_all<call_result>(*sys, channel, calls, 60s);
    std::vector<call_result> out;
    for (auto& r : replies) {
      if (r) out.push_back(std::move(*r));
    }
    REQUIRE(out.size() == calls.size());
    return out;
  }
};

// What a channel logs, kept for the test's thread.
struct log_lines {
  std::mutex m;
  std::vector<std::pair<bool, std::string>> lines; // warning, message
  std::function<void(bool, const std::string&)> sink() {
    return [this](bool warning, const std::string& msg) {
      std::lock_guard<std::mutex> l(m);
      lines.emplace_back(warning, msg);
    };
  }
  std::vector<std::pair<bool, std::string>> taken() {
    std::lock_guard<std::mutex> l(m);
    return lines;
  }
};

// The value /metrics shows for the series `name{labels}` (0 when absent).
uint64_t metric(const std::string& series) {
  const std::string text = metrics::process_registry().text();
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + 1 + series.size() + 1));
}

channel_options options(const std::string& name) {
  channel_options o;
  o.name = name;
  o.timeout_ms = 1000;
  o.retries_max = 2;
  o.backoff_ms_min = 10;
  o.backoff_ms_max = 50;
  o.events_poll_ms = 50;
  return o;
}

} // namespace

TEST_CASE("a payment the provider accepts succeeds, and a repeat returns the same payment", "[channels]") {
  harness h("channel success", provider_yaml("alpha"), options("alpha"));
  auto c = h.charge(1234);
  auto r = h.pay(c);
  CHECK(r.status == call_status::succeeded);
  CHECK(r.amount == 1234);
  CHECK(r.payment_id == c.payment_id);
  CHECK(r.attempts == 1);
  CHECK_FALSE(r.provider_ref.empty());
  auto again = h.pay(c);
  CHECK(again.status == call_status::succeeded);
  CHECK(again.provider_ref == r.provider_ref);
  CHECK(h.sim->stats("alpha")["payments"] == 1);
  CHECK(h.status(c.payment_id).status == call_status::succeeded);
  CHECK(h.status(h.charge().payment_id).status == call_status::not_found);
  auto health = h.health();
  CHECK(health.state == health_state::healthy);
  CHECK(health.calls == 4);
  CHECK(health.inflight == 0);
}

TEST_CASE("business outcomes come back as the provider gave them", "[channels]") {
  harness h("channel outcomes", provider_yaml("alpha", 5, "    partial_amount_ppm: 250000\n    mismatch_delta: 3\n"),
            options("alpha"));
  h.sim->force("alpha", {"declined", "partial", "mismatch", "pending"});
  CHECK(h.pay(h.charge(1000)).status == call_status::declined);
  auto partial = h.pay(h.charge(1000));
  CHECK((partial.status == call_status::partial && partial.amount == 250));
  auto mismatch = h.pay(h.charge(1000));
  CHECK((mismatch.status == call_status::succeeded && mismatch.amount == 1003));
  CHECK(h.pay(h.charge(1000)).status == call_status::pending);
  // A repeat with another amount is a conflict at the provider: failed, not retried.
  auto c = h.charge(10);
  h.pay(c);
  c.amount = 11;
  auto conflict = h.pay(c);
  CHECK(conflict.status == call_status::failed);
  CHECK(conflict.attempts == 1);
  INFO(conflict.detail);
  CHECK(conflict.detail.find("409") != std::string::npos);
}

TEST_CASE("a timed-out payment is sent again and the repeat returns the applied payment", "[channels]") {
  auto o = options("alpha");
  o.timeout_ms = 800;
  harness h("channel timeout retry", provider_yaml("alpha"), o);
  h.sim->force("alpha", {"timeout"});
  auto r = h.pay(h.charge(500));
  CHECK(r.status == call_status::succeeded);
  CHECK(r.attempts == 2);
  CHECK(h.sim->stats("alpha")["payments"] == 1);
}

TEST_CASE("timeouts beyond retries_max give unknown, and a status query then says succeeded", "[channels]") {
  auto o = options("alpha");
  o.timeout_ms = 800;
  o.retries_max = 2;
  harness h("channel timeout unknown", provider_yaml("alpha"), o);
  h.sim->force("alpha", {"timeout", "timeout", "timeout"});
  auto c = h.charge(700);
  auto r = h.pay(c);
  CHECK(r.status == call_status::unknown);
  CHECK(r.attempts == 3);
  INFO(r.detail);
  CHECK(r.detail.find("timeout") != std::string::npos);
  auto s = h.status(c.payment_id);
  CHECK(s.status == call_status::succeeded);
  CHECK(s.amount == 700);
}

TEST_CASE("a connection closed after processing is an unknown outcome, resolved by a status query", "[channels]") {
  auto o = options("alpha");
  o.retries_max = 1;
  harness h("channel unknown", provider_yaml("alpha"), o);
  h.sim->force("alpha", {"unknown", "unknown"});
  auto c = h.charge(80);
  auto r = h.pay(c);
  CHECK(r.status == call_status::unknown);
  CHECK(r.attempts == 2);
  CHECK(h.status(c.payment_id).status == call_status::succeeded);
}

TEST_CASE("a keep-alive connection the provider closed while idle is replaced without a failure", "[channels]") {
  harness h("channel stale connection", provider_yaml("alpha"), options("alpha"), "  idle_ms: 100\n");
  CHECK(h.pay(h.charge()).status == call_status::succeeded);
  std::this_thread::sleep_for(400ms); // the simulator closes the idle connection
  auto r = h.pay(h.charge());
  CHECK(r.status == call_status::succeeded);
  CHECK(r.attempts == 1);
  CHECK(h.health().failures == 0);
}

TEST_CASE("a provider that is down gives failed without money in doubt", "[channels]") {
  harness h("channel refused", provider_yaml("alpha"), options("alpha"));
  // A second channel to a port nobody listens on: connections are refused, nothing is sent.
  auto o2 = options("nobody");
  o2.port = 1;
  o2.path_prefix = "/p/nobody";
  o2.retries_max = 1;
  caf::actor dead = spawn_channel(*h.sys, o2);
  auto r = test::ask<call_result>(*h.sys, dead, h.charge(), 30s);
  REQUIRE(r);
  CHECK(r->status == call_status::failed);
  CHECK(r->attempts == 2);
  CHECK(r->not_sent); // every connection refused: the payment may go to another channel
  caf::anon_send_exit(dead, caf::exit_reason::user_shutdown);
}

TEST_CASE("the breaker opens after failures, rejects without sending, and recovers", "[channels]") {
  auto o = options("alpha");
  o.timeout_ms = 800;
  o.retries_max = 0;
  o.breaker_failures_min = 3;
  o.breaker_window_ms = 10'000;
  o.breaker_open_ms = 1500;
  log_lines logged;
  o.log = logged.sink();
  const std::string series = "kassa_channel_breaker_transitions_total{channel=\"alpha\",to=\"";
  const uint64_t opened_before = metric(series + "open\"}"), probing_before = metric(series + "half_open\"}"),
                 closed_before = metric(series + "closed\"}");
  harness h("channel breaker", provider_yaml("alpha"), o);
  h.sim->force("alpha", {"timeout", "timeout", "timeout"});
  for (int i = 0; i < 3; ++i) {
    auto r = h.pay(h.charge());
    CHECK(r.status == call_status::unknown);
    CHECK_FALSE(r.not_sent); // a timeout proves nothing: the provider may have the payment
  }
  CHECK(h.health().state == health_state::down);
  CHECK(metric(series + "open\"}") == opened_before + 1);
  CHECK(metric("kassa_channel_breaker_state{channel=\"alpha\"}") == 2);
  const auto calls_before = h.sim->stats("alpha")["counts"]["payment_calls"].get<uint64_t>();
  auto rejected = h.pay(h.charge());
  CHECK(rejected.status == call_status::rejected);
  CHECK(rejected.attempts == 0);
  CHECK(rejected.not_sent);
  CHECK(h.sim->stats("alpha")["counts"]["payment_calls"].get<uint64_t>() == calls_before); // nothing was sent
  std::this_thread::sleep_for(1600ms);
  CHECK(h.health().state == health_state::degraded);
  CHECK(h.pay(h.charge()).status == call_status::succeeded); // the probe
  auto health = h.health();
  CHECK(health.state == health_state::healthy);
  CHECK(health.failures == 3);
  CHECK(health.rejected == 1);
  // Each move of the breaker is logged once, with the channel and why, and counted.
  CHECK(metric(series + "open\"}") == opened_before + 1);
  CHECK(metric(series + "half_open\"}") == probing_before + 1);
  CHECK(metric(series + "closed\"}") == closed_before + 1);
  CHECK(metric("kassa_channel_breaker_state{channel=\"alpha\"}") == 0);
  const auto lines = logged.taken();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].first);
  CHECK(lines[0].second.find("channel alpha: circuit breaker opened") != std::string::npos);
  CHECK(lines[0].second.find("timeout") != std::string::npos);
  CHECK_FALSE(lines[1].first);
  CHECK(lines[1].second.find("channel alpha: circuit breaker half-open") != std::string::npos);
  CHECK_FALSE(lines[2].first);
  CHECK(lines[2].second.find("channel alpha: circuit breaker closed") != std::string::npos);
}

TEST_CASE("calls beyond the in-flight limit are rejected at once", "[channels]") {
  auto o = options("alpha");
  o.inflight_max = 4;
  harness h("channel inflight", provider_yaml("alpha", 400), o);
  std::vector<payment_call> calls;
  for (int i = 0; i < 10; ++i) calls.push_back(h.charge());
  auto results = h.pay_all(calls);
  size_t ok = 0, rejected = 0;
  for (const auto& r : results) {
    if (r.status == call_status::succeeded) ++ok;
    if (r.status == call_status::rejected) ++rejected;
  }
  CHECK(ok == 4);
  CHECK(rejected == 6);
  CHECK(h.health().inflight == 0);
}

TEST_CASE("the events feed delivers duplicate and late callbacks to the subscriber", "[channels]") {
  harness h("channel events", provider_yaml("alpha", 5, "    late_callback_ms: 300\n    callback_delay_ms: 200\n"),
            options("alpha"));
  h.sim->force("alpha", {"duplicate_callback", "late_success", "pending"});
  auto dup = h.charge(10), late = h.charge(20), pending = h.charge(30);
  CHECK(h.pay(dup).status == call_status::succeeded);
  CHECK(h.pay(late).status == call_status::declined);
  CHECK(h.pay(pending).status == call_status::pending);

  test::inbox<provider_event> events{*h.sys};
  caf::anon_send(h.channel, subscribe_events{events.handle(), 0});
  std::map<u128, std::vector<provider_event>> seen;
  uint64_t last_sequence = 0;
  auto done = [&] { return seen[dup.payment_id].size() == 2 && seen[late.payment_id].size() == 1 && seen[pending.payment_id].size() == 1; };
  while (!done()) {
    auto e = events.next(5s);
    if (!e) break;
    CHECK(e->provider == "alpha");
    CHECK(e->sequence > last_sequence);
    last_sequence = e->sequence;
    seen[e->payment_id].push_back(*e);
  }
  REQUIRE(done());
  CHECK(seen[dup.payment_id][0].status == call_status::succeeded);
  CHECK(seen[dup.payment_id][1].status == call_status::succeeded);
  CHECK(seen[dup.payment_id][0].provider_ref == seen[dup.payment_id][1].provider_ref);
  CHECK(seen[late.payment_id][0].status == call_status::succeeded); // answered declined, then succeeded
  CHECK(seen[late.payment_id][0].amount == 20);
  CHECK(seen[pending.payment_id][0].status == call_status::succeeded);
  CHECK(h.status(late.payment_id).status == call_status::succeeded);
  // A subscriber that resumes from a cursor gets only what came after it.
  caf::anon_send(h.channel, subscribe_events{events.handle(), last_sequence});
  CHECK(h.pay(h.charge(40)).status == call_status::succeeded);
  auto next = events.next(5s);
  REQUIRE(next);
  CHECK(next->sequence == last_sequence + 1);
  CHECK(next->amount == 40);
}

TEST_CASE("the statement feed carries exactly the discrepancies the provider injected", "[channels]") {
  harness h("channel statement", provider_yaml("alpha"), options("alpha"));
  h.sim->force("alpha", {"succeeded", "statement_missing", "statement_mismatch", "succeeded", "statement_extra",
                         "declined"});
  std::map<u128, u128> moved; // what kassa was told moved
  for (int i = 0; i < 6; ++i) {
    auto r = h.pay(h.charge(100 + i));
    if (r.status == call_status::succeeded) moved[r.payment_id] = r.amount;
  }
  REQUIRE(moved.size() == 5);
  auto st = h.ask<statement_reply>(statement_request{0, 100});
  REQUIRE(st.ok);
  // Reconcile: entries kassa cannot match, amounts that differ, payments the statement lacks.
  std::set<std::string> found;
  std::set<u128> listed;
  for (const auto& e : st.entries) {
    listed.insert(e.payment_id);
    auto it = moved.find(e.payment_id);
    if (it == moved.end()) found.insert("extra " + channels::id_text(e.payment_id));
    else if (it->second != e.amount) found.insert("amount_mismatch " + channels::id_text(e.payment_id));
  }
  for (const auto& [id, amount] : moved) {
    if (!listed.count(id)) found.insert("missing " + channels::id_text(id));
  }
  std::set<std::string> injected;
  const auto reported = h.sim->json(false, "/p/alpha/v1/admin/injected");
  for (const auto& i : reported["injected"]) {
    injected.insert(i["type"].get<std::string>() + " " + i["payment_id"].get<std::string>());
  }
  CHECK(injected.size() == 3);
  CHECK(found == injected);
  auto page = h.ask<statement_reply>(statement_request{st.entries[1].sequence, 1});
  REQUIRE(page.entries.size() == 1);
  CHECK(page.entries[0].sequence == st.entries[2].sequence);
}

TEST_CASE("a provider that wants credentials gets a token fetched once and reused", "[channels]") {
  auto o = options("alpha");
  o.credentials = true;
  harness h("channel credentials", provider_yaml("alpha", 5, "    credentials_required: true\n"), o);
  for (int i = 0; i < 3; ++i) CHECK(h.pay(h.charge()).status == call_status::succeeded);
  auto c = h.ask<credential_reply>(credential_request{});
  CHECK(c.ok);
  CHECK_FALSE(c.token.empty());
  CHECK(h.sim->stats("alpha")["counts"]["credentials"] == 1);
  // A token kassa did not get from this provider is refused once, then renewed.
  auto call = h.charge();
  call.credential = "tok-forged";
  CHECK(h.pay(call).status == call_status::succeeded);
}

TEST_CASE("200 concurrent calls with 200 ms latency all complete in about one latency", "[channels]") {
  auto o = options("alpha");
  o.inflight_max = 256;
  o.connections_max = 256;
  harness h("channel concurrency", provider_yaml("alpha", 200), o);
  std::vector<payment_call> calls;
  for (int i = 0; i < 200; ++i) calls.push_back(h.charge(1 + i));
  const auto start = std::chrono::steady_clock::now();
  auto results = h.pay_all(calls);
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::printf("200 calls at 200 ms latency took %lld ms\n", static_cast<long long>(elapsed_ms));
  size_t ok = 0;
  for (const auto& r : results) ok += r.status == call_status::succeeded;
  CHECK(ok == 200);
  CHECK(elapsed_ms < 10'000); // loose: shared machines are slow, but a thread per call would show
  CHECK(h.sim->stats("alpha")["payments"] == 200);
}
