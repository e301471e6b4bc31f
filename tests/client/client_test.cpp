// The C++ client against a scripted fake server (tests/client/fake_server.hpp) on 127.0.0.1.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>

#include "runtime/client/client.hpp"
#include "tests/client/fake_server.hpp"

using namespace kassa;
using namespace std::chrono_literals;
using client::error_kind;

namespace {

ledger::transfer transfer(u128 id, u128 amount, uint16_t flags = 0) {
  ledger::transfer t{};
  t.id = id;
  t.debit_account_id = 1;
  t.credit_account_id = 2;
  t.amount = amount;
  t.ledger = 1;
  t.code = 1;
  t.flags = flags;
  return t;
}

template <class F>
client::error error_of(F&& f) {
  try {
    f();
  } catch (const client::error& e) {
    return e;
  }
  FAIL("no client::error was thrown");
  return client::error(error_kind::protocol, wire::status::ok, "unreachable");
}

} // namespace

TEST_CASE("a client says hello and learns the server's limits", "[client]") {
  test::fake_server server;
  auto c = client::connection::connect("127.0.0.1", server.port);
  CHECK(c->is_open());
  CHECK(c->server_limits().batch_events_max == 4);
  CHECK(c->server_limits().requests_inflight_max == 2);
  CHECK(c->server_limits().frame_bytes_max == 128 * 4 + 256);
  c->close();
  CHECK_FALSE(c->is_open());
}

TEST_CASE("create_transfers splits a batch into frames of batch_events_max, never inside a "
          "linked chain, and reports failures by their index in the whole batch",
          "[client]") {
  test::fake_server server;
  client::blocking_client c;
  c.connect("127.0.0.1", server.port, 2s);
  std::vector<ledger::transfer> batch;
  for (u128 i = 0; i < 10; ++i) batch.push_back(transfer(100 + i, 5));
  batch[1].amount = batch[5].amount = batch[9].amount = 0;
  batch[2].flags = batch[3].flags = ledger::transfer_linked; // chain 2-3-4
  const auto outcomes = c.create_transfers(batch);
  REQUIRE(outcomes.size() == 3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(outcomes[i].result == ledger::transfer_result::amount_must_not_be_zero);
  CHECK(outcomes[0].index == 1);
  CHECK(outcomes[1].index == 5);
  CHECK(outcomes[2].index == 9);
  CHECK(server.create_frame_events() == std::vector<uint32_t>{2, 4, 4});
}

TEST_CASE("batch_starts cuts at chain ends and only cuts a chain longer than a frame",
          "[client]") {
  const uint16_t L = ledger::transfer_linked;
  CHECK(client::batch_starts({}, 4).empty());
  CHECK(client::batch_starts({0, 0, 0, 0, 0}, 2) == std::vector<size_t>{0, 2, 4});
  CHECK(client::batch_starts({0, L, L, 0, 0}, 3) == std::vector<size_t>{0, 1, 4});
  CHECK(client::batch_starts({L, L, L, L, 0}, 2) == std::vector<size_t>{0, 2, 4});
}

TEST_CASE("busy is retried with backoff, and surfaced with its status once retries run out",
          "[client]") {
  test::fake_server server;
  client::options o;
  o.busy_backoff_min = 1ms;
  client::blocking_client c(o);
  c.connect("127.0.0.1", server.port, 2s);
  auto t = transfer(7, 5);
  t.user_data_64 = 0xB05; // busy once
  CHECK(c.create_transfers({t}).empty());
  CHECK(server.busy_sent == 1);

  t.id = 8;
  t.user_data_64 = 0xB06; // busy always
  const auto e = error_of([&] { c.create_transfers({t}); });
  CHECK(e.kind == error_kind::status);
  CHECK(e.status == wire::status::busy);
  CHECK(server.busy_sent == 2 + static_cast<int>(o.busy_retries_max)); // the first try and every retry
}

TEST_CASE("replies that come out of order reach the request with their request_id", "[client]") {
  test::fake_server server;
  auto c = client::connection::connect("127.0.0.1", server.port);
  auto held = c->lookup_accounts({777, 1'000'001, 778}); // answered after the next one
  auto next = c->lookup_accounts({5});
  const auto first = held.get();
  const auto second = next.get();
  REQUIRE(first.size() == 2); // 1'000'001 is missing: skipped
  CHECK(first[0].id == 777);
  CHECK(first[1].id == 778);
  REQUIRE(second.size() == 1);
  CHECK(second[0].id == 5);
}

TEST_CASE("many pipelined requests keep within the server's in-flight limit", "[client]") {
  test::fake_server server;
  auto c = client::connection::connect("127.0.0.1", server.port);
  std::vector<std::future<std::vector<ledger::transfer>>> futures;
  for (u128 i = 1; i <= 40; ++i) futures.push_back(c->lookup_transfers({i, i + 1000}));
  for (size_t i = 0; i < futures.size(); ++i) {
    const auto got = futures[i].get();
    REQUIRE(got.size() == 2);
    CHECK(got[0].id == i + 1);
    CHECK(got[1].id == i + 1 + 1000);
  }
  CHECK(server.outstanding_max <= 2);
  CHECK(server.outstanding_max >= 1);
}

TEST_CASE("lookups larger than a frame are split and come back in request order", "[client]") {
  test::fake_server server;
  client::blocking_client c;
  c.connect("127.0.0.1", server.port, 2s);
  std::vector<u128> ids;
  for (u128 i = 1; i <= 11; ++i) ids.push_back(i);
  const auto got = c.lookup_accounts(ids);
  REQUIRE(got.size() == 11);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].id == i + 1);
}

TEST_CASE("a request without a reply times out and the connection stays usable", "[client]") {
  test::fake_server server;
  client::options o;
  o.request_timeout = 200ms;
  client::blocking_client c(o);
  c.connect("127.0.0.1", server.port, 2s);
  const auto start = std::chrono::steady_clock::now();
  const auto e = error_of([&] { c.lookup_transfers({666}); });
  CHECK(e.kind == error_kind::timeout);
  CHECK(std::chrono::steady_clock::now() - start >= 190ms);
  // The unanswered request still holds one of the two slots; the other one serves.
  CHECK(c.lookup_transfers({1}).size() == 1);
  CHECK(c.lookup_transfers({2}).size() == 1);
}

TEST_CASE("a frame status from the server is an error carrying that status", "[client]") {
  test::fake_server server;
  client::blocking_client c;
  c.connect("127.0.0.1", server.port, 2s);
  wire::filter f;
  f.account_id = 13;
  f.limit = 4;
  const auto e = error_of([&] { c.get_account_balances(f); });
  CHECK(e.kind == error_kind::status);
  CHECK(e.status == wire::status::store_unavailable);
  CHECK(std::string(e.what()).find("store_unavailable") != std::string::npos);
  // A bad filter is refused by the server's decoder: filter_invalid.
  f.limit = 0;
  CHECK(error_of([&] { c.get_account_balances(f); }).status == wire::status::filter_invalid);
}

TEST_CASE("every operation of the blocking client, with the context echoed", "[client]") {
  test::fake_server server;
  client::options o;
  o.client_id = 9;
  client::blocking_client c(o);
  c.connect("127.0.0.1", server.port, 2s);

  ledger::account a{};
  a.ledger = 1;
  a.code = 1;
  std::vector<ledger::account> accounts(3, a);
  accounts[0].id = 1;
  accounts[2].id = 3; // accounts[1] has id 0
  const auto created = c.create_accounts(accounts);
  REQUIRE(created.size() == 1);
  CHECK(created[0].index == 1);
  CHECK(created[0].result == ledger::account_result::id_must_not_be_zero);

  wire::context ctx;
  ctx.trace_id = 77;
  ctx.business_id = 42;
  ctx.shadow = true;
  CHECK(c.create_transfers({transfer(1, 1)}, ctx).empty());
  CHECK(c.lookup_accounts({1, 2}).size() == 2);
  CHECK(c.lookup_transfers({1}).at(0).amount == 10);
  wire::filter f;
  f.account_id = 1;
  f.limit = 2;
  f.timestamp_min = 50;
  const auto page = c.get_account_transfers(f);
  REQUIRE(page.size() == 2);
  CHECK(page[0].timestamp == 50);
  CHECK(page[1].timestamp == 51);
  const auto balances = c.get_account_balances(f);
  REQUIRE(balances.size() == 1);
  CHECK(balances[0].credits_posted == 500);

  const auto contexts = server.contexts();
  REQUIRE(contexts.size() >= 3);
  for (const auto& x : contexts) CHECK(x.client_id == 9);
  const wire::context& sent = contexts[2]; // hello, create_accounts, create_transfers
  CHECK(sent.trace_id == 77);
  CHECK(sent.business_id == 42);
  CHECK(sent.shadow);
}

TEST_CASE("submit_payments answers every command in order, with indexes into the whole call, "
          "across frames of batch_events_max",
          "[client]") {
  test::fake_server server;
  client::blocking_client c;
  c.connect("127.0.0.1", server.port, 2s);
  std::vector<ledger::payments::payment_command> commands;
  for (u128 i = 0; i < 6; ++i) {
    ledger::payments::payment_command cmd{};
    cmd.key = 100 + i;
    cmd.order_id = 900 + i;
    cmd.account_id = 7;
    cmd.amount = i == 4 ? 0 : 1000 + i;
    cmd.ledger = 840;
    cmd.kind = uint16_t(ledger::payments::kind::topup);
    commands.push_back(cmd);
  }
  const auto replies = c.submit_payments(commands);
  REQUIRE(replies.size() == 6);
  for (uint32_t i = 0; i < 6; ++i) {
    CHECK(replies[i].index == i);
    CHECK(replies[i].order_id == 900 + i);
  }
  CHECK(replies[4].result == uint32_t(ledger::payments::payment_result::amount_must_not_be_zero));
  CHECK(replies[5].result == uint32_t(ledger::payments::payment_result::in_progress));
  CHECK(replies[5].amount == 1005);
  CHECK(server.payment_frame_events() == std::vector<uint32_t>{4, 2});
  CHECK(c.submit_payments({}).empty()); // nothing to send: no frame
}

TEST_CASE("lookup_orders asks for no more orders per frame than a reply frame holds, and "
          "leaves missing ones out",
          "[client]") {
  test::fake_server server; // 768-byte frames: (768 - 128) / 256 = 2 orders a reply
  client::blocking_client c;
  c.connect("127.0.0.1", server.port, 2s);
  const auto orders = c.lookup_orders({5, 1'000'001, 6, 7, 5});
  REQUIRE(orders.size() == 4);
  CHECK(orders[0].id == 5);
  CHECK(orders[1].id == 6);
  CHECK(orders[2].id == 7);
  CHECK(orders[3].id == 5);
  CHECK(orders[0].state == uint16_t(ledger::payments::order_state::created));
  CHECK(server.payment_frame_events() == std::vector<uint32_t>{2, 2, 1});
}

TEST_CASE("connecting where nobody listens fails with a connection error", "[client]") {
  uint16_t port;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  } // closed again: nobody listens there now
  client::blocking_client c;
  const auto e = error_of([&] { c.connect("127.0.0.1", port, 2s); });
  CHECK(e.kind == error_kind::connection);
  CHECK_FALSE(c.connected());
}

TEST_CASE("a server that never answers hello makes connect time out", "[client]") {
  test::fake_server server(test::fake_server::default_hello(), /*silent=*/true);
  client::blocking_client c;
  const auto start = std::chrono::steady_clock::now();
  const auto e = error_of([&] { c.connect("127.0.0.1", server.port, 300ms); });
  CHECK(e.kind == error_kind::timeout);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("a lost connection fails every request in flight and later ones", "[client]") {
  test::fake_server server;
  client::options o;
  o.request_timeout = 5s;
  auto c = client::connection::connect("127.0.0.1", server.port, o);
  auto pending = c->lookup_transfers({666}); // in flight, never answered
  auto dropped = c->lookup_transfers({555}); // the server closes the connection
  for (auto* f : {&pending, &dropped}) {
    const auto e = error_of([&] { f->get(); });
    CHECK(e.kind == error_kind::connection);
  }
  CHECK_FALSE(c->is_open());
  CHECK(error_of([&] { c->lookup_accounts({1}).get(); }).kind == error_kind::connection);
}
