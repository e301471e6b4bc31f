// End-to-end: a real kassad on 127.0.0.1, driven through the client library, the CLI, and
// raw sockets. Tagged [e2e].
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/asio.hpp>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "tests/ledger/ledger_fixture.hpp"
#include "tests/runtime/kassad_fixture.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;

namespace {

std::vector<u128> ids_of(const std::vector<transfer>& ts) {
  std::vector<u128> out;
  for (const auto& t : ts) out.push_back(t.id);
  return out;
}

} // namespace

TEST_CASE("every acknowledged transfer survives kill -9 and a restart", "[e2e]") {
  kassad_instance k;
  std::vector<transfer> acked;
  {
    auto c = k.connect();
    REQUIRE(c.create_accounts({make_account(1), make_account(2), make_account(3, 1, account_history)}).empty());
    for (u128 batch = 0; batch < 20; ++batch) {
      std::vector<transfer> ts;
      for (u128 i = 0; i < 50; ++i) ts.push_back(make_transfer(1000 + batch * 50 + i, 1 + i % 3, 1 + (i + 1) % 3, 1 + i));
      REQUIRE(c.create_transfers(ts).empty());
      acked.insert(acked.end(), ts.begin(), ts.end());
    }
  }
  CHECK(k.stop(SIGKILL) == 128 + SIGKILL);
  k.start();
  auto c = k.connect();
  auto found = c.lookup_transfers(ids_of(acked));
  REQUIRE(found.size() == acked.size());
  for (size_t i = 0; i < acked.size(); ++i) {
    CHECK(found[i].id == acked[i].id);
    CHECK(found[i].amount == acked[i].amount);
    CHECK(found[i].debit_account_id == acked[i].debit_account_id);
  }
  // Sending them all again applies none of them twice.
  auto again = c.create_transfers(acked);
  REQUIRE(again.size() == acked.size());
  for (const auto& o : again) CHECK(o.result == transfer_result::exists);
  auto accounts = c.lookup_accounts({1, 2, 3});
  REQUIRE(accounts.size() == 3);
  u128 debits = 0, credits = 0;
  for (const auto& a : accounts) {
    debits += a.debits_posted;
    credits += a.credits_posted;
  }
  CHECK(debits == credits);
  c.close();
  const int status = k.stop();
  INFO(k.output());
  CHECK(status == 0);
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir()}, out) == 0);
}

TEST_CASE("history and balances page through an account's transfers", "[e2e]") {
  kassad_instance k;
  auto c = k.connect();
  REQUIRE(c.create_accounts({make_account(1), make_account(2, 1, account_history)}).empty());
  std::vector<transfer> ts;
  for (u128 i = 0; i < 25; ++i) ts.push_back(make_transfer(100 + i, i % 2 ? 1 : 2, i % 2 ? 2 : 1, 10 + i));
  REQUIRE(c.create_transfers(ts).empty());
  wire::filter f;
  f.account_id = 2;
  f.limit = 10;
  std::vector<transfer> all;
  for (int page = 0; page < 5; ++page) {
    auto got = c.get_account_transfers(f);
    all.insert(all.end(), got.begin(), got.end());
    if (got.size() < f.limit) break;
    f.timestamp_min = got.back().timestamp + 1;
  }
  REQUIRE(all.size() == 25);
  for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].timestamp < all[i].timestamp);
  f = wire::filter{};
  f.account_id = 2;
  f.limit = 100;
  f.flags = wire::filter_credits;
  CHECK(c.get_account_transfers(f).size() == 12); // odd i: 1 -> 2
  f.flags = wire::filter_debits | wire::filter_credits;
  auto balances = c.get_account_balances(f);
  REQUIRE(balances.size() == 25);
  auto acc = c.lookup_accounts({2});
  CHECK(balances.back().credits_posted == acc[0].credits_posted);
  CHECK(balances.back().debits_posted == acc[0].debits_posted);
  f.limit = 0;
  CHECK_THROWS_AS(c.get_account_transfers(f), client::error);
}

TEST_CASE("concurrent clients with duplicate ids in flight: no overdraft, each id once, books balance",
          "[e2e][concurrency]") {
  const uint64_t seed = kassa::test::seed("e2e concurrency");
  // One shard, and three: then most transfers cross shards as sagas.
  const int shards = GENERATE(1, 3);
  INFO("shards " << shards);
  kassad_instance k(shards == 1 ? "" : "  shards: " + std::to_string(shards) + "\n");
  constexpr u128 bank = 1;
  const std::vector<u128> users{10, 11, 12, 13};
  {
    auto c = k.connect();
    std::vector<account> as{make_account(bank)};
    for (u128 u : users) as.push_back(make_account(u, 1, account_debits_must_not_exceed_credits));
    REQUIRE(c.create_accounts(as).empty());
    std::vector<transfer> funding;
    for (u128 u : users) funding.push_back(make_transfer(u, bank, u, 1000));
    REQUIRE(c.create_transfers(funding).empty());
  }
  // Every transfer id is sent by two clients at once; users spend far more than they have.
  constexpr int clients = 8, rounds = 30, per_request = 20;
  std::vector<std::vector<transfer>> plan(rounds);
  std::mt19937_64 rng(seed);
  u128 next_id = 100'000;
  for (auto& req : plan) {
    for (int i = 0; i < per_request; ++i) {
      const u128 from = users[rng() % users.size()];
      u128 to = users[rng() % users.size()];
      if (to == from) to = bank;
      req.push_back(make_transfer(next_id++, from, to, 1 + rng() % 150));
    }
  }
  std::vector<std::map<u128, transfer_result>> seen(clients);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      try {
        client::options o;
        o.busy_retries_max = 50;
        auto c = k.connect(o);
        // Client t sends the rounds of its pair (t / 2), so each request is in flight twice.
        for (int r = (t / 2) % rounds, n = 0; n < rounds; r = (r + 1) % rounds, ++n) {
          auto failures = c.create_transfers(plan[r]);
          std::map<uint32_t, transfer_result> by_index;
          for (const auto& f : failures) by_index[f.index] = f.result;
          for (size_t i = 0; i < plan[r].size(); ++i) {
            seen[t][plan[r][i].id] = by_index.count(i) ? by_index[i] : transfer_result::ok;
          }
        }
      } catch (const std::exception& e) {
        ++errors;
        UNSCOPED_INFO("client " << t << ": " << e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(errors == 0);

  auto c = k.connect();
  std::vector<u128> all_ids;
  for (const auto& req : plan) for (const auto& t : req) all_ids.push_back(t.id);
  auto stored = c.lookup_transfers(all_ids);
  std::set<u128> stored_ids;
  for (const auto& t : stored) stored_ids.insert(t.id);
  REQUIRE(stored_ids.size() == stored.size()); // no id stored twice

  // Every client saw each id either applied once (ok somewhere, exists or ok elsewhere) or
  // refused; an id is stored exactly when somebody got ok for it.
  size_t oks = 0;
  for (u128 id : all_ids) {
    int ok_count = 0;
    for (const auto& s : seen) {
      auto it = s.find(id);
      REQUIRE(it != s.end());
      ok_count += it->second == transfer_result::ok;
    }
    CHECK(ok_count <= 1);
    CHECK((ok_count == 1) == (stored_ids.count(id) == 1));
    oks += ok_count;
  }
  CHECK(oks == stored.size());

  std::vector<u128> account_ids{bank};
  account_ids.insert(account_ids.end(), users.begin(), users.end());
  auto accounts = c.lookup_accounts(account_ids);
  u128 debits = 0, credits = 0;
  for (const auto& a : accounts) {
    debits += a.debits_posted;
    credits += a.credits_posted;
    if (a.id != bank) CHECK(a.debits_posted <= a.credits_posted); // no overdraft
  }
  CHECK(debits == credits);
  c.close();
  REQUIRE(k.stop() == 0);
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir()}, out) == 0);
}

TEST_CASE("a malformed frame gets an error frame and a closed connection; other clients carry on",
          "[e2e]") {
  kassad_instance k;
  auto good = k.connect();
  REQUIRE(good.create_accounts({make_account(1), make_account(2)}).empty());

  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket bad(io);
  bad.connect({asio::ip::make_address("127.0.0.1"), k.port()});
  std::vector<uint8_t> garbage(256, 0xAB);
  asio::write(bad, asio::buffer(garbage));
  std::vector<uint8_t> reply(wire::header_bytes);
  asio::read(bad, asio::buffer(reply));
  wire::decoded d = wire::decode(reply.data(), reply.size(), wire::limits{1u << 20, 8190, true});
  REQUIRE(d.outcome == wire::decode_outcome::frame);
  CHECK(d.h.st == wire::status::bad_magic);
  boost::system::error_code ec;
  uint8_t byte;
  asio::read(bad, asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof); // closed by the server

  CHECK(good.create_transfers({make_transfer(10, 1, 2, 5)}).empty());
  CHECK(good.lookup_transfers({10}).size() == 1);
}

TEST_CASE("SIGTERM answers every request in flight before kassad exits 0", "[e2e]") {
  kassad_instance k;
  auto c = k.connect();
  REQUIRE(c.create_accounts({make_account(1), make_account(2)}).empty());
  // Pipeline many requests, then stop kassad while they are in flight.
  std::vector<std::future<std::vector<create_transfer_outcome>>> futures;
  for (u128 r = 0; r < 200; ++r) {
    std::vector<transfer> ts;
    for (u128 i = 0; i < 10; ++i) ts.push_back(make_transfer(1000 + r * 10 + i, 1, 2, 1));
    futures.push_back(c.async().create_transfers(ts));
  }
  futures.front().wait(); // the pipeline is flowing
  CHECK(k.stop(SIGTERM) == 0);
  size_t acked = 0, refused = 0;
  for (auto& f : futures) {
    try {
      auto failures = f.get();
      CHECK(failures.empty());
      ++acked;
    } catch (const client::error&) {
      ++refused; // shutting_down, or the connection closed after the drain
    }
  }
  CHECK(acked + refused == futures.size());
  INFO("acknowledged " << acked << " of " << futures.size() << " requests");
  CHECK(acked >= 1);
  k.start();
  auto c2 = k.connect();
  auto accounts = c2.lookup_accounts({1});
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].debits_posted >= acked * 10); // every acknowledged transfer is there
}

TEST_CASE("the CLI creates accounts, moves money and reports results with exit codes", "[e2e]") {
  kassad_instance k;
  const std::string addr = k.address();
  std::string out;
  CHECK(run({KASSA_CLI, "--address", addr, "create-account", "--id", "1", "--ledger", "1", "--code", "10"}, out) == 0);
  CHECK(run({KASSA_CLI, "create-account", "--address", addr, "--id", "2", "--ledger", "1", "--code", "10",
             "--flags", "debits_must_not_exceed_credits"}, out) == 0);
  CHECK(run({KASSA_CLI, "transfer", "--address", addr, "--id", "7", "--from", "1", "--to", "2", "--amount", "300",
             "--ledger", "1", "--code", "1"}, out) == 0);
  CHECK(out.find("transfer 7: ok") != std::string::npos);
  CHECK(run({KASSA_CLI, "transfer", "--address", addr, "--id", "8", "--from", "2", "--to", "1", "--amount", "301",
             "--ledger", "1", "--code", "1", "--json"}, out) == 1);
  CHECK(out.find("\"result\":\"exceeds_credits\"") != std::string::npos);
  CHECK(run({KASSA_CLI, "transfer", "--address", addr, "--id", "7", "--from", "1", "--to", "2", "--amount", "300",
             "--ledger", "1", "--code", "1"}, out) == 0);
  CHECK(out.find("exists") != std::string::npos);
  CHECK(run({KASSA_CLI, "lookup-account", "--address", addr, "2", "--json"}, out) == 0);
  CHECK(out.find("\"credits_posted\":\"300\"") != std::string::npos);
  CHECK(run({KASSA_CLI, "lookup-transfer", "--address", addr, "99"}, out) == 1);
  CHECK(run({KASSA_CLI, "transfer", "--address", addr, "--id", "9"}, out) == 2);
  CHECK(run({KASSA_CLI, "transfer", "--address", addr, "--id", "x1", "--from", "1", "--to", "2", "--amount", "1",
             "--ledger", "1", "--code", "1"}, out) == 2);
  CHECK(out.find("--id must be a whole number") != std::string::npos);
  CHECK(run({KASSA_CLI, "transfer", "--help"}, out) == 0);
  CHECK(run({KASSA_CLI, "lookup-account", "--address", "127.0.0.1:1", "1"}, out) == 3);
}

TEST_CASE("clients that vanish with requests in flight do not disturb kassad", "[e2e]") {
  kassad_instance k;
  {
    auto c = k.connect();
    REQUIRE(c.create_accounts({make_account(1), make_account(2)}).empty());
  }
  namespace asio = boost::asio;
  for (int round = 0; round < 20; ++round) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), k.port()});
    std::vector<uint8_t> bytes;
    wire::header h;
    h.op = wire::operation::hello;
    h.request_id = 1;
    h.event_count = 1;
    wire::hello_request hello;
    wire::encode(bytes, h, &hello, sizeof hello);
    for (uint64_t r = 0; r < 30; ++r) {
      std::vector<transfer> ts;
      for (u128 i = 0; i < 50; ++i) ts.push_back(make_transfer(1'000'000 + round * 10'000 + r * 50 + i, 1, 2, 1));
      wire::header t;
      t.op = wire::operation::create_transfers;
      t.request_id = 2 + r;
      t.event_count = static_cast<uint32_t>(ts.size());
      wire::encode(bytes, t, ts.data(), ts.size() * sizeof(transfer));
    }
    asio::write(s, asio::buffer(bytes));
    s.close(); // gone before the replies
  }
  auto c = k.connect();
  CHECK(c.create_transfers({make_transfer(7, 1, 2, 1)}).empty());
  CHECK(k.stop() == 0);
}

TEST_CASE("with the payment core off, payment requests are answered payments_disabled and the "
          "connection carries on",
          "[e2e]") {
  kassad_instance k;
  auto c = k.connect();
  payments::payment_command topup{};
  topup.key = 1;
  topup.order_id = 9001;
  topup.account_id = 7;
  topup.amount = 5000;
  topup.ledger = 840;
  topup.kind = uint16_t(payments::kind::topup);
  auto status_of = [](auto&& call) {
    try {
      call();
    } catch (const client::error& e) {
      CHECK(e.kind == client::error_kind::status);
      return e.status;
    }
    FAIL("no client::error was thrown");
    return wire::status::ok;
  };
  CHECK(status_of([&] { c.submit_payments({topup}); }) == wire::status::payments_disabled);
  CHECK(status_of([&] { c.lookup_orders({9001}); }) == wire::status::payments_disabled);
  REQUIRE(c.create_accounts({make_account(1)}).empty());
  CHECK(c.lookup_accounts({1}).size() == 1);

  std::string out;
  const std::string addr = k.address();
  CHECK(run({KASSA_CLI, "order", "topup", "--address", addr, "--key", "1", "--order", "9001", "--account", "7",
             "--amount", "5000", "--ledger", "840"}, out) == 4);
  CHECK(out.find("payments_disabled") != std::string::npos);
  CHECK(out.find("payments.enabled: false") != std::string::npos);
  CHECK(run({KASSA_CLI, "order", "show", "9001", "--address", addr}, out) == 4);
  CHECK(run({KASSA_CLI, "order", "pay", "--address", addr, "--key", "1", "--order", "9001", "--account", "7",
             "--amount", "1", "--source", "card"}, out) == 2);
  CHECK(out.find("--source must be balance or provider") != std::string::npos);
  CHECK(run({KASSA_CLI, "order", "frobnicate", "--address", addr}, out) == 2);
  CHECK(run({KASSA_CLI, "order", "--help"}, out) == 0);
  CHECK(out.find("kassa order show ID") != std::string::npos);
}
