#pragma once
// A shard's writer: the single LMDB writer of the shard. It runs detached, on its own thread,
// because a commit blocks on fsync; it takes `commit_group` and answers `commit_done`.
#include <caf/all.hpp>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "metrics/registry.hpp"

namespace kassa::actors {

// `metrics_actor` labels the writer's mailbox depth (kassa_mailbox_depth{actor="writer0"}).
writer_actor spawn_writer(caf::actor_system& sys, std::shared_ptr<ledger::store::store> store,
                        const std::string& metrics_actor = "writer",
                        metrics::registry& registry = metrics::process_registry());

} // namespace kassa::actors
