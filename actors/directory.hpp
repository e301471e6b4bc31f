#pragma once
// The directory: the one entry point of the ledger for sessions. It maps every account to its
// shard (ledger::shard_of) and, with several shards or hot accounts, works in rounds: it
// probes the shards for what the round's requests name, has the round planner
// (ledger/planner.hpp, pure) decide every unit with the single-shard model and split it into
// per-shard batches, writes a round with transfers across shards to the saga log whole (a
// redo record), sends the batches, and answers. A transfer across shards is two legs through
// the clearing accounts of the pair, one in each shard; recovery applies a logged round again
// until every shard holds its part. Never half-applied, no distributed transaction: every
// shard balances on its own at every instant. Split hot accounts: credits spread over
// sub-accounts, reads aggregate, a sweeper moves sub-balances back to the main account.
// With one shard and no hot accounts it forwards every request unchanged. It takes exactly
// the messages a shard takes (create_*, lookup_*, account_transfers, account_balances, drain)
// and answers them the same way. See docs/sharding.md.
#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "ledger/store/saga_log.hpp"
#include "metrics/registry.hpp"

namespace kassa::actors {

struct hot_account_rule {
  u128 id = 0;
  uint32_t sub_accounts = 8; // 2 .. 256
};

struct directory_options {
  std::vector<shard_actor> shards;             // shard i owns accounts with shard_of(id) == i
  std::shared_ptr<ledger::store::saga_log> saga_log; // required when shards.size() > 1
  // Requests waiting while a round is in flight; beyond it, new requests are answered busy.
  size_t queue_events_max = 1u << 20;
  // Events one round takes from the queue (batching.commit_events_max).
  size_t round_events_max = 65'536;
  // Hot accounts: static rules, and adaptive splitting of accounts that receive at least
  // `adaptive_credits_min` credits within `adaptive_window_ns` (0 disables adaptive).
  std::vector<hot_account_rule> hot_static;
  uint64_t adaptive_window_ns = 0;
  uint32_t adaptive_credits_min = 0;
  uint32_t adaptive_sub_accounts = 8;
  uint64_t sweep_interval_ns = 1'000'000'000; // 0: never sweep
  std::function<uint64_t()> clock;            // ns since the unix epoch
  // The saga log's fsync runs on its own thread; simulations on CAF's test_coordinator
  // schedule its writer like any actor instead.
  bool saga_writer_detached = true;
  std::function<void(const std::string&, const std::string&)> log_error;
  std::function<void(const std::string&, const std::string&)> log_info;
  // Where the directory records its mailbox depth (actor="<metrics_prefix>directory") and, for
  // the store without a prefix, its hot accounts and sweeps.
  metrics::registry* metrics = &metrics::process_registry();
  std::string metrics_prefix;
};

// The shard an account (or sub-account, or clearing account) lives in (ledger/planner.hpp).
using ledger::shard_of;

// Spawns the directory. It first finishes the sagas the log holds (recovery), then takes
// requests. Returns an invalid handle and sets `error` when recovery fails.
directory_actor spawn_directory(caf::actor_system& sys, directory_options opts, std::string& error);

} // namespace kassa::actors
