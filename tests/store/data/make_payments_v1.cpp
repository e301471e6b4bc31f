// Writes tests/store/data/payments-v1/data.mdb: a payments store of format 1 (kassa before
// provider ids carried an installation id) holding a top-up whose provider outcome is unknown
// (sequence 1), a completed top-up (2) and a withdrawal left processing (3). It was built
// from kassa at format 1 with
//   g++ -std=c++17 -I. tests/store/data/make_payments_v1.cpp ledger/store/payments_store.cpp -llmdb
// and run as `./a.out tests/store/data/payments-v1`; the fixture is kept as it was written.
#include <cstdio>
#include <cstring>

#include "ledger/store/payments_store.hpp"

using namespace kassa;
namespace pay = ledger::payments;
namespace ks = ledger::store;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  ks::error err;
  auto s = ks::payments_store::open(argv[1], ks::durability::fsync, uint64_t{1} << 20, err);
  if (!s) {
    std::fprintf(stderr, "%s\n", err.message.c_str());
    return 1;
  }
  ks::payments_batch b;
  const uint16_t states[3] = {uint16_t(pay::order_state::unknown), uint16_t(pay::order_state::completed),
                              uint16_t(pay::order_state::processing)};
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    pay::order row{};
    row.id = make_u128(0, 1000 + seq);
    row.key = make_u128(0, 2000 + seq);
    row.account_id = 1;
    row.amount = 1000 * seq;
    row.trace_id = make_u128(7, seq);
    row.sequence = seq;
    row.ledger = 840;
    row.kind = uint16_t(seq == 3 ? pay::kind::withdrawal : pay::kind::topup);
    row.state = states[seq - 1];
    if (seq == 2) row.provider_amount = row.amount;
    std::memcpy(row.provider, "alpha", 5);
    row.created_ns = row.updated_ns = 1700000000000000000ull + seq;
    b.rows.push_back(row);
    pay::payment_command c{};
    c.key = row.key;
    c.order_id = row.id;
    c.account_id = 1;
    c.amount = row.amount;
    c.ledger = 840;
    c.kind = row.kind;
    b.keys.push_back(c);
    ks::journal_entry e{};
    e.timestamp_ns = row.created_ns;
    e.trace_id = row.trace_id;
    e.business_id = row.id;
    e.row_id = row.id;
    e.amount = row.amount;
    e.kind = row.kind;
    e.state = row.state;
    std::memcpy(e.actor, "flow", 4);
    std::memcpy(e.step, "accepted", 8);
    b.journal.push_back(e);
  }
  err = s->write(b);
  if (!err.ok()) {
    std::fprintf(stderr, "%s\n", err.message.c_str());
    return 1;
  }
  return 0;
}
