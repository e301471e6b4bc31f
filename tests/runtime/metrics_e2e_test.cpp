// End-to-end: kassad's metrics endpoint, scraped with a plain socket while transfers run.
// Tagged [e2e][metrics].
#include <catch2/catch.hpp>

#include <thread>

#include "tests/ledger/ledger_fixture.hpp"
#include "tests/runtime/kassad_fixture.hpp"
#include "tests/runtime/scrape.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
using namespace std::chrono_literals;

namespace {

const char* const stages[] = {"decode", "routing", "accounts", "commit_wait", "encode"};

// Accounts 1..8 and `batches` requests of 100 transfers between them.
void transfer_some(kassad_instance& k, u128 first_id, int batches) {
  auto c = k.connect();
  std::vector<account> accounts;
  for (u128 id = 1; id <= 8; ++id) accounts.push_back(make_account(id));
  c.create_accounts(accounts); // exists, after the first time
  for (int b = 0; b < batches; ++b) {
    std::vector<transfer> ts;
    for (u128 i = 0; i < 100; ++i) {
      const u128 id = first_id + u128(b) * 100 + i;
      ts.push_back(make_transfer(id, 1 + id % 8, 1 + (id + 3) % 8, 1 + i));
    }
    REQUIRE(c.create_transfers(ts).empty());
  }
  c.close();
}

} // namespace

TEST_CASE("kassad serves its metrics as Prometheus text: requests, results and every stage", "[e2e][metrics]") {
  kassad_instance k;
  REQUIRE(k.metrics_port() != 0);
  transfer_some(k, 1000, 5);
  {
    // A repeat of a transfer: its result code is counted by name.
    auto c = k.connect();
    auto outcomes = c.create_transfers({make_transfer(1000, 1, 4, 1)});
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].result == transfer_result::exists);
  }

  http_reply r = scrape(k.metrics_port());
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"].rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(r.headers["content-length"] == std::to_string(r.body.size()));
  const exposition e(r.body);

  CHECK(e.value("kassa_requests_total", {{"operation", "create_transfers"}}) >= 6);
  CHECK(e.value("kassa_requests_total", {{"operation", "create_accounts"}}) >= 1);
  CHECK(e.value("kassa_replies_total", {{"operation", "create_transfers"}, {"status", "ok"}}) >= 6);
  CHECK(e.value("kassa_results_total", {{"operation", "create_transfers"}, {"code", "ok"}}) == 500);
  CHECK(e.value("kassa_results_total", {{"operation", "create_transfers"}, {"code", "exists"}}) == 1);
  CHECK(e.value("kassa_results_total", {{"operation", "create_accounts"}, {"code", "ok"}}) == 8);
  CHECK(e.value("kassa_request_seconds_count", {{"operation", "create_transfers"}}) >= 6);
  CHECK(e.value("kassa_commits_total", {{"shard", "0"}}) >= 1);
  CHECK(e.value("kassa_commit_seconds_count", {{"shard", "0"}}) >= 1);
  CHECK(e.value("kassa_commit_batch_events_sum", {{"shard", "0"}}) >= 508);
  CHECK(e.value("kassa_connections_open", {}) >= 0);
  CHECK(e.value("kassa_mailbox_depth", {{"actor", "shard0"}}) >= 0);
  CHECK(e.value("kassa_mailbox_depth", {{"actor", "directory"}}) >= 0);
  CHECK(e.value("kassa_mailbox_depth", {{"actor", "writer0"}}) >= 0);
  CHECK(e.value("kassa_hot_accounts", {}) == 0);
  CHECK(e.types.at("kassa_stage_seconds") == "histogram");

  // The stage histogram exactly as the contract has it.
  std::vector<std::string> les;
  for (unsigned k2 = 0; k2 <= 24; ++k2) {
    const uint64_t ns = uint64_t{1000} << k2;
    std::string s = std::to_string(ns / 1'000'000'000) + "." + std::to_string(1'000'000'000 + ns % 1'000'000'000).substr(1);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    les.push_back(s);
  }
  les.push_back("+Inf");
  CHECK(les[0] == "0.000001");
  CHECK(les[24] == "16.777216");
  for (const char* stage : stages) {
    INFO("stage " << stage);
    const auto b = e.buckets("kassa_stage_seconds", "stage", stage);
    REQUIRE(b.size() == les.size());
    double last = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      CHECK(b[i].first == les[i]);
      CHECK(b[i].second >= last);
      last = b[i].second;
    }
    const double count = e.value("kassa_stage_seconds_count", {{"stage", stage}});
    CHECK(count > 0);
    CHECK(b.back().second == count);
    CHECK(e.value("kassa_stage_seconds_sum", {{"stage", stage}}) >= 0);
  }
  CHECK(k.stop() == 0);
}

TEST_CASE("the metrics endpoint answers only GET /metrics and refuses what it cannot take", "[e2e][metrics]") {
  kassad_instance k("metrics:\n  port: 0\n  request_bytes_max: 1024\n  connections_max: 2\n  read_timeout_ms: 500\n");
  REQUIRE(k.metrics_port() != 0);
  const uint16_t port = k.metrics_port();
  CHECK(request(port, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
  CHECK(request(port, "GET / HTTP/1.1\r\n\r\n").status == 404);
  http_reply post = request(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.headers["allow"] == "GET");
  CHECK(request(port, "DELETE /metrics HTTP/1.1\r\n\r\n").status == 405);
  CHECK(request(port, "nonsense\r\n\r\n").status == 400);
  CHECK(request(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").status == 200);
  // A request beyond request_bytes_max, with or without its end, is refused.
  CHECK(request(port, "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(2000, 'a') + "\r\n\r\n").status == 431);
  CHECK(request(port, "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(2000, 'a')).status == 431);

  // Two slow clients hold both connections: a third is refused with 503; once the read
  // timeout closes them, scrapes work again.
  plain_socket slow1(port), slow2(port);
  slow1.send_all("GET /metr");
  slow2.send_all("GET /metr");
  std::this_thread::sleep_for(100ms);
  CHECK(request(port, "GET /metrics HTTP/1.1\r\n\r\n").status == 503);
  CHECK(slow1.read_all(5s).empty());
  CHECK(slow1.closed());
  slow2.read_all(5s);
  CHECK(slow2.closed());
  CHECK(scrape(port).status == 200);
  CHECK(k.stop() == 0);
}

TEST_CASE("kassad serves transfers while a slow client holds a metrics connection", "[e2e][metrics]") {
  kassad_instance k("metrics:\n  port: 0\n  connections_max: 1\n  read_timeout_ms: 60000\n");
  REQUIRE(k.metrics_port() != 0);
  plain_socket slow(k.metrics_port());
  slow.send_all("GET /metrics HTTP/1.1\r\n"); // and never the end of it
  const auto started = std::chrono::steady_clock::now();
  transfer_some(k, 5000, 20);
  CHECK(std::chrono::steady_clock::now() - started < 30s);
  CHECK(slow.read_all(100ms).empty());
  CHECK_FALSE(slow.closed());
  CHECK(k.stop() == 0);
}

TEST_CASE("kassad reports where it serves metrics, or that it does not", "[e2e][metrics]") {
  kassad_instance off("metrics:\n  enabled: false\n");
  CHECK(off.metrics_port() == 0);
  CHECK(off.output().find("metrics=off") != std::string::npos);
  // Another kassad already holds the port: this one serves its clients without metrics.
  kassad_instance first;
  kassad_instance second("metrics:\n  port: " + std::to_string(first.metrics_port()) + "\n");
  CHECK(second.output().find("metrics=unavailable") != std::string::npos);
  CHECK(second.output().find("cannot serve metrics") != std::string::npos);
  auto c = second.connect();
  CHECK(c.create_accounts({make_account(1)}).empty());
  c.close();
  CHECK(second.stop() == 0);
  CHECK(first.stop() == 0);
  CHECK(off.stop() == 0);
}
