#pragma once
// How the payment core's records travel in a serialised CAF message (caf::inspect): commands,
// replies, order and item rows, journal entries, reconciliation cases and resolutions, GL
// totals. The ledger layer stays free of CAF: its overloads live here, in the records'
// namespaces so that CAF finds them. Helpers (u128, enums) are in actors/serial.hpp.
//
// Every field travels, reserved ones and zero-padded names included, so a record comes back
// byte for byte as it was sent.
#include <caf/all.hpp>

#include "actors/serial.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/store/payments_store.hpp"
#include "ledger/store/recon_store.hpp"
#include "ledger/store/voucher_store.hpp"

namespace kassa::ledger::payments {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_command& x) {
  using actors::serial::text_of;
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.payment_command"), wide{&x.key}, wide{&x.order_id}, wide{&x.account_id},
           wide{&x.counterparty_id}, wide{&x.amount}, x.ledger, x.kind, x.source, text_of(x.provider),
           x.user_data_64, x.reserved);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payment_reply& x) {
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.payment_reply"), x.index, x.result, x.state, x.reserved, x.reserved2,
           wide{&x.order_id}, wide{&x.amount}, wide{&x.fee});
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order& x) {
  using actors::serial::text_of;
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.order"), wide{&x.id}, wide{&x.key}, wide{&x.account_id},
           wide{&x.counterparty_id}, wide{&x.amount}, wide{&x.amount_captured}, wide{&x.amount_refunded},
           wide{&x.amount_refund_pending}, wide{&x.fee}, wide{&x.trace_id}, wide{&x.provider_amount},
           wide{&x.parent_id}, x.created_ns, x.updated_ns, x.sequence, x.ledger, x.kind, x.state, x.result, x.items,
           x.source, text_of(x.provider), x.user_data_64);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_item& x) {
  using actors::serial::text_of;
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.order_item"), wide{&x.id}, wide{&x.order_id}, wide{&x.account_id},
           wide{&x.refund_of}, wide{&x.amount}, wide{&x.amount_moved}, wide{&x.amount_refunded},
           wide{&x.amount_refund_pending}, wide{&x.fee}, wide{&x.provider_payment_id}, text_of(x.provider),
           x.sequence, x.ledger, x.kind, x.state, x.result, x.source, x.reserved);
}

} // namespace kassa::ledger::payments

namespace kassa::ledger::store {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, journal_entry& x) {
  using actors::serial::text_of;
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.journal_entry"), x.sequence, x.timestamp_ns, wide{&x.trace_id},
           wide{&x.business_id}, wide{&x.row_id}, wide{&x.amount}, x.result, x.kind, x.state, text_of(x.actor),
           text_of(x.step));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_case& x) {
  using actors::serial::text_of;
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.recon_case"), x.id, x.opened_ns, x.resolved_ns, x.statement_sequence,
           wide{&x.payment_id}, wide{&x.row_id}, wide{&x.trace_id}, wide{&x.internal_amount},
           wide{&x.provider_amount}, x.ledger, x.kind, x.status, x.reserved, text_of(x.provider), x.reserved2);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recon_resolution& x) {
  using actors::serial::text_of;
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.recon_resolution"), x.case_id, x.resolved_ns, x.client_id, x.action,
           x.direction, x.reserved, x.reserved2, wide{&x.transfer_id}, wide{&x.amount}, wide{&x.debit_account_id},
           wide{&x.credit_account_id}, text_of(x.by), text_of(x.note));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gl_total& x) {
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.gl_total"), x.account, x.ledger, wide{&x.debits}, wide{&x.credits});
}

} // namespace kassa::ledger::store
