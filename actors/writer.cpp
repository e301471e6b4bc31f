#include "actors/writer.hpp"

#include "actors/mailbox.hpp"
#include "metrics/shared.hpp"

namespace kassa::actors {

namespace {

writer_actor::behavior_type writer(writer_actor::pointer self, std::shared_ptr<ledger::store::store> store,
                                   metrics::gauge* mailbox) {
  return {
      [self, store, mailbox](commit_group& g) -> commit_done {
        mailbox->set(mailbox_waiting(self));
        commit_done done{g.group, store->commit(g.changes), {}};
        done.stats = store->last_commit();
        return done;
      },
  };
}

} // namespace

writer_actor spawn_writer(caf::actor_system& sys, std::shared_ptr<ledger::store::store> store,
                        const std::string& metrics_actor, metrics::registry& registry) {
  metrics::gauge* mailbox = &metrics::mailbox_depth(registry, metrics_actor);
  return sys.spawn<caf::detached>(writer, std::move(store), mailbox);
}

} // namespace kassa::actors
