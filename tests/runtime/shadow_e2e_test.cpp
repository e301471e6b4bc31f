// End-to-end: the shadow store of stress tests in a real kassad. Requests with the shadow flag
// run through the same code into <data_dir>/shadow; the real store never sees them, nor they it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "tests/ledger/ledger_fixture.hpp"
#include "tests/process.hpp"
#include "tests/runtime/kassad_fixture.hpp"

using namespace kassa;
using namespace kassa::test;
using namespace std::chrono_literals;

namespace {

wire::context shadow_ctx() {
  wire::context ctx;
  ctx.shadow = true;
  return ctx;
}

wire::status status_of(const std::function<void()>& request) {
  try {
    request();
  } catch (const client::error& e) {
    return e.status;
  }
  return wire::status::ok;
}

ledger::account only(const std::vector<ledger::account>& found) {
  REQUIRE(found.size() == 1);
  return found[0];
}

// The same ids in both stores with different fields: accounts 1 and 2 in each, account 3 and
// transfer 101 only in the shadow store, transfer 100 in both with other amounts.
void fill_both_stores(client::blocking_client& c) {
  const wire::context shadow = shadow_ctx();
  REQUIRE(c.create_accounts({make_account(1), make_account(2)}).empty());
  REQUIRE(c.create_accounts({make_account(1, 1, 0, 77), make_account(2, 1, 0, 77), make_account(3, 1, 0, 77)},
                            shadow)
              .empty());
  REQUIRE(c.create_transfers({make_transfer(100, 1, 2, 10)}).empty());
  // the real store's transfer 100 does not exist here: no exists_with_different_amount
  REQUIRE(c.create_transfers({make_transfer(100, 1, 2, 500), make_transfer(101, 2, 3, 70)}, shadow).empty());
}

// What fill_both_stores left, seen from each side.
void check_both_stores(client::blocking_client& c) {
  const wire::context shadow = shadow_ctx();
  const ledger::account real1 = only(c.lookup_accounts({1}));
  CHECK(real1.code == 10);
  CHECK(real1.debits_posted == 10);
  CHECK(only(c.lookup_accounts({2})).credits_posted == 10);
  CHECK(c.lookup_accounts({3}).empty());
  const ledger::account shadow1 = only(c.lookup_accounts({1}, shadow));
  CHECK(shadow1.code == 77);
  CHECK(shadow1.debits_posted == 500);
  const ledger::account shadow2 = only(c.lookup_accounts({2}, shadow));
  CHECK(shadow2.credits_posted == 500);
  CHECK(shadow2.debits_posted == 70);
  CHECK(only(c.lookup_accounts({3}, shadow)).credits_posted == 70);

  const auto real_transfers = c.lookup_transfers({100, 101});
  REQUIRE(real_transfers.size() == 1);
  CHECK(real_transfers[0].amount == 10);
  const auto shadow_transfers = c.lookup_transfers({100, 101}, shadow);
  REQUIRE(shadow_transfers.size() == 2);
  CHECK(shadow_transfers[0].amount == 500);
  CHECK(shadow_transfers[1].amount == 70);

  wire::filter f;
  f.account_id = 2;
  f.limit = 10;
  f.flags = wire::filter_debits | wire::filter_credits;
  const auto real_history = c.get_account_transfers(f);
  REQUIRE(real_history.size() == 1);
  CHECK(real_history[0].amount == 10);
  const auto shadow_history = c.get_account_transfers(f, shadow);
  REQUIRE(shadow_history.size() == 2);
  CHECK(shadow_history[0].amount == 500);
  CHECK(shadow_history[1].amount == 70);
}

} // namespace

TEST_CASE("shadow requests move shadow balances only; the same ids live in both stores and lookups do not cross",
          "[e2e][shadow]") {
  kassad_instance k("  shards: 2\n");
  {
    auto c = k.connect();
    fill_both_stores(c);
    check_both_stores(c);
    // a repeat is idempotent in its own store: same fields exist, other fields are refused
    const auto again = c.create_transfers({make_transfer(100, 1, 2, 500)}, shadow_ctx());
    REQUIRE(again.size() == 1);
    CHECK(again[0].result == ledger::transfer_result::exists);
    const auto other = c.create_transfers({make_transfer(100, 1, 2, 500)});
    REQUIRE(other.size() == 1);
    CHECK(other[0].result == ledger::transfer_result::exists_with_different_amount);
  }
  CHECK(std::filesystem::exists(k.data_dir() + "/shadow/shard-001/data.mdb"));
  CHECK(std::filesystem::exists(k.data_dir() + "/shadow/sagas"));

  // the CLI: --shadow reads the shadow store
  std::string out;
  CHECK(run({KASSA_CLI, "lookup-account", "3", "--address", k.address()}, out) == 1);
  CHECK(run({KASSA_CLI, "lookup-account", "3", "--shadow", "--address", k.address(), "--json"}, out) == 0);
  INFO(out);
  CHECK(out.find("\"credits_posted\":\"70\"") != std::string::npos);
  CHECK(run({KASSA_CLI, "--shadow", "lookup-transfer", "101", "--address", k.address()}, out) == 0);

  // kill -9: both stores come back as they were acknowledged
  REQUIRE(k.stop(SIGKILL) != 0);
  k.start();
  {
    auto c = k.connect();
    check_both_stores(c);
  }
  REQUIRE(k.stop() == 0);
  INFO(k.output());
  CHECK(k.output().find("msg=\"shard recovered\" shard=1 path=" + k.data_dir() + "/shadow/shard-001") !=
        std::string::npos);
  CHECK(k.output().find("shadow=1") != std::string::npos);

  // kassa verify checks both stores; --shadow only the shadow one
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir()}, out) == 0);
  INFO(out);
  CHECK(out.find(k.data_dir() + "/shard-001: verify: consistent") != std::string::npos);
  CHECK(out.find(k.data_dir() + "/shadow/shard-001: verify: consistent") != std::string::npos);
  CHECK(out.find(k.data_dir() + "/shadow: cross-shard: consistent") != std::string::npos);
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir(), "--shadow"}, out) == 0);
  CHECK(out.find(k.data_dir() + "/shard-000") == std::string::npos);
  CHECK(out.find(k.data_dir() + "/shadow/shard-000: verify: consistent") != std::string::npos);
}

TEST_CASE("the shadow store keeps the shard count of the real one and refuses another", "[e2e][shadow]") {
  auto config_with = [](const std::string& data, int shards, const std::string& dir) {
    const std::string path = dir + "/kassa.yaml";
    std::ofstream(path) << "server:\n  port: 0\nstore:\n  data_dir: " << data
                        << "\n  durability: none\n  map_size_mib: 64\n  shards: " << shards << "\n";
    return path;
  };
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  {
    process kassad({KASSA_KASSAD, "--config", config_with(data, 2, dir.path())});
    REQUIRE(kassad.wait_for_output("msg=ready", 20s));
    kassad.signal(SIGTERM);
    REQUIRE(kassad.wait(20s) == 0);
  }
  // the real store was created anew, the shadow store still holds two shards
  std::string out;
  REQUIRE(run({"/bin/rm", "-rf", data + "/shard-000", data + "/shard-001", data + "/sagas"}, out) == 0);
  CHECK(run({KASSA_KASSAD, "--config", config_with(data, 3, dir.path())}, out) == 2);
  INFO(out);
  CHECK(out.find("store.shards: is 3 but the data directory " + data + "/shadow holds 2 shards") !=
        std::string::npos);
  CHECK(out.find("(or delete " + data + "/shadow, which holds shadow test data only)") != std::string::npos);
}

TEST_CASE("with shadow.enabled false shadow requests are answered shadow_disabled and change nothing",
          "[e2e][shadow]") {
  kassad_instance k("shadow:\n  enabled: false\n");
  auto c = k.connect();
  const wire::context shadow = shadow_ctx();
  CHECK(status_of([&] { c.create_accounts({make_account(1)}, shadow); }) == wire::status::shadow_disabled);
  CHECK(status_of([&] { c.create_transfers({make_transfer(100, 1, 2, 10)}, shadow); }) ==
        wire::status::shadow_disabled);
  CHECK(status_of([&] { c.lookup_accounts({1}, shadow); }) == wire::status::shadow_disabled);
  CHECK(status_of([&] { c.submit_payments({ledger::payments::payment_command{}}, shadow); }) ==
        wire::status::shadow_disabled);
  // nothing reached the real store
  CHECK(c.lookup_accounts({1}).empty());
  CHECK(c.create_accounts({make_account(1)}).empty());
  CHECK(c.lookup_accounts({1}).size() == 1);
  CHECK_FALSE(std::filesystem::exists(k.data_dir() + "/shadow"));
  CHECK(k.output().find("shadow=off") != std::string::npos);

  std::string out;
  CHECK(run({KASSA_CLI, "lookup-account", "1", "--shadow", "--address", k.address()}, out) == 4);
  CHECK(out.find("shadow_disabled") != std::string::npos);
  CHECK(out.find("shadow.enabled: false") != std::string::npos);
  c.close();
  REQUIRE(k.stop() == 0);
}
