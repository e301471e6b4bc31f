// kassad: the kassa daemon. Boots from the YAML topology, recovers the store, serves the
// binary protocol on TCP, and on SIGTERM or SIGINT drains what is in flight and exits 0.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <pthread.h>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/shard.hpp"
#include "actors/writer.hpp"
#include "config/config.hpp"
#include "ledger/store/store.hpp"
#include "runtime/data_dir.hpp"
#include "runtime/log.hpp"
#include "runtime/server.hpp"
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

constexpr auto drain_timeout = std::chrono::seconds(30);

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

  if (cfg.store.shards != 1) {
    // Accounts across shards need clearing legs for transfers between them; until those are
    // in, more than one shard would split money it cannot move.
    std::fprintf(stderr, "kassad: %s: store.shards: this version serves exactly 1 shard (got %u)\n",
                 cfg.source.c_str(), cfg.store.shards);
    return config::exit_config_error;
  }

  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", 2); // two workers beat four on two cores
  caf::actor_system sys{caf_cfg};

  std::vector<caf::actor> shards, writers;
  // Whatever path leaves main, the actors are told to exit first, or the actor system would
  // wait for them forever.
  struct exit_on_return {
    std::vector<caf::actor>& shards;
    std::vector<caf::actor>& writers;
    ~exit_on_return() {
      for (const auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      for (const auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
  } exit_guard{shards, writers};
  std::vector<std::shared_ptr<ledger::store::store>> stores;
  for (uint32_t i = 0; i < cfg.store.shards; ++i) {
    ledger::store::options o;
    o.path = runtime::shard_path(cfg.store.data_dir, i);
    o.durability = cfg.store.durability == config::durability::fsync ? ledger::store::durability::fsync
                                                                     : ledger::store::durability::none;
    o.map_size_bytes = cfg.store.map_size_mib << 20;
    o.transfers_resident_max = cfg.store.transfers_resident_max;
    ledger::store::error err;
    std::shared_ptr<ledger::store::store> store = ledger::store::store::open(o, err);
    if (!store) {
      log::error("cannot open the store", {{"shard", std::to_string(i)}, {"path", o.path},
                                           {"code", std::string(ledger::store::name(err.code))},
                                           {"error", err.message}});
      return exit_runtime_error;
    }
    actors::shard_options so;
    so.shard = i;
    so.store = store;
    so.writer = actors::spawn_writer(sys, store);
    writers.push_back(so.writer);
    so.transfers_resident_max = cfg.store.transfers_resident_max;
    so.commit_events_max = cfg.batching.commit_events_max;
    so.commit_delay_ns = uint64_t{cfg.batching.commit_delay_us_max} * 1000;
    so.query_limit_max = cfg.batching.batch_events_max;
    so.log_error = [i](const std::string& msg, const std::string& detail) {
      log::error(msg, {{"shard", std::to_string(i)}, {"error", detail}});
    };
    caf::actor shard = actors::spawn_shard(sys, so, err);
    if (!shard) {
      log::error("cannot recover the store", {{"shard", std::to_string(i)}, {"path", o.path},
                                              {"code", std::string(ledger::store::name(err.code))},
                                              {"error", err.message}});
      return exit_runtime_error;
    }
    log::info("shard recovered", {{"shard", std::to_string(i)}, {"path", o.path},
                                  {"commits", std::to_string(store->commit_sequence())}});
    shards.push_back(shard);
    stores.push_back(store);
  }

  runtime::server_options so;
  so.address = cfg.server.address;
  so.port = cfg.server.port;
  so.connections_max = cfg.server.connections_max;
  so.frame_bytes_max = cfg.server.frame_bytes_max;
  so.batch_events_max = cfg.batching.batch_events_max;
  so.requests_inflight_max = cfg.server.requests_inflight_max;
  so.shards = shards;
  runtime::server server(sys, so);
  if (!server.start(error)) {
    log::error("cannot start the server", {{"error", error}});
    return exit_runtime_error;
  }

  log::info("ready", {{"address", cfg.server.address + ":" + std::to_string(server.port())},
                      {"shards", std::to_string(cfg.store.shards)},
                      {"durability", std::string(config::to_string(cfg.store.durability))},
                      {"data_dir", cfg.store.data_dir}});

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log::info("stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"},
                         {"requests_inflight", std::to_string(server.requests_inflight())}});
  const size_t unanswered = server.drain(drain_timeout);
  bool durable = true;
  {
    caf::scoped_actor self{sys};
    for (const caf::actor& shard : shards) {
      self->request(shard, caf::infinite, actors::drain_atom::value)
          .receive([&](actors::drain_atom, bool ok) { durable = durable && ok; },
                   [&](caf::error&) { durable = false; });
    }
  }
  log::info("stopped", {{"unanswered", std::to_string(unanswered)},
                        {"durable", durable ? "yes" : "no"}});
  return unanswered == 0 && durable ? 0 : exit_runtime_error;
}

