#pragma once
// The payments store's one writer. Any actor of the payment core sends it a payments_write
// and gets payments_written back once the batch is durable. Writes that arrive while a commit
// is running are merged into the next one, so under load many orders share one fsync.
#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <string>

#include "ledger/store/payments_store.hpp"

namespace kassa::actors {

struct payments_write {
  ledger::store::payments_batch batch;
};
struct payments_written {
  ledger::store::error error; // ok: durable
  uint64_t journal_last = 0;  // the journal's last sequence after this write
};

// Bounded: a write that would make more than `pending_max` writes wait is answered with
// an error of code io ("payments store busy") and nothing of it is written. A failed write
// (a full map, a full disk) is passed to `log_error`, at most once every 10 s: its senders
// answer store_unavailable, and without a log line an operator would not learn why.
caf::actor spawn_payments_writer(caf::actor_system& sys, std::shared_ptr<ledger::store::payments_store> store,
                                 std::function<void(const std::string&)> log_error = {},
                                 size_t pending_max = 1u << 16);

} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::payments_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::payments_written)
