#pragma once
// The session's case desk: get_cases and resolve_case (docs/protocol.md) turned into the
// reconciler's messages (actors/reconciler.hpp) and its replies into records.
#include <caf/all.hpp>
#include <functional>
#include <vector>

#include "runtime/access.hpp"
#include "runtime/wire/wire.hpp"

namespace kassa::runtime {

// Answers the frame: status, body, body bytes, record count.
using case_answer = std::function<void(wire::status, const void*, size_t, size_t)>;

// A client limited to ledgers sees only the cases of its ledgers, and resolves only those.
void get_cases(caf::event_based_actor* self, const caf::actor& reconciler, const std::vector<uint8_t>& body,
               const access::client* who, case_answer answer);
void resolve_case(caf::event_based_actor* self, const caf::actor& reconciler, const std::vector<uint8_t>& body,
                  const access::client* who, case_answer answer);

} // namespace kassa::runtime
