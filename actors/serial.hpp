#pragma once
// How the ledger's values travel in a serialised CAF message (caf::inspect): the records and
// the store's small types, for the messages of the directory, shards and writers
// (actors/messages.hpp). The ledger layer stays free of CAF: its overloads live here.
//
// CAF 0.17 has no 128-bit integers, so a u128 travels as two 64-bit halves (low, then high),
// an enum as its underlying integer, a size_t as 64 bits. Integers are written as CAF writes
// them (binary serializer: little-endian, fixed width).
#include <caf/all.hpp>
#include <caf/detail/stringification_inspector.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "ledger/planner.hpp"
#include "ledger/state_machine.hpp"
#include "ledger/store/store.hpp"
#include "ledger/types.hpp"

namespace kassa::actors::serial {

// One u128 field.
struct wide {
  u128* v;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wide& x) {
  uint64_t lo = static_cast<uint64_t>(*x.v);
  uint64_t hi = static_cast<uint64_t>(*x.v >> 64);
  return f(lo, hi, caf::meta::load_callback([&]() -> caf::error {
             *x.v = (u128{hi} << 64) | lo;
             return caf::none;
           }));
}

// A list of u128: its halves, two per value.
struct wide_list {
  std::vector<u128>* v;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wide_list& x) {
  std::vector<uint64_t> halves;
  if constexpr (Inspector::reads_state) {
    halves.reserve(x.v->size() * 2);
    for (u128 v : *x.v) {
      halves.push_back(static_cast<uint64_t>(v));
      halves.push_back(static_cast<uint64_t>(v >> 64));
    }
  }
  return f(halves, caf::meta::load_callback([&]() -> caf::error {
             if (halves.size() % 2 != 0) return caf::sec::invalid_argument;
             x.v->clear();
             x.v->reserve(halves.size() / 2);
             for (size_t i = 0; i < halves.size(); i += 2) x.v->push_back((u128{halves[i + 1]} << 64) | halves[i]);
             return caf::none;
           }));
}

// An enum field, as its underlying integer.
template <class E>
struct as_int {
  E* v;
};
template <class Inspector, class E>
typename Inspector::result_type inspect(Inspector& f, as_int<E>& x) {
  auto n = static_cast<std::underlying_type_t<E>>(*x.v);
  return f(n, caf::meta::load_callback([&]() -> caf::error {
             *x.v = static_cast<E>(n);
             return caf::none;
           }));
}
template <class E>
as_int<E> enum_of(E& e) {
  return as_int<E>{&e};
}

// A zero-padded text field (char[N]): its N bytes as they are, no length; printed as the text
// before its first zero, at most N bytes (CAF's printer takes a bare char array for a C string
// and would read past a name that fills its field).
template <size_t N>
struct padded {
  char (*v)[N];
};
template <class Inspector, size_t N>
typename Inspector::result_type inspect(Inspector& f, padded<N>& x) {
  if constexpr (std::is_same_v<Inspector, caf::detail::stringification_inspector>) {
    std::string text(*x.v, strnlen(*x.v, N));
    return f(text);
  } else {
    return f(*x.v);
  }
}
template <size_t N>
padded<N> text_of(char (&a)[N]) {
  return padded<N>{&a};
}

// A size_t field, as 64 bits on every platform.
struct count {
  size_t* v;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, count& x) {
  uint64_t n = *x.v;
  return f(n, caf::meta::load_callback([&]() -> caf::error {
             *x.v = static_cast<size_t>(n);
             return caf::none;
           }));
}

} // namespace kassa::actors::serial

namespace kassa::ledger {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account& x) {
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.account"), wide{&x.id}, wide{&x.debits_pending}, wide{&x.debits_posted},
           wide{&x.credits_pending}, wide{&x.credits_posted}, wide{&x.user_data_128}, x.user_data_64,
           x.user_data_32, x.reserved, x.ledger, x.code, x.flags, x.timestamp);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfer& x) {
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.transfer"), wide{&x.id}, wide{&x.debit_account_id},
           wide{&x.credit_account_id}, wide{&x.amount}, wide{&x.pending_id}, wide{&x.user_data_128},
           x.user_data_64, x.user_data_32, x.timeout, x.ledger, x.code, x.flags, x.timestamp);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_balance& x) {
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.account_balance"), wide{&x.debits_pending}, wide{&x.debits_posted},
           wide{&x.credits_pending}, wide{&x.credits_posted}, x.timestamp, x.reserved);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pending_update& x) {
  using actors::serial::wide;
  return f(caf::meta::type_name("kassa.pending_update"), wide{&x.id}, actors::serial::enum_of(x.status),
           x.expires_at_ns, x.timestamp);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, history_entry& x) {
  return f(caf::meta::type_name("kassa.history_entry"), actors::serial::wide{&x.account_id}, x.balance);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, change_set& x) {
  return f(caf::meta::type_name("kassa.change_set"), x.accounts_created,
           actors::serial::wide_list{&x.accounts_updated}, x.account_rows, x.transfers_created, x.pending_updates,
           x.history, x.timestamp_last);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_entry& x) {
  return f(caf::meta::type_name("kassa.probe_entry"), x.index, x.transfer, actors::serial::enum_of(x.status),
           x.expires_at_ns);
}

} // namespace kassa::ledger

namespace kassa::ledger::store {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, error& x) {
  return f(caf::meta::type_name("kassa.store_error"), actors::serial::enum_of(x.code), x.message);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_stats& x) {
  uint64_t transfers = x.transfers, accounts_written = x.accounts_written, transfers_indexed = x.transfers_indexed;
  return f(caf::meta::type_name("kassa.commit_stats"), x.sequence, transfers, accounts_written, transfers_indexed,
           x.checkpoint, x.write_ns, x.sync_ns, caf::meta::load_callback([&]() -> caf::error {
             x.transfers = static_cast<size_t>(transfers);
             x.accounts_written = static_cast<size_t>(accounts_written);
             x.transfers_indexed = static_cast<size_t>(transfers_indexed);
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account_filter& x) {
  return f(caf::meta::type_name("kassa.account_filter"), actors::serial::wide{&x.account_id}, x.timestamp_min,
           x.timestamp_max, x.limit, x.debits, x.credits, x.reversed);
}

} // namespace kassa::ledger::store
