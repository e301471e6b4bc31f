#pragma once
// The reconciler's case desk: resolving a case (accept, book its correcting transfer, or have
// the provider refund what it parked and book that out of suspense; then journal it) and
// listing cases with their journal. Part of the reconciler actor; its writes go
// through the reconciler's committer like every other write of the recon store.
#include <caf/all.hpp>
#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <memory>
#include <utility>
#include <vector>

#include "actors/reconciler.hpp"

namespace kassa::actors {

struct recon_write {
  ledger::store::recon_batch batch;
};
struct recon_written {
  ledger::store::error error;
  ledger::store::recon_batch batch; // with the ids of the cases it added
  ledger::store::recon_counters counters;
};

struct case_desk {
  std::shared_ptr<ledger::store::recon_store> store;       // reads
  std::shared_ptr<ledger::store::payments_store> payments; // the case's row
  caf::actor committer;                                    // writes
  directory_actor ledger;                                  // the directory: books
  std::function<u128(u128, uint32_t)> suspense_account;
  uint64_t now_ns = 0;
  std::function<void(const recon_written&)> written;       // after each commit
  // refund: the channel of each provider, its clearing accounts, who wants a credential
  std::vector<std::pair<std::string, caf::actor>> channels;
  std::function<u128(const std::string&, u128, uint32_t)> clearing_account;
  std::vector<std::string> credential_providers;
  uint32_t refund_timeout_ms = 10000;
};

// `text` into a zero-padded field, cut to its size.
template <size_t N>
void copy_text(char (&out)[N], const std::string& text) {
  std::memset(out, 0, N);
  std::memcpy(out, text.data(), std::min(text.size(), N));
}

// Answers `rp` with the outcome of `r` (see resolve_case).
void resolve(caf::event_based_actor* self, case_desk desk, resolve_case r, caf::response_promise rp);

// Who the resolution journal names when kassa resolves a case itself.
inline constexpr const char* resolved_by_kassa = "kassa";

// The provider made a compensating refund after the payment core had given up on it (the
// refund's statement line shows it): `amount` of what the suspense case `c` parked is booked
// out of suspense against the provider's clearing account, under the case's correcting
// transfer, and the case is journaled resolved as a refund by kassa. `done` gets the outcome
// (ok once durable). Asked again it books nothing twice: the transfer answers exists, and a
// case resolved meanwhile answers case_resolved.
void settle_late_refund(caf::event_based_actor* self, case_desk desk, const ledger::store::recon_case& c, u128 amount,
                        std::function<void(const recon_case_resolved&)> done);

recon_cases_reply list_cases(const ledger::store::recon_store& store, const recon_cases_request& r);

} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::recon_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::recon_written)
