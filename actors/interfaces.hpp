#pragma once
// The typed interfaces of the ledger's actors: what each one takes and what it answers, checked
// by the compiler at every send (caf::typed_actor). The messages are in actors/messages.hpp.
#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace kassa::actors {

// A shard's writer (actors/writer.hpp): one group commit in, its outcome out.
using writer_actor = caf::typed_actor<caf::replies_to<commit_group>::with<commit_done>>;

// A shard (actors/shard.hpp). The directory (and, with one shard and no hot account, a client
// through it) asks it to apply batches, answer reads and probes, and hand expiry over; the
// timers (expire, flush) are its own; drain answers once everything applied is durable.
using shard_actor = caf::typed_actor<
    caf::replies_to<create_accounts_request>::with<create_reply>,
    caf::replies_to<create_transfers_request>::with<create_reply>,
    caf::replies_to<lookup_accounts_request>::with<accounts_reply>,
    caf::replies_to<lookup_transfers_request>::with<transfers_reply>,
    caf::replies_to<account_transfers_request>::with<transfers_reply>,
    caf::replies_to<account_balances_request>::with<balances_reply>,
    caf::replies_to<probe_request>::with<probe_reply>,
    caf::replies_to<system_accounts_request>::with<accounts_reply>,
    caf::replies_to<due_pending_request>::with<due_pending_reply>,
    caf::replies_to<transfers_by_id_request>::with<shard_transfers_by_id_reply>,
    caf::reacts_to<expiry_handover>,
    caf::reacts_to<expire_atom>,
    caf::reacts_to<flush_atom>,
    caf::replies_to<drain_atom>::with<drain_atom, bool>>;

// The directory (actors/directory.hpp): the ledger as a client sees it, whatever the shards and
// hot accounts behind it. Its timers (sweep, expire) are its own; drain answers once every
// request it took is answered and durable.
using directory_actor = caf::typed_actor<
    caf::replies_to<create_accounts_request>::with<create_reply>,
    caf::replies_to<create_transfers_request>::with<create_reply>,
    caf::replies_to<lookup_accounts_request>::with<accounts_reply>,
    caf::replies_to<lookup_transfers_request>::with<transfers_reply>,
    caf::replies_to<account_transfers_request>::with<transfers_reply>,
    caf::replies_to<account_balances_request>::with<balances_reply>,
    caf::replies_to<transfers_by_id_request>::with<transfers_by_id_reply>,
    caf::reacts_to<sweep_atom>,
    caf::reacts_to<expire_atom>,
    caf::replies_to<drain_atom>::with<drain_atom, bool>>;

} // namespace kassa::actors
