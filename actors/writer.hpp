#pragma once
// A shard's writer: the single LMDB writer of the shard. It runs detached, on its own thread,
// because a commit blocks on fsync; it takes `commit_group` and answers `commit_done`.
#include <caf/all.hpp>
#include <memory>

#include "actors/messages.hpp"

namespace kassa::actors {

caf::actor spawn_writer(caf::actor_system& sys, std::shared_ptr<ledger::store::store> store);

} // namespace kassa::actors
