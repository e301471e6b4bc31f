// kassad: the kassa daemon. This stage boots from the YAML topology, opens and recovers every
// shard's store, reports that it is ready, and exits cleanly on SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <pthread.h>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "ledger/state_machine.hpp"
#include "ledger/store/store.hpp"
#include "runtime/data_dir.hpp"
#include "runtime/log.hpp"
#include "runtime/version.hpp"

using namespace kassa;

namespace {

constexpr int exit_runtime_error = 1;

const char* usage =
    "usage: kassad [--config FILE] [--data DIR] [--check-config]\n"
    "\n"
    "Starts the kassa daemon on the YAML topology in FILE (default: config/kassa.yaml).\n"
    "\n"
    "  --config FILE    the configuration file (reference: docs/configuration.md)\n"
    "  --data DIR       overrides store.data_dir\n"
    "  --check-config   validates the configuration, prints it in one line and exits\n"
    "  --version        prints the version\n"
    "\n"
    "Exit status: 0 after a clean stop (SIGTERM or SIGINT), 1 when the store cannot be\n"
    "opened or recovered, 2 for a bad command line or configuration.\n";

struct shard {
  std::unique_ptr<ledger::store::store> store;
  std::unique_ptr<ledger::state_machine> sm;
};

log::level to_log_level(config::log_level l) {
  switch (l) {
    case config::log_level::debug: return log::level::debug;
    case config::log_level::info: return log::level::info;
    case config::log_level::warn: return log::level::warn;
    case config::log_level::error: return log::level::error;
  }
  return log::level::info;
}

} // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/kassa.yaml";
  std::optional<std::string> data_dir_override;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "--data") && i + 1 < argc) {
      (arg == "--config" ? config_path : data_dir_override.emplace()) = argv[++i];
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("kassad %s\n", kassa_version);
      return 0;
    } else {
      std::fprintf(stderr, "kassad: unknown or incomplete argument '%s'\n\n%s", arg.c_str(), usage);
      return config::exit_config_error;
    }
  }

  // Termination signals are blocked in every thread and taken synchronously by main.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  config::config loaded;
  try {
    loaded = config::load_file(config_path);
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "kassad: %s\n", e.what());
    return config::exit_config_error;
  }
  if (data_dir_override) loaded.store.data_dir = *data_dir_override;
  const config::config cfg = loaded;
  log::set_level(to_log_level(cfg.log.level));

  if (check_only) {
    std::printf("config ok: %s data_dir=%s durability=%s shards=%u map_size_mib=%llu\n",
                cfg.source.c_str(), cfg.store.data_dir.c_str(),
                std::string(config::to_string(cfg.store.durability)).c_str(), cfg.store.shards,
                static_cast<unsigned long long>(cfg.store.map_size_mib));
    return 0;
  }

  log::info("starting", {{"version", kassa_version}, {"config", cfg.source},
                         {"data_dir", cfg.store.data_dir}});
  std::string error;
  runtime::data_lock lock;
  if (!runtime::make_directories(cfg.store.data_dir, error) || !lock.acquire(cfg.store.data_dir, error)) {
    log::error("cannot use the data directory", {{"error", error}});
    return exit_runtime_error;
  }

  std::vector<shard> shards(cfg.store.shards);
  for (uint32_t i = 0; i < cfg.store.shards; ++i) {
    ledger::store::options o;
    o.path = runtime::shard_path(cfg.store.data_dir, i);
    o.durability = cfg.store.durability == config::durability::fsync ? ledger::store::durability::fsync
                                                                     : ledger::store::durability::none;
    o.map_size_bytes = cfg.store.map_size_mib << 20;
    o.transfers_resident_max = cfg.store.transfers_resident_max;
    ledger::store::error err;
    shards[i].store = ledger::store::store::open(o, err);
    if (!shards[i].store) {
      log::error("cannot open the store", {{"shard", std::to_string(i)}, {"path", o.path},
                                           {"code", std::string(ledger::store::name(err.code))},
                                           {"error", err.message}});
      return exit_runtime_error;
    }
    shards[i].sm = std::make_unique<ledger::state_machine>();
    err = shards[i].store->load(*shards[i].sm);
    if (!err.ok()) {
      log::error("cannot recover the store", {{"shard", std::to_string(i)}, {"path", o.path},
                                              {"code", std::string(ledger::store::name(err.code))},
                                              {"error", err.message}});
      return exit_runtime_error;
    }
    log::info("shard recovered", {{"shard", std::to_string(i)}, {"path", o.path},
                                  {"accounts", std::to_string(shards[i].sm->account_count())},
                                  {"transfers", std::to_string(shards[i].sm->transfer_id_count())},
                                  {"commits", std::to_string(shards[i].store->commit_sequence())}});
  }

  log::info("ready", {{"address", cfg.server.address + ":" + std::to_string(cfg.server.port)},
                      {"shards", std::to_string(cfg.store.shards)},
                      {"durability", std::string(config::to_string(cfg.store.durability))},
                      {"data_dir", cfg.store.data_dir}});

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log::info("stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  shards.clear(); // closes every LMDB environment; every acknowledged commit is already durable
  log::info("stopped");
  return 0;
}
