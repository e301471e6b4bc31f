#pragma once
// The typed interfaces of the ledger's actors: what each one takes and what it answers, checked
// by the compiler at every send (caf::typed_actor). The messages are in actors/messages.hpp.
#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace kassa::actors {

// A shard's writer (actors/writer.hpp): one group commit in, its outcome out.
using writer_actor = caf::typed_actor<caf::replies_to<commit_group>::with<commit_done>>;

// What a client of the ledger asks, of the directory or (behind it) of a shard: batches,
// reads, and drain, which answers once everything taken before it is durable.
using ledger_client_actor = caf::typed_actor<
    caf::replies_to<create_accounts_request>::with<create_reply>,
    caf::replies_to<create_transfers_request>::with<create_reply>,
    caf::replies_to<lookup_accounts_request>::with<accounts_reply>,
    caf::replies_to<lookup_transfers_request>::with<transfers_reply>,
    caf::replies_to<account_transfers_request>::with<transfers_reply>,
    caf::replies_to<account_balances_request>::with<balances_reply>,
    caf::replies_to<drain_atom>::with<drain_atom, bool>>;

// A shard (actors/shard.hpp): a client's requests (through the directory, or from it with one
// shard and no hot account), and what the directory alone asks: probes, kassa's own accounts,
// due pending transfers, id ranges, and the hand-over of expiry. Its timers (expire, flush)
// are its own.
using shard_actor = ledger_client_actor::extend<
    caf::replies_to<probe_request>::with<probe_reply>,
    caf::replies_to<system_accounts_request>::with<accounts_reply>,
    caf::replies_to<due_pending_request>::with<due_pending_reply>,
    caf::replies_to<transfers_by_id_request>::with<shard_transfers_by_id_reply>,
    caf::reacts_to<expiry_handover>,
    caf::reacts_to<expire_atom>,
    caf::reacts_to<flush_atom>>;

// The directory (actors/directory.hpp): the ledger as a client sees it, whatever the shards and
// hot accounts behind it, and id ranges merged over the shards. Its timers (sweep, expire) are
// its own.
using directory_actor = ledger_client_actor::extend<
    caf::replies_to<transfers_by_id_request>::with<transfers_by_id_reply>,
    caf::reacts_to<sweep_atom>,
    caf::reacts_to<expire_atom>>;

} // namespace kassa::actors
