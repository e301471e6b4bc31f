#pragma once
// What kassad boots per store: a ledger core (shards with their LMDB environments and writers,
// the saga log, the directory) and, with payments on, a payment core (its stores, channels,
// side link and gateway). kassad builds the real store in <data_dir> and the shadow store of
// stress tests in <data_dir>/shadow with the same functions: same layout, same code.
#include <caf/all.hpp>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "config/config.hpp"
#include "ledger/store/saga_log.hpp"
#include "ledger/store/store.hpp"
#include "runtime/log.hpp"

namespace kassa::runtime {

// Where a core lives and how its log lines are marked.
struct core_site {
  std::string data_dir;      // the real store's, or <data_dir>/shadow
  uint64_t map_size_mib = 0; // per LMDB environment of the ledger and the payments store
  bool shadow = false;       // every log line of the core carries shadow=1

  static core_site real(const config::config& cfg);
  static core_site shadow_of(const config::config& cfg);

  // Writes a log line, with shadow=1 for the shadow core.
  void log(log::level l, const std::string& msg, log::fields kv = {}) const;
};

// Every actor of a core is told to exit when the core is destroyed, whatever path leaves
// kassad's main, or the actor system would wait for them forever.
struct ledger_core {
  core_site site;
  actors::directory_actor directory;
  std::vector<actors::shard_actor> shards;
  std::vector<actors::writer_actor> writers;
  std::shared_ptr<ledger::store::saga_log> saga_log;
  ~ledger_core();
};

struct payment_core {
  caf::actor payments, writer, accounting, reconciler;
  std::vector<caf::actor> channels;
  ~payment_core();
};

// Opens (or creates) the shards of `site.data_dir`, recovers them and the saga log, and starts
// the directory. Null on failure, after saying why (log or stderr), with `exit_status` set:
// config::exit_config_error for a shard count the directory does not hold, else 1.
std::unique_ptr<ledger_core> start_ledger_core(caf::actor_system& sys, const config::config& cfg,
                                               const core_site& site, int& exit_status);

// Opens the payment core's stores in `site.data_dir` (payments, recon, accounting) and starts
// its channels (one per `payments.providers`), side link and gateway over `ledger`. Null with a
// log line on failure.
std::unique_ptr<payment_core> start_payment_core(caf::actor_system& sys, const config::config& cfg,
                                                 const config::payments_config& payments,
                                                 const ledger_core& ledger);

// Asks the directory to finish its queue and sagas, then every shard to make what it
// acknowledged durable; false when any of them could not.
bool drain(caf::actor_system& sys, const ledger_core& core);

} // namespace kassa::runtime
