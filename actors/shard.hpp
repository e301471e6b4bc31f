#pragma once
// The shard actor: the one owner of a shard's ledger state. Every account of the shard lives
// in its state machine, so the mailbox order *is* the compare-and-set: a debit is checked
// against the balance as it stands after every earlier message. It applies batches at once,
// hands the changes to the shard's writer in groups (one fsync per group), and answers each
// request only when everything it saw is durable.
#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "metrics/registry.hpp"

namespace kassa::actors {

struct shard_options {
  uint32_t shard = 0;
  uint32_t shards = 1; // of the store: shard k stamps timestamps k modulo shards
  std::shared_ptr<ledger::store::store> store; // opened; load() not yet called
  writer_actor writer;                         // the shard's writer (see writer.hpp)
  size_t transfers_resident_max = 100'000;
  // Events in one group commit (batching.commit_events_max). The group being filled never
  // grows beyond it: a request that would make it is answered busy. So at most two groups'
  // worth of events (one with the writer, one filling) wait for the disk.
  size_t commit_events_max = 65'536;
  // How long a group may wait for more work when the writer is idle
  // (batching.commit_delay_us_max); 0 hands it to the writer at once.
  uint64_t commit_delay_ns = 0;
  uint32_t query_limit_max = 8190;     // largest `limit` of an account query
  // The shard's clock (ns since the unix epoch); simulations pass a manual one.
  std::function<uint64_t()> clock;
  // Where the shard reports operating failures (message, detail); the daemon logs them.
  std::function<void(const std::string&, const std::string&)> log_error;
  // Where the shard records its stages (routing, accounts, commit_wait), its commits and its
  // mailbox depth, labelled shard="<metrics_prefix><shard>" and actor="<metrics_prefix>shard<shard>";
  // a second store (shadow) sets a prefix so that its shards are told apart.
  metrics::registry* metrics = &metrics::process_registry();
  std::string metrics_prefix;
};

// Spawns a shard; it recovers its state from the store before it takes any message. Returns
// an invalid handle and sets `err` when recovery fails.
shard_actor spawn_shard(caf::actor_system& sys, shard_options opts, ledger::store::error& err);

// The time source of shards: nanoseconds since the unix epoch.
uint64_t now_ns();

} // namespace kassa::actors
