#include "actors/writer.hpp"

namespace kassa::actors {

namespace {

caf::behavior writer(caf::event_based_actor*, std::shared_ptr<ledger::store::store> store) {
  return {
      [store](commit_group& g) -> commit_done {
        commit_done done{g.group, store->commit(g.changes), {}};
        done.stats = store->last_commit();
        return done;
      },
  };
}

} // namespace

caf::actor spawn_writer(caf::actor_system& sys, std::shared_ptr<ledger::store::store> store) {
  return sys.spawn<caf::detached>(writer, std::move(store));
}

} // namespace kassa::actors
