#pragma once
// The metrics more than one part of kassad records into, so that their names and help texts
// are written once.
//
// kassa_stage_seconds{stage}: where the time of a ledger request goes inside kassad. Each
// stage is one histogram of seconds (seconds_buckets()); the stages follow one another:
//   decode       the frame is complete -> the session has decoded it into a ledger request
//   routing      handed to the directory -> a shard starts applying it (queues, routing)
//   accounts     the shard applies the events to account state
//   commit_wait  applied (its changes wait for the writer) -> durable (group commit + fsync)
//   encode       the reply is built -> encoded and queued on the socket
#include "metrics/registry.hpp"

namespace kassa::metrics {

enum class stage { decode, routing, accounts, commit_wait, encode };

inline const char* name(stage s) {
  switch (s) {
    case stage::decode: return "decode";
    case stage::routing: return "routing";
    case stage::accounts: return "accounts";
    case stage::commit_wait: return "commit_wait";
    case stage::encode: return "encode";
  }
  return "unknown";
}

inline histogram& stage_seconds(registry& r, stage s) {
  return r.get_histogram("kassa_stage_seconds", "Time of each stage of a ledger request inside kassad",
                         {{"stage", name(s)}}, seconds_buckets());
}

// Registers all five stages, in order, so that a scrape shows each one from the start.
inline void register_stages(registry& r) {
  for (stage s : {stage::decode, stage::routing, stage::accounts, stage::commit_wait, stage::encode}) {
    stage_seconds(r, s);
  }
}

// kassa_mailbox_depth{actor}: an actor samples its own mailbox as it works (no timer).
inline gauge& mailbox_depth(registry& r, const std::string& actor) {
  return r.get_gauge("kassa_mailbox_depth", "Messages waiting in an actor's mailbox, sampled as it works",
                     {{"actor", actor}});
}

// end - start, or 0 when the clocks of two threads disagree on order.
inline uint64_t elapsed(uint64_t start_ns, uint64_t end_ns) { return end_ns > start_ns ? end_ns - start_ns : 0; }

} // namespace kassa::metrics
