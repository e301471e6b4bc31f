#pragma once
// Late and stray messages never stop or wedge an actor of the payment core. CAF 0.17's default
// answers a message no handler takes with an error, sent back to its sender even when it was
// not a request; that error reaches the sender as an ordinary message, and CAF's default error
// handler then stops the sender. So a duplicate provider callback forwarded to a flow that no
// longer waits for one stopped the gateway, and every request after was answered `internal`.
// With these handlers an unexpected request is answered with an error (its sender's request
// ends instead of waiting for ever), an unexpected one-way message or a stray error is dropped,
// and neither stops the actor. Each is logged: the first and then every 1024th per actor.
#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <string>

namespace kassa::actors {

constexpr uint64_t unexpected_log_every = 1024;

inline void drop_unexpected(caf::scheduled_actor* self, std::function<void(const std::string&)> log) {
  auto seen = std::make_shared<uint64_t>(0);
  auto tell = [seen, log](caf::scheduled_actor* a, const std::string& what) {
    if ((*seen)++ % unexpected_log_every != 0 || !log) return;
    log(std::string(a->name()) + " dropped " + what + " (" + std::to_string(*seen) + " so far)");
  };
  self->set_default_handler([tell](caf::scheduled_actor* a, caf::message_view& x) -> caf::result<caf::message> {
    const auto* element = a->current_mailbox_element();
    const bool request = element != nullptr && element->mid.is_request();
    tell(a, std::string(request ? "an unexpected request: " : "an unexpected message: ") + x.content().stringify());
    if (request) return caf::sec::unexpected_message;
    return caf::delegated<caf::message>{}; // nothing goes back: a reply could stop its sender
  });
  self->set_error_handler([tell](caf::scheduled_actor* a, caf::error& err) {
    tell(a, "an error sent to it: " + a->system().render(err));
  });
}

// Whether the message being handled is one the actor sent itself (a timer, a retry): such
// messages are taken only from itself, so that a stray copy cannot start or end work twice.
inline bool from_self(caf::scheduled_actor* self) {
  return self->current_sender() != nullptr && self->current_sender().get() == self->ctrl();
}

} // namespace kassa::actors
