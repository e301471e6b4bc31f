#include "runtime/core.hpp"

#include <algorithm>
#include <cstdio>

#include "actors/accounting.hpp"
#include "actors/channel.hpp"
#include "actors/directory.hpp"
#include "actors/payments.hpp"
#include "actors/payments_writer.hpp"
#include "actors/reconciler.hpp"
#include "actors/shard.hpp"
#include "actors/writer.hpp"
#include "ledger/store/payments_store.hpp"
#include "runtime/data_dir.hpp"

namespace kassa::runtime {

namespace {

// The saga log holds only the sagas in flight (a few per round), never history.
constexpr uint64_t saga_log_map_bytes = uint64_t{64} << 20;

ledger::store::durability durability_of(const config::config& cfg) {
  return cfg.store.durability == config::durability::fsync ? ledger::store::durability::fsync
                                                            : ledger::store::durability::none;
}

void exit_all(const std::vector<caf::actor*>& actors) {
  for (const caf::actor* a : actors)
    if (*a) caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
}

} // namespace

core_site core_site::real(const config::config& cfg) {
  return core_site{cfg.store.data_dir, cfg.store.map_size_mib, false};
}

core_site core_site::shadow_of(const config::config& cfg) {
  return core_site{cfg.store.data_dir + "/shadow", cfg.shadow.map_size_mib, true};
}

void core_site::log(log::level l, const std::string& msg, log::fields kv) const {
  std::vector<std::pair<const char*, std::string>> fields(kv);
  if (shadow) fields.emplace_back("shadow", "1");
  log::write(l, msg, fields);
}

ledger_core::~ledger_core() {
  if (directory) caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
  for (const auto& a : shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  for (const auto& a : writers) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

payment_core::~payment_core() {
  exit_all({&payments, &writer, &accounting, &reconciler});
  for (const auto& a : channels) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

std::unique_ptr<ledger_core> start_ledger_core(caf::actor_system& sys, const config::config& cfg,
                                               const core_site& site, int& exit_status) {
  exit_status = 1;
  std::string error;
  if (!make_directories(site.data_dir, error)) {
    site.log(log::level::error, "cannot use the data directory", {{"error", error}});
    return nullptr;
  }
  // Accounts map to shards by hash of their id modulo the shard count: another count would
  // look for every account in the wrong shard.
  const std::string mismatch = shard_count_mismatch(site.data_dir, cfg.store.shards);
  if (!mismatch.empty()) {
    // The shadow store holds test data only: throwing it away is a fix too.
    const std::string or_drop =
        site.shadow ? " (or delete " + site.data_dir + ", which holds shadow test data only)" : "";
    std::fprintf(stderr, "kassad: %s: store.shards: %s%s\n", cfg.source.c_str(), mismatch.c_str(),
                 or_drop.c_str());
    exit_status = config::exit_config_error;
    return nullptr;
  }
  const ledger::store::durability durability = durability_of(cfg);
  auto core = std::make_unique<ledger_core>();
  core->site = site;
  for (uint32_t i = 0; i < cfg.store.shards; ++i) {
    ledger::store::options o;
    o.path = shard_path(site.data_dir, i);
    o.durability = durability;
    o.map_size_bytes = site.map_size_mib << 20;
    o.transfers_resident_max = cfg.store.transfers_resident_max;
    ledger::store::error err;
    std::shared_ptr<ledger::store::store> store = ledger::store::store::open(o, err);
    if (!store) {
      site.log(log::level::error, "cannot open the store",
               {{"shard", std::to_string(i)}, {"path", o.path},
                {"code", std::string(ledger::store::name(err.code))}, {"error", err.message}});
      return nullptr;
    }
    actors::shard_options so;
    so.shard = i;
    so.shards = cfg.store.shards;
    so.store = store;
    // The shadow store's metrics are labelled apart: shard="shadow_0", actor="shadow_writer0".
    so.metrics_prefix = site.shadow ? "shadow_" : "";
    so.writer = actors::spawn_writer(sys, store, so.metrics_prefix + "writer" + std::to_string(i));
    core->writers.push_back(so.writer);
    so.transfers_resident_max = cfg.store.transfers_resident_max;
    so.commit_events_max = cfg.batching.commit_events_max;
    so.commit_delay_ns = uint64_t{cfg.batching.commit_delay_us_max} * 1000;
    so.query_limit_max = cfg.batching.batch_events_max;
    so.log_error = [i, site](const std::string& msg, const std::string& detail) {
      site.log(log::level::error, msg, {{"shard", std::to_string(i)}, {"error", detail}});
    };
    actors::shard_actor shard = actors::spawn_shard(sys, so, err);
    if (!shard) {
      site.log(log::level::error, "cannot recover the store",
               {{"shard", std::to_string(i)}, {"path", o.path},
                {"code", std::string(ledger::store::name(err.code))}, {"error", err.message}});
      return nullptr;
    }
    site.log(log::level::info, "shard recovered",
             {{"shard", std::to_string(i)}, {"path", o.path},
              {"commits", std::to_string(store->commit_sequence())}});
    core->shards.push_back(shard);
  }

  // The saga log records the legs of every transfer across shards before they are written, so
  // that a crash between them is finished at the next start. One shard has no such transfers
  // and keeps the data directory as it was: no saga log.
  if (cfg.store.shards > 1) {
    const std::string path = saga_log_path(site.data_dir);
    ledger::store::error err;
    core->saga_log = ledger::store::saga_log::open(path, durability, saga_log_map_bytes, err);
    if (!core->saga_log) {
      site.log(log::level::error, "cannot open the saga log",
               {{"path", path}, {"code", std::string(ledger::store::name(err.code))}, {"error", err.message}});
      return nullptr;
    }
  }

  actors::directory_options dopts;
  dopts.shards = core->shards;
  dopts.saga_log = core->saga_log;
  dopts.queue_events_max = cfg.batching.queue_events_max;
  dopts.metrics_prefix = site.shadow ? "shadow_" : "";
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
  dopts.log_error = [site](const std::string& msg, const std::string& detail) {
    site.log(log::level::error, msg, {{"error", detail}});
  };
  dopts.log_info = [site](const std::string& msg, const std::string& detail) {
    if (detail.empty()) site.log(log::level::info, msg);
    else site.log(log::level::info, msg, {{"detail", detail}});
  };
  core->directory = actors::spawn_directory(sys, std::move(dopts), error);
  if (!core->directory) {
    site.log(log::level::error, "cannot start the directory", {{"error", error}});
    return nullptr;
  }
  exit_status = 0;
  return core;
}

namespace {

// What the provider ids of new payments are made of (docs/payments.md, "Provider ids").
void log_provider_ids(const core_site& site, const ledger::store::payments_store& pstore) {
  const auto& ids = pstore.ids();
  char installation[24], issuer[24];
  std::snprintf(installation, sizeof installation, "0x%016llx", (unsigned long long)ids.installation_id());
  std::snprintf(issuer, sizeof issuer, "0x%016llx", (unsigned long long)ids.issuer());
  site.log(log::level::info, "provider ids",
           {{"installation_id", installation},
            {"generation", std::to_string(ids.generations().back().number)},
            {"issuer", issuer},
            {"sequence_first", std::to_string(ids.generations().back().sequence_first)}});
}

actors::channel_options channel_options_of(const core_site& site, const config::provider_config& p) {
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
  co.log = [site, name = p.name](bool warning, const std::string& msg) {
    site.log(warning ? log::level::warn : log::level::info, msg, {{"channel", name}});
  };
  return co;
}

// The reconciler and its store (<site>/recon); false (logged) when either cannot start.
bool start_reconciler(caf::actor_system& sys, const config::config& cfg, const config::payments_config& payments,
                      const ledger_core& ledger, std::shared_ptr<ledger::store::payments_store> pstore,
                      const std::vector<std::pair<std::string, caf::actor>>& named, payment_core& core,
                      std::shared_ptr<ledger::store::recon_store>& recon) {
  const core_site& site = ledger.site;
  ledger::store::error err;
  actors::reconciler_options ro;
  ro.payments = std::move(pstore);
  ro.path = site.data_dir + "/recon";
  ro.durability = durability_of(cfg);
  recon.reset(ledger::store::recon_store::open(ro.path, ro.durability, ro.map_size_bytes, err).release());
  if (!recon) {
    site.log(log::level::error, "cannot start reconciliation", {{"error", err.message}});
    return false;
  }
  ro.store = recon;
  ro.channels = named;
  ro.interval_ms = payments.reconciliation.interval_ms;
  ro.grace_ms = payments.reconciliation.grace_ms;
  ro.inflight_grace_ms = payments.reconciliation.inflight_grace_ms;
  ro.ledger = ledger.directory; // rows <-> ledger: the bookings each row names; a case's booking
  // the ledger scan's page: within what a shard answers to one query
  ro.booking_scan_ids_max = std::min<uint32_t>(ro.booking_scan_ids_max, cfg.batching.batch_events_max);
  ro.suspense_account = [shards = cfg.store.shards](u128 account, uint32_t l) {
    namespace lp = ledger::payments;
    return lp::account_id(lp::role::suspense, 0, actors::shard_of(account, shards), l);
  };
  std::vector<std::string> provider_names;
  for (const config::provider_config& p : payments.providers) {
    provider_names.push_back(p.name); // the index is the provider's in the chart of accounts
    if (p.credentials) ro.credential_providers.push_back(p.name);
  }
  ro.clearing_account = [shards = cfg.store.shards, provider_names](const std::string& name, u128 account,
                                                                      uint32_t l) -> u128 {
    namespace lp = ledger::payments;
    for (size_t i = 0; i < provider_names.size(); ++i)
      if (provider_names[i] == name)
        return lp::account_id(lp::role::provider_clearing, uint32_t(i), actors::shard_of(account, shards), l);
    return 0;
  };
  ro.refund_timeout_ms = payments.reconciliation.refund_timeout_ms;
  ro.log_booking_case = [site](const std::string& c) {
    site.log(log::level::error, "a payment row and the ledger disagree; a reconciliation case is open", {{"case", c}});
  };
  core.reconciler = actors::spawn_reconciler(sys, ro, err);
  if (!core.reconciler) {
    site.log(log::level::error, "cannot start reconciliation", {{"error", err.message}});
    return false;
  }
  return true;
}

// Accounting (<site>/accounting); false (logged) when it cannot start.
bool start_accounting(caf::actor_system& sys, const config::config& cfg, const config::payments_config& payments,
                      const core_site& site, std::shared_ptr<ledger::store::payments_store> pstore,
                      std::shared_ptr<ledger::store::recon_store> recon, payment_core& core) {
  ledger::store::error err;
  actors::accounting_options ao;
  ao.payments = std::move(pstore);
  ao.recon = std::move(recon); // null when reconciliation is off: no corrections to account for
  ao.path = site.data_dir + "/accounting";
  ao.durability = durability_of(cfg);
  ao.interval_ms = payments.accounting.interval_ms;
  ao.batch_events_max = payments.accounting.batch_events_max;
  ao.log_error = [site](const std::string& msg) { site.log(log::level::error, "accounting", {{"error", msg}}); };
  core.accounting = actors::spawn_accounting(sys, ao, err);
  if (!core.accounting) {
    site.log(log::level::error, "cannot start accounting", {{"error", err.message}});
    return false;
  }
  return true;
}

} // namespace

std::unique_ptr<payment_core> start_payment_core(caf::actor_system& sys, const config::config& cfg,
                                                 const config::payments_config& payments,
                                                 const ledger_core& ledger) {
  const core_site& site = ledger.site;
  auto core = std::make_unique<payment_core>();
  ledger::store::error err;
  auto pstore = std::shared_ptr<ledger::store::payments_store>(ledger::store::payments_store::open(
      site.data_dir + "/payments", durability_of(cfg), site.map_size_mib << 20, err));
  if (!pstore) {
    site.log(log::level::error, "cannot open the payments store", {{"error", err.message}});
    return nullptr;
  }
  log_provider_ids(site, *pstore);
  core->writer = actors::spawn_payments_writer(sys, pstore, [site](const std::string& msg) {
    site.log(log::level::error, "a write of the payments store failed; its commands are answered store_unavailable",
             {{"error", msg}});
  });
  std::vector<std::pair<std::string, caf::actor>> named;
  for (const config::provider_config& p : payments.providers) {
    core->channels.push_back(actors::spawn_channel(sys, channel_options_of(site, p)));
    named.emplace_back(p.name, core->channels.back());
  }
  std::shared_ptr<ledger::store::recon_store> recon; // the reconciler writes it, accounting reads it
  if (payments.reconciliation.enabled && !start_reconciler(sys, cfg, payments, ledger, pstore, named, *core, recon))
    return nullptr;
  if (payments.accounting.enabled && !start_accounting(sys, cfg, payments, site, pstore, recon, *core)) return nullptr;
  actors::payments_options po;
  po.cfg = payments;
  po.shards = cfg.store.shards;
  po.directory = ledger.directory;
  po.writer = core->writer;
  po.reconciler = core->reconciler;
  po.channels = core->channels;
  po.store = pstore;
  po.clock = actors::now_ns;
  po.log_info = [site](const std::string& msg) {
    if (!msg.empty()) site.log(log::level::info, msg);
  };
  po.log_error = [site](const std::string& msg) { site.log(log::level::error, msg); };
  core->payments = actors::spawn_payments(sys, std::move(po));
  return core;
}

bool drain(caf::actor_system& sys, const ledger_core& core) {
  bool durable = true;
  // The directory first: it finishes its queue and the sagas in flight, then the shards make
  // what they acknowledged durable.
  caf::scoped_actor self{sys};
  auto drain_one = [&](const auto& a) {
    self->request(a, caf::infinite, actors::drain_atom::value)
        .receive([&](actors::drain_atom, bool ok) { durable = durable && ok; },
                 [&](caf::error&) { durable = false; });
  };
  drain_one(core.directory);
  for (const actors::shard_actor& shard : core.shards) drain_one(shard);
  return durable;
}

} // namespace kassa::runtime
