// End-to-end: kassad and the kassa CLI as real processes on a temporary data directory.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/process.hpp"

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

TEST_CASE("kassad refuses more than one shard with status 2, saying why", "[e2e]") {
  temp_dir dir;
  const std::string path = write_config(dir, "store:\n  data_dir: " + dir.path() + "/data\n  durability: fsync\n  shards: 2\n");
  std::string out;
  CHECK(run({KASSA_KASSAD, "--config", path}, out) == 2);
  CHECK(out.find("store.shards: this version serves exactly 1 shard") != std::string::npos);
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
