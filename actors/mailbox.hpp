#pragma once
// A cheap sample of an actor's mailbox depth for kassa_mailbox_depth: the messages it has
// taken from its inbox and not yet handled (CAF takes the whole inbox at each round). Called
// by the actor itself. mailbox().size() would first move the inbox over, which UBSan reports
// inside CAF 0.17.
#include <cstdint>

namespace kassa::actors {

template <class Actor>
int64_t mailbox_waiting(Actor* self) {
  return static_cast<int64_t>(self->mailbox().queue().total_task_size());
}

} // namespace kassa::actors
