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

#include "actors/payments.hpp"
#include "config/config.hpp"
#include "runtime/core.hpp"
#include "metrics/shared.hpp"
#include "runtime/data_dir.hpp"
#include "runtime/log.hpp"
#include "runtime/metrics_endpoint.hpp"
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

// The command line: --config, --data, --check-config, --help, --version.
struct arguments {
  std::string config_path = "config/kassa.yaml";
  std::optional<std::string> data_dir_override;
  bool check_only = false;
};

// Parses argv into `out`; returns -1 to go on, or the exit status to stop with.
int parse_arguments(int argc, char** argv, arguments& out) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "--data") && i + 1 < argc) {
      (arg == "--config" ? out.config_path : out.data_dir_override.emplace()) = argv[++i];
    } else if (arg == "--check-config") {
      out.check_only = true;
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
  return -1;
}

// The TCP server's options: its limits, the cores it serves and the clients it knows.
runtime::server_options server_options_of(const config::config& cfg, const runtime::ledger_core& real,
                                          const runtime::ledger_core* shadow,
                                          const runtime::payment_core* payments,
                                          const runtime::payment_core* shadow_payments) {
  runtime::server_options so;
  so.payments = payments ? payments->payments : caf::actor{};
  so.reconciler = payments ? payments->reconciler : caf::actor{};
  so.address = cfg.server.address;
  so.port = cfg.server.port;
  so.connections_max = cfg.server.connections_max;
  so.frame_bytes_max = cfg.server.frame_bytes_max;
  so.batch_events_max = cfg.batching.batch_events_max;
  so.requests_inflight_max = cfg.server.requests_inflight_max;
  so.ledger = real.directory;
  if (shadow) so.shadow_ledger = shadow->directory;
  so.shadow_payments = shadow_payments ? shadow_payments->payments : caf::actor{};
  so.access.required = cfg.access.required;
  so.access.authentication_failures_max = cfg.access.authentication_failures_max;
  for (const config::access_client& c : cfg.access.clients) {
    runtime::access::client a;
    a.id = c.id;
    static_assert(sizeof a.key == sizeof c.key);
    std::memcpy(a.key, c.key, sizeof a.key);
    a.operations = c.operations; // the same bits: bit n is operation n
    a.ledgers = c.ledgers;
    a.shadow_store = (c.stores & config::access_store_shadow) != 0;
    a.real_store = (c.stores & config::access_store_real) != 0;
    so.access.clients.push_back(std::move(a));
  }
  return so;
}

// Metrics are a side link: without them kassad still serves (the error says why). Sets
// `where` to the address served, "off" or "unavailable".
std::unique_ptr<runtime::metrics_endpoint> start_metrics(const config::config& cfg, std::string& where) {
  where = "off";
  if (!cfg.metrics.enabled) return nullptr;
  runtime::metrics_endpoint_options mo;
  mo.address = cfg.metrics.address;
  mo.port = cfg.metrics.port;
  mo.connections_max = cfg.metrics.connections_max;
  mo.request_bytes_max = cfg.metrics.request_bytes_max;
  mo.read_timeout = std::chrono::milliseconds(cfg.metrics.read_timeout_ms);
  auto endpoint = std::make_unique<runtime::metrics_endpoint>(mo);
  std::string error;
  if (!endpoint->start(error)) {
    log::error("cannot serve metrics; running without them", {{"error", error}});
    where = "unavailable";
    return nullptr;
  }
  where = cfg.metrics.address + ":" + std::to_string(endpoint->port());
  return endpoint;
}

} // namespace

int main(int argc, char** argv) {
  arguments args;
  if (int status = parse_arguments(argc, argv, args); status >= 0) return status;

  // Termination signals are blocked in every thread and taken synchronously by main.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  config::config loaded;
  try {
    loaded = config::load_file(args.config_path);
    if (loaded.payments.enabled) actors::check_flows(loaded.payments); // step names: plugins
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "kassad: %s\n", e.what());
    return config::exit_config_error;
  }
  if (args.data_dir_override) loaded.store.data_dir = *args.data_dir_override;
  const config::config cfg = loaded;
  log::set_level(to_log_level(cfg.log.level));

  if (args.check_only) {
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

  metrics::register_stages(metrics::process_registry()); // all five from the first scrape
  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", 2); // two workers beat four on two cores
  caf::actor_system sys{caf_cfg};

  // The real store, and the shadow store of stress tests in <data_dir>/shadow: the same code
  // over separate LMDB environments, so that shadow traffic never touches real balances.
  int status = 0;
  const std::unique_ptr<runtime::ledger_core> real =
      runtime::start_ledger_core(sys, cfg, runtime::core_site::real(cfg), status);
  if (!real) return status;
  std::unique_ptr<runtime::ledger_core> shadow;
  if (cfg.shadow.enabled) {
    shadow = runtime::start_ledger_core(sys, cfg, runtime::core_site::shadow_of(cfg), status);
    if (!shadow) return status;
  }

  // The payment core, when enabled: its store, channels, side-link consumers and gateway. The
  // shadow store's has channels to shadow.providers only (simulators): shadow payments never
  // reach a real provider, and without shadow providers there is no shadow payment core.
  std::unique_ptr<runtime::payment_core> payments, shadow_payments;
  if (cfg.payments.enabled) {
    payments = runtime::start_payment_core(sys, cfg, cfg.payments, *real);
    if (!payments) return exit_runtime_error;
    if (shadow && !cfg.shadow.providers.empty()) {
      config::payments_config shadow_cfg = cfg.payments;
      shadow_cfg.providers = cfg.shadow.providers;
      shadow_payments = runtime::start_payment_core(sys, cfg, shadow_cfg, *shadow);
      if (!shadow_payments) return exit_runtime_error;
    }
  }

  if (!cfg.access.required && !cfg.access.clients.empty()) {
    log::warn("access.required is false: connections that do not authenticate may make any "
              "request; the clients' limits bind only those that do");
  }
  runtime::server server(sys, server_options_of(cfg, *real, shadow.get(), payments.get(), shadow_payments.get()));
  if (!server.start(error)) {
    log::error("cannot start the server", {{"error", error}});
    return exit_runtime_error;
  }
  std::string metrics_at;
  const std::unique_ptr<runtime::metrics_endpoint> metrics_endpoint = start_metrics(cfg, metrics_at);

  log::info("ready", {{"address", cfg.server.address + ":" + std::to_string(server.port())},
                      {"metrics", metrics_at},
                      {"shards", std::to_string(cfg.store.shards)},
                      {"durability", std::string(config::to_string(cfg.store.durability))},
                      {"hot_accounts", hot_accounts_summary(cfg.hot_accounts)},
                      {"access", access_summary(cfg.access)},
                      {"shadow", cfg.shadow.enabled ? "on" : "off"},
                      {"data_dir", cfg.store.data_dir}});

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log::info("stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"},
                         {"requests_inflight", std::to_string(server.requests_inflight())}});
  const size_t unanswered = server.drain(drain_timeout);
  bool durable = runtime::drain(sys, *real);
  if (shadow) durable = runtime::drain(sys, *shadow) && durable;
  log::info("stopped", {{"unanswered", std::to_string(unanswered)},
                        {"durable", durable ? "yes" : "no"}});
  return unanswered == 0 && durable ? 0 : exit_runtime_error;
}
