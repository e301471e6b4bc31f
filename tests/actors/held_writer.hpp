#pragma once
// A writer for simulations on CAF's test_coordinator: it holds each group until the test
// releases it, then commits it for real or fails it as the test says. The fault injector of
// tests/actors/*_sim_test.cpp. `held` (shared with the test) counts the groups it holds.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <deque>
#include <memory>

#include "actors/messages.hpp"

namespace kassa::test {

namespace ks = kassa::ledger::store;
using release_atom = caf::atom_constant<caf::atom("release")>;
using full_atom = caf::atom_constant<caf::atom("full")>; // fail the held group: map full

struct held_writer_state {
  static inline const char* name = "held_writer";
  std::deque<std::pair<actors::commit_group, caf::response_promise>> held;
  size_t committed = 0;
};

inline caf::behavior held_writer(caf::stateful_actor<held_writer_state>* self, std::shared_ptr<ks::store> store,
                                 std::shared_ptr<size_t> held) {
  using namespace kassa::actors;
  return {
      [self, held](commit_group& g) -> caf::response_promise {
        auto rp = self->make_response_promise();
        self->state.held.emplace_back(std::move(g), rp);
        *held = self->state.held.size();
        return rp;
      },
      [self, store, held](release_atom, bool succeed) {
        REQUIRE(!self->state.held.empty());
        auto [g, rp] = std::move(self->state.held.front());
        self->state.held.pop_front();
        *held = self->state.held.size();
        commit_done done{g.group, {}, {}};
        if (succeed) {
          done.error = store->commit(g.changes);
          ++self->state.committed;
        } else {
          done.error = ks::error{ks::errc::io, "injected: the disk refused the write"};
        }
        rp.deliver(std::move(done));
      },
      [self, held](full_atom) {
        REQUIRE(!self->state.held.empty());
        auto [g, rp] = std::move(self->state.held.front());
        self->state.held.pop_front();
        *held = self->state.held.size();
        rp.deliver(commit_done{g.group, ks::error{ks::errc::map_full, "injected: the map is full"}, {}});
      },
  };
}

} // namespace kassa::test
