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

#include "actors/accounting.hpp"
#include "actors/channel.hpp"
#include "actors/directory.hpp"
#include "actors/payments.hpp"
#include "actors/payments_writer.hpp"
#include "actors/reconciler.hpp"
#include "ledger/store/payments_store.hpp"
#include "actors/shard.hpp"
#include "actors/writer.hpp"
#include "config/config.hpp"
#include "ledger/store/saga_log.hpp"
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
    "opened or recovered, 2 for a bad command line or configuration (also a store.shards\n"
    "that differs from the shards the data directory holds).\n";

constexpr auto drain_timeout = std::chrono::seconds(30);

// The saga log holds only the sagas in flight (a few per round), never history.
constexpr uint64_t saga_log_map_bytes = uint64_t{64} << 20;

std::string hot_accounts_summary(const config::hot_accounts_config& h) {
  std::string s = std::to_string(h.static_accounts.size()) + " static, adaptive ";
  if (h.adaptive.enabled) {
    s += "on (" + std::to_string(h.adaptive.credits_min) + " credits in " +
         std::to_string(h.adaptive.window_ms) + " ms, " +
         std::to_string(h.adaptive.sub_accounts) + " sub-accounts)";
  } else {
    s += "off";
  }
  s += ", sweep ";
  s += h.sweep_interval_ms == 0 ? "never" : "every " + std::to_string(h.sweep_interval_ms) + " ms";
  return s;
}

std::string access_summary(const config::access_config& a) {
  return std::string(a.required ? "required" : "optional") + ", " + std::to_string(a.clients.size()) +
         (a.clients.size() == 1 ? " client" : " clients");
}

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
    if (loaded.payments.enabled) actors::check_flows(loaded.payments); // step names: plugins
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "kassad: %s\n", e.what());
    return config::exit_config_error;
  }
  if (data_dir_override) loaded.store.data_dir = *data_dir_override;
  const config::config cfg = loaded;
  log::set_level(to_log_level(cfg.log.level));

  if (check_only) {
    std::printf("config ok: %s data_dir=%s durability=%s shards=%u map_size_mib=%llu "
                "hot_accounts=\"%s\"\n",
                cfg.source.c_str(), cfg.store.data_dir.c_str(),
                std::string(config::to_string(cfg.store.durability)).c_str(), cfg.store.shards,
                static_cast<unsigned long long>(cfg.store.map_size_mib),
                hot_accounts_summary(cfg.hot_accounts).c_str());
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

  // Accounts map to shards by hash of their id modulo the shard count: another count would
  // look for every account in the wrong shard.
  const std::string mismatch = runtime::shard_count_mismatch(cfg.store.data_dir, cfg.store.shards);
  if (!mismatch.empty()) {
    std::fprintf(stderr, "kassad: %s: store.shards: %s\n", cfg.source.c_str(), mismatch.c_str());
    return config::exit_config_error;
  }
  const ledger::store::durability durability = cfg.store.durability == config::durability::fsync
                                                   ? ledger::store::durability::fsync
                                                   : ledger::store::durability::none;

  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", 2); // two workers beat four on two cores
  caf::actor_system sys{caf_cfg};

  caf::actor directory;
  std::vector<caf::actor> shards, writers;
  // Whatever path leaves main, the actors are told to exit first, or the actor system would
  // wait for them forever.
  struct exit_on_return {
    caf::actor& directory;
    std::vector<caf::actor>& shards;
    std::vector<caf::actor>& writers;
    ~exit_on_return() {
      if (directory) caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
      for (const auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      for (const auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
  } exit_guard{directory, shards, writers};
  std::vector<std::shared_ptr<ledger::store::store>> stores;
  for (uint32_t i = 0; i < cfg.store.shards; ++i) {
    ledger::store::options o;
    o.path = runtime::shard_path(cfg.store.data_dir, i);
    o.durability = durability;
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

  // The saga log records the legs of every transfer across shards before they are written, so
  // that a crash between them is finished at the next start. One shard has no such transfers
  // and keeps the data directory as it was: no saga log.
  std::shared_ptr<ledger::store::saga_log> saga_log;
  if (cfg.store.shards > 1) {
    const std::string path = runtime::saga_log_path(cfg.store.data_dir);
    ledger::store::error err;
    saga_log = ledger::store::saga_log::open(path, durability, saga_log_map_bytes, err);
    if (!saga_log) {
      log::error("cannot open the saga log", {{"path", path},
                                              {"code", std::string(ledger::store::name(err.code))},
                                              {"error", err.message}});
      return exit_runtime_error;
    }
  }

  actors::directory_options dopts;
  dopts.shards = shards;
  dopts.saga_log = saga_log;
  dopts.queue_events_max = cfg.batching.queue_events_max;
  // A shard takes at most one leg per event of a round, plus the few accounts kassa creates
  // for itself; half a group leaves that room.
  dopts.round_events_max = std::max<size_t>(1, cfg.batching.commit_events_max / 2);
  for (const config::hot_account_static& rule : cfg.hot_accounts.static_accounts) {
    dopts.hot_static.push_back(actors::hot_account_rule{rule.id, rule.sub_accounts});
  }
  if (cfg.hot_accounts.adaptive.enabled) { // a window of 0 ns disables adaptive splitting
    dopts.adaptive_window_ns = uint64_t{cfg.hot_accounts.adaptive.window_ms} * 1'000'000;
    dopts.adaptive_credits_min = cfg.hot_accounts.adaptive.credits_min;
    dopts.adaptive_sub_accounts = cfg.hot_accounts.adaptive.sub_accounts;
  }
  dopts.sweep_interval_ns = uint64_t{cfg.hot_accounts.sweep_interval_ms} * 1'000'000;
  dopts.clock = actors::now_ns;
  dopts.log_error = [](const std::string& msg, const std::string& detail) {
    log::error(msg, {{"error", detail}});
  };
  dopts.log_info = [](const std::string& msg, const std::string& detail) {
    if (detail.empty()) log::info(msg);
    else log::info(msg, {{"detail", detail}});
  };
  directory = actors::spawn_directory(sys, std::move(dopts), error);
  if (!directory) {
    log::error("cannot start the directory", {{"error", error}});
    return exit_runtime_error;
  }

  // The payment core, when enabled: its store, channels, side-link consumers and gateway.
  caf::actor payments, payments_writer, accounting, reconciler;
  std::vector<caf::actor> channels;
  struct exit_payments {
    std::vector<caf::actor*> actors;
    std::vector<caf::actor>& channels;
    ~exit_payments() {
      for (auto* a : actors)
        if (*a) caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
      for (const auto& a : channels) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
  } payments_exit{{&payments, &payments_writer, &accounting, &reconciler}, channels};
  if (cfg.payments.enabled) {
    ledger::store::error err;
    auto pstore = std::shared_ptr<ledger::store::payments_store>(
        ledger::store::payments_store::open(cfg.store.data_dir + "/payments", durability, cfg.store.map_size_mib << 20, err));
    if (!pstore) {
      log::error("cannot open the payments store", {{"error", err.message}});
      return exit_runtime_error;
    }
    payments_writer = actors::spawn_payments_writer(sys, pstore);
    std::vector<std::pair<std::string, caf::actor>> named;
    for (const auto& p : cfg.payments.providers) {
      actors::channel_options co;
      co.name = p.name;
      co.host = p.host;
      co.port = p.port;
      co.path_prefix = p.path_prefix;
      co.inflight_max = p.inflight_max;
      co.connections_max = p.connections_max;
      co.timeout_ms = p.timeout_ms;
      co.retries_max = p.retries_max;
      co.backoff_ms_min = p.backoff_ms_min;
      co.backoff_ms_max = p.backoff_ms_max;
      co.breaker_failures_min = p.breaker.failures_min;
      co.breaker_window_ms = p.breaker.window_ms;
      co.breaker_open_ms = p.breaker.open_ms;
      co.events_poll_ms = p.events_poll_ms;
      co.credential_ttl_ms = p.credential_ttl_ms;
      co.credentials = p.credentials;
      channels.push_back(actors::spawn_channel(sys, co));
      named.emplace_back(p.name, channels.back());
    }
    if (cfg.payments.reconciliation.enabled) {
      actors::reconciler_options ro;
      ro.payments = pstore;
      ro.path = cfg.store.data_dir + "/recon";
      ro.durability = durability;
      ro.channels = named;
      ro.interval_ms = cfg.payments.reconciliation.interval_ms;
      ro.grace_ms = cfg.payments.reconciliation.grace_ms;
      reconciler = actors::spawn_reconciler(sys, ro, err);
      if (!reconciler) {
        log::error("cannot start reconciliation", {{"error", err.message}});
        return exit_runtime_error;
      }
    }
    if (cfg.payments.accounting.enabled) {
      actors::accounting_options ao;
      ao.payments = pstore;
      ao.path = cfg.store.data_dir + "/accounting";
      ao.durability = durability;
      ao.interval_ms = cfg.payments.accounting.interval_ms;
      ao.batch_events_max = cfg.payments.accounting.batch_events_max;
      ao.log_error = [](const std::string& msg) { log::error("accounting", {{"error", msg}}); };
      accounting = actors::spawn_accounting(sys, ao, err);
      if (!accounting) {
        log::error("cannot start accounting", {{"error", err.message}});
        return exit_runtime_error;
      }
    }
    actors::payments_options po;
    po.cfg = cfg.payments;
    po.shards = cfg.store.shards;
    po.directory = directory;
    po.writer = payments_writer;
    po.reconciler = reconciler;
    po.channels = channels;
    po.store = pstore;
    po.clock = actors::now_ns;
    po.log_info = [](const std::string& msg) {
      if (!msg.empty()) log::info(msg);
    };
    po.log_error = [](const std::string& msg) { log::error(msg); };
    payments = actors::spawn_payments(sys, std::move(po));
  }

  runtime::server_options so;
  so.payments = payments;
  so.address = cfg.server.address;
  so.port = cfg.server.port;
  so.connections_max = cfg.server.connections_max;
  so.frame_bytes_max = cfg.server.frame_bytes_max;
  so.batch_events_max = cfg.batching.batch_events_max;
  so.requests_inflight_max = cfg.server.requests_inflight_max;
  so.ledger = directory;
  so.access.required = cfg.access.required;
  so.access.authentication_failures_max = cfg.access.authentication_failures_max;
  for (const config::access_client& c : cfg.access.clients) {
    runtime::access::client a;
    a.id = c.id;
    static_assert(sizeof a.key == sizeof c.key);
    std::memcpy(a.key, c.key, sizeof a.key);
    a.operations = c.operations; // the same bits: bit n is operation n
    a.ledgers = c.ledgers;
    so.access.clients.push_back(std::move(a));
  }
  if (!cfg.access.required && !cfg.access.clients.empty()) {
    log::warn("access.required is false: connections that do not authenticate may make any "
              "request; the clients' limits bind only those that do");
  }
  runtime::server server(sys, so);
  if (!server.start(error)) {
    log::error("cannot start the server", {{"error", error}});
    return exit_runtime_error;
  }

  log::info("ready", {{"address", cfg.server.address + ":" + std::to_string(server.port())},
                      {"shards", std::to_string(cfg.store.shards)},
                      {"durability", std::string(config::to_string(cfg.store.durability))},
                      {"hot_accounts", hot_accounts_summary(cfg.hot_accounts)},
                      {"access", access_summary(cfg.access)},
                      {"data_dir", cfg.store.data_dir}});

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log::info("stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"},
                         {"requests_inflight", std::to_string(server.requests_inflight())}});
  const size_t unanswered = server.drain(drain_timeout);
  bool durable = true;
  {
    // The directory first: it finishes its queue and the sagas in flight, then the shards
    // make what they acknowledged durable.
    caf::scoped_actor self{sys};
    auto drain = [&](const caf::actor& a) {
      self->request(a, caf::infinite, actors::drain_atom::value)
          .receive([&](actors::drain_atom, bool ok) { durable = durable && ok; },
                   [&](caf::error&) { durable = false; });
    };
    drain(directory);
    for (const caf::actor& shard : shards) drain(shard);
  }
  log::info("stopped", {{"unanswered", std::to_string(unanswered)},
                        {"durable", durable ? "yes" : "no"}});
  return unanswered == 0 && durable ? 0 : exit_runtime_error;
}

