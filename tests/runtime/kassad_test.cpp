// End-to-end: kassad and the kassa CLI as real processes on a temporary data directory.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/ledger/ledger_fixture.hpp"
#include "tests/process.hpp"
#include "tests/runtime/kassad_fixture.hpp"

using namespace kassa;
using namespace kassa::test;
using namespace std::chrono_literals;

namespace {

std::string write_config(const temp_dir& dir, const std::string& body) {
  const std::string path = dir.path() + "/kassa.yaml";
  std::ofstream(path) << body;
  return path;
}

std::string minimal_config(const temp_dir& dir) {
  return write_config(dir, "store:\n  data_dir: " + dir.path() + "/data\n  durability: fsync\n"
                           "server:\n  port: 0\n");
}

} // namespace

TEST_CASE("kassad starts on an empty data directory, reports ready and stops cleanly on SIGTERM", "[e2e]") {
  temp_dir dir;
  process kassad({KASSA_KASSAD, "--config", minimal_config(dir)});
  REQUIRE(kassad.wait_for_output("msg=ready", 20s));
  CHECK(kassad.output().find("durability=fsync") != std::string::npos);
  CHECK(kassad.output().find("shards=1") != std::string::npos);
  kassad.signal(SIGTERM);
  const int status = kassad.wait(20s);
  INFO(kassad.output());
  CHECK(status == 0);
  CHECK(kassad.output().find("msg=stopped") != std::string::npos);
}

TEST_CASE("kassad refuses an invalid configuration with status 2, naming the key and line", "[e2e]") {
  temp_dir dir;
  const std::string path = write_config(dir, "store:\n  data_dir: /tmp/x\n  durability: sometimes\n");
  std::string out;
  CHECK(run({KASSA_KASSAD, "--config", path}, out) == 2);
  CHECK(out.find(path + ":3: store.durability") != std::string::npos);
}

TEST_CASE("kassad serves several shards and refuses to change their number on an existing store", "[e2e]") {
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  auto config_with = [&](int shards) {
    return write_config(dir, "store:\n  data_dir: " + data + "\n  durability: fsync\n  shards: " +
                                 std::to_string(shards) + "\nserver:\n  port: 0\n"
                                 "hot_accounts:\n  static:\n    - id: 77\n");
  };
  {
    process kassad({KASSA_KASSAD, "--config", config_with(3)});
    REQUIRE(kassad.wait_for_output("msg=ready", 20s));
    CHECK(kassad.output().find("shards=3") != std::string::npos);
    CHECK(kassad.output().find("hot_accounts=\"1 static, adaptive off, sweep every 1000 ms\"") !=
          std::string::npos);
    kassad.signal(SIGTERM);
    const int status = kassad.wait(20s);
    INFO(kassad.output());
    REQUIRE(status == 0);
  }
  for (int shards : {1, 2, 4}) {
    std::string out;
    CHECK(run({KASSA_KASSAD, "--config", config_with(shards)}, out) == 2);
    INFO(out);
    CHECK(out.find("store.shards: is " + std::to_string(shards) + " but the data directory " +
                   data + " holds 3 shards (shard-000 .. shard-002)") != std::string::npos);
    CHECK(out.find("would move accounts between shards") != std::string::npos);
    CHECK(out.find("set store.shards: 3") != std::string::npos);
  }
  // The count it was created with still starts.
  process again({KASSA_KASSAD, "--config", config_with(3)});
  REQUIRE(again.wait_for_output("msg=ready", 20s));
  again.signal(SIGTERM);
  CHECK(again.wait(20s) == 0);
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", data}, out) == 0);
  INFO(out);
  CHECK(out.find("shard-002: verify: consistent") != std::string::npos);
  CHECK(out.find("cross-shard: consistent") != std::string::npos);
}

TEST_CASE("kassad refuses a missing configuration file and an unknown argument with status 2", "[e2e]") {
  std::string out;
  CHECK(run({KASSA_KASSAD, "--config", "/nonexistent/kassa.yaml"}, out) == 2);
  CHECK(out.find("/nonexistent/kassa.yaml") != std::string::npos);
  CHECK(run({KASSA_KASSAD, "--frobnicate"}, out) == 2);
  CHECK(out.find("usage: kassad") != std::string::npos);
}

TEST_CASE("a second kassad on the same data directory is refused", "[e2e]") {
  temp_dir dir;
  const std::string config = minimal_config(dir);
  process first({KASSA_KASSAD, "--config", config});
  REQUIRE(first.wait_for_output("msg=ready", 20s));
  std::string out;
  CHECK(run({KASSA_KASSAD, "--config", config}, out) == 1);
  CHECK(out.find("in use by another kassa process") != std::string::npos);
  first.signal(SIGTERM);
  const int status = first.wait(20s);
  INFO(first.output());
  CHECK(status == 0);
}

TEST_CASE("kassa verify checks a stopped store and refuses one in use", "[e2e]") {
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  process kassad({KASSA_KASSAD, "--config", minimal_config(dir)});
  REQUIRE(kassad.wait_for_output("msg=ready", 20s));
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", data}, out) == 3);
  kassad.signal(SIGTERM);
  REQUIRE(kassad.wait(20s) == 0);
  CHECK(run({KASSA_CLI, "verify", "--data", data}, out) == 0);
  CHECK(out.find("verify: consistent") != std::string::npos);
  CHECK(run({KASSA_CLI, "verify", "--data", data, "--json"}, out) == 0);
  CHECK(out.find("\"consistent\":true") != std::string::npos);
}

TEST_CASE("kassa explains its usage and rejects bad arguments with status 2", "[e2e]") {
  std::string out;
  CHECK(run({KASSA_CLI}, out) == 2);
  CHECK(run({KASSA_CLI, "verify"}, out) == 2);
  CHECK(out.find("--data DIR is required") != std::string::npos);
  CHECK(run({KASSA_CLI, "frobnicate"}, out) == 2);
  CHECK(run({KASSA_CLI, "help", "verify"}, out) == 0);
  CHECK(out.find("usage: kassa verify") != std::string::npos);
  CHECK(run({KASSA_CLI, "verify", "--data", "/nonexistent"}, out) == 3);
}

namespace {

// Accounts 1..16 of ledger 1 on a kassad of four shards, and one transfer from each account
// to the next (most of them between shards); kassad is stopped cleanly afterwards.
void transfers_across_four_shards(kassad_instance& k) {
  auto c = k.connect();
  std::vector<ledger::account> accounts;
  for (u128 id = 1; id <= 16; ++id) accounts.push_back(make_account(id));
  REQUIRE(c.create_accounts(accounts).empty());
  std::vector<ledger::transfer> ts;
  for (u128 i = 0; i < 16; ++i) ts.push_back(make_transfer(1000 + i, 1 + i, 1 + (i + 1) % 16, 10 + i));
  REQUIRE(c.create_transfers(ts).empty());
  const auto after = c.lookup_accounts({1, 2});
  REQUIRE(after.size() == 2);
  CHECK(after[0].debits_posted == 10);
  CHECK(after[0].credits_posted == 25);
  c.close();
  REQUIRE(k.stop() == 0);
}

} // namespace

TEST_CASE("transfers between accounts of different shards leave clearing pairs that verify checks", "[e2e]") {
  kassad_instance k("  shards: 4\n");
  transfers_across_four_shards(k);
  std::string out;
  // Sagas still in the log are not an inconsistency: the next start finishes them.
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir()}, out) == 0);
  INFO(out);
  const bool open = out.find(" open; ") != std::string::npos;
  CHECK((open || out.find("cross-shard: consistent: ") != std::string::npos));
  CHECK(out.find(k.data_dir() + ": cross-shard: consistent: 0 clearing pairs") == std::string::npos);
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir(), "--json"}, out) == 0);
  CHECK(out.find("{\"cross_shard\":true,\"consistent\":true,\"shards\":4,") != std::string::npos);
}

// Expected of the directory: a drained directory has removed the records of the sagas it
// finished, so that verify compares the clearing pairs right after a clean stop.
TEST_CASE("after a clean stop no saga is open and verify compares the clearing pairs", "[e2e]") {
  kassad_instance k("  shards: 4\n");
  transfers_across_four_shards(k);
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir()}, out) == 0);
  INFO(out);
  CHECK(out.find("cross-shard: consistent: ") != std::string::npos);
}
