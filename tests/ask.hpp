#pragma once
// Asks an actor from a test's thread and waits for the reply. A small stateful actor makes the
// request and hands the reply over through a promise, rather than a scoped_actor: a
// scoped_actor's mailbox lives in libcaf_core, where ThreadSanitizer cannot see the message
// change threads (tests/tsan/caf_sync.cpp restores that edge for stateful actors only).
#include <caf/all.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>

namespace kassa::test {

struct asker_state {
  static inline const char* name = "kassa.test.asker";
};

// The reply, or nothing when `to` answers with an error or not within `timeout`.
template <class Reply, class Request>
std::optional<Reply> ask(caf::actor_system& sys, const caf::actor& to, Request request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto answer = std::make_shared<std::promise<std::optional<Reply>>>();
  auto reply = answer->get_future();
  sys.spawn(
      [](caf::stateful_actor<asker_state>* self, caf::actor to, Request request, std::chrono::milliseconds timeout,
         std::shared_ptr<std::promise<std::optional<Reply>>> answer) -> caf::behavior {
        self->request(to, timeout, std::move(request))
            .then(
                [self, answer](Reply& r) {
                  answer->set_value(std::move(r));
                  self->quit();
                },
                [self, answer](caf::error&) {
                  answer->set_value(std::nullopt);
                  self->quit();
                });
        return {[](int) {}}; // alive until the reply
      },
      to, std::move(request), timeout, answer);
  return reply.get();
}

} // namespace kassa::test
