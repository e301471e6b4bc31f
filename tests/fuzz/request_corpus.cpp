// Writes the seed corpus of request_fuzz: each file is the byte stream of one client connection
// (hello first, then requests). Frames are encoded by the wire codec and then get a checksum
// field of 0, which request_fuzz fills in with the right checksum before sending, so that
// mutations of a frame's fields reach the server; `bad_checksum` keeps a wrong one.
// usage: request_corpus DIR   (the checked-in corpus: request_corpus tests/fuzz/corpus/request)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ledger/payments/records.hpp"
#include "ledger/types.hpp"
#include "runtime/wire/wire.hpp"

namespace {

using namespace kassa;
using bytes = std::vector<uint8_t>;

uint64_t request_id = 0;

template <class T>
bytes frame(wire::operation op, const std::vector<T>& records) {
  wire::header h;
  h.op = op;
  h.request_id = ++request_id;
  h.event_count = uint32_t(records.size());
  bytes out;
  wire::encode(out, h, records.data(), records.size() * sizeof(T));
  std::memset(out.data() + 12, 0, 4); // the checksum: request_fuzz fills it in
  return out;
}

bytes hello() { return frame(wire::operation::hello, std::vector<wire::hello_request>{wire::hello_request{}}); }

ledger::account account(u128 id, uint32_t ledger = 1, uint16_t flags = 0) {
  ledger::account a{};
  a.id = id;
  a.ledger = ledger;
  a.code = 10;
  a.flags = flags;
  return a;
}

ledger::transfer transfer(u128 id, u128 debit, u128 credit, u128 amount, uint16_t flags = 0) {
  ledger::transfer t{};
  t.id = id;
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount = amount;
  t.ledger = 1;
  t.code = 1;
  t.flags = flags;
  return t;
}

// A pending transfer that expires after a second.
ledger::transfer expiring(u128 id, u128 debit, u128 credit, u128 amount) {
  ledger::transfer t = transfer(id, debit, credit, amount, ledger::transfer_pending);
  t.timeout = 1;
  return t;
}

ledger::transfer resolve(u128 id, u128 pending_id, uint16_t flag, u128 amount = 0) {
  ledger::transfer t{};
  t.id = id;
  t.pending_id = pending_id;
  t.flags = flag;
  t.amount = amount;
  return t;
}

// Accounts 1..6 on ledger 1 (1 may not overdraw) and 7 on ledger 2: with two shards, some
// transfers between them cross shards.
bytes accounts() {
  std::vector<ledger::account> as;
  as.push_back(account(1, 1, ledger::account_debits_must_not_exceed_credits));
  for (u128 id = 2; id <= 6; ++id) as.push_back(account(id));
  as.push_back(account(7, 2));
  return frame(wire::operation::create_accounts, as);
}

namespace lp = ledger::payments;

// A payment command (docs/payments.md says which fields each kind uses).
lp::payment_command command(lp::kind k, u128 key, u128 order_id, u128 account_id, u128 amount, uint32_t ledger,
                            lp::source source = lp::source::none, u128 counterparty_id = 0) {
  lp::payment_command c{};
  c.key = key;
  c.order_id = order_id;
  c.account_id = account_id;
  c.counterparty_id = counterparty_id;
  c.amount = amount;
  c.ledger = ledger;
  c.kind = uint16_t(k);
  c.source = uint16_t(source);
  return c;
}

bytes payments(std::vector<lp::payment_command> commands) { return frame(wire::operation::submit_payments, commands); }

wire::filter filter_of(u128 account_id) {
  wire::filter f;
  f.account_id = account_id;
  f.limit = 10;
  return f;
}

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

bool write(const std::string& dir, const std::string& name, const bytes& b) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  return out.good();
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: request_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  using ledger::transfer_linked;
  using ledger::transfer_pending;
  using ledger::transfer_post_pending;
  using ledger::transfer_void_pending;
  bool ok = true;
  ok &= write(dir, "create_accounts", cat({hello(), accounts()}));
  ok &= write(dir, "transfers",
              cat({hello(), accounts(),
                   frame(wire::operation::create_transfers,
                         std::vector<ledger::transfer>{transfer(100, 2, 1, 500), transfer(101, 1, 3, 200),
                                                       transfer(102, 1, 4, 1000), // overdraws 1
                                                       transfer(103, 3, 7, 5)})})); // another ledger
  ok &= write(dir, "two_phase",
              cat({hello(), accounts(),
                   frame(wire::operation::create_transfers,
                         std::vector<ledger::transfer>{transfer(200, 2, 3, 300, transfer_pending),
                                                       transfer(201, 2, 4, 300, transfer_pending),
                                                       resolve(202, 200, transfer_post_pending, 100),
                                                       resolve(203, 201, transfer_void_pending),
                                                       expiring(204, 5, 6, 50)})})); // left to expire
  ok &= write(dir, "linked_chains",
              cat({hello(), accounts(),
                   frame(wire::operation::create_transfers,
                         std::vector<ledger::transfer>{transfer(300, 2, 3, 10, transfer_linked),
                                                       transfer(301, 3, 4, 10, transfer_linked),
                                                       transfer(302, 4, 5, 10), // chain ok
                                                       transfer(303, 5, 6, 10, transfer_linked),
                                                       transfer(304, 6, 1, 10, transfer_linked),
                                                       transfer(305, 1, 2, 99)})})); // 1 overdraws
  ok &= write(dir, "lookups",
              cat({hello(), accounts(),
                   frame(wire::operation::create_transfers, std::vector<ledger::transfer>{transfer(400, 2, 3, 7)}),
                   frame(wire::operation::lookup_accounts, std::vector<u128>{1, 2, 3, 99}),
                   frame(wire::operation::lookup_transfers, std::vector<u128>{400, 401}),
                   frame(wire::operation::get_account_transfers, std::vector<wire::filter>{filter_of(2)}),
                   frame(wire::operation::get_account_balances, std::vector<wire::filter>{filter_of(2)})}));
  ok &= write(dir, "repeated_ids",
              cat({hello(), accounts(), accounts(),
                   frame(wire::operation::create_transfers, std::vector<ledger::transfer>{transfer(500, 2, 3, 1)}),
                   frame(wire::operation::create_transfers,
                         std::vector<ledger::transfer>{transfer(500, 2, 3, 1), transfer(500, 2, 3, 2)})}));
  {
    bytes bad = frame(wire::operation::create_transfers, std::vector<ledger::transfer>{transfer(600, 2, 3, 1)});
    const uint32_t wrong = 0xdeadbeef;
    std::memcpy(bad.data() + 12, &wrong, 4);
    ok &= write(dir, "bad_checksum", cat({hello(), accounts(), bad}));
  }
  {
    // A frame that announces more bytes than server.frame_bytes_max: framing is lost.
    bytes big = frame(wire::operation::lookup_accounts, std::vector<u128>{1});
    const uint32_t announced = 1u << 30;
    std::memcpy(big.data() + 8, &announced, 4);
    ok &= write(dir, "oversized_length", cat({hello(), big}));
  }
  ok &= write(dir, "no_hello", accounts());
  {
    // More requests at once than requests_inflight_max, and a payment command of zeros.
    std::vector<bytes> parts{hello(), accounts()};
    for (u128 id = 700; id < 710; ++id) {
      parts.push_back(frame(wire::operation::create_transfers, std::vector<ledger::transfer>{transfer(id, 3, 2, 1)}));
    }
    ledger::payments::payment_command p{};
    parts.push_back(frame(wire::operation::submit_payments, std::vector<ledger::payments::payment_command>{p}));
    bytes all;
    for (const bytes& b : parts) all.insert(all.end(), b.begin(), b.end());
    ok &= write(dir, "many_in_flight", all);
  }
  // An order to merchant 2 paid from the balances of 3 and 4, then partly refunded, and the
  // rows looked up. The commands of a frame run at once: the pays find the order, and the
  // refund its captures, only when the input runs again (request_fuzz keeps its core).
  ok &= write(dir, "payments_order",
              cat({hello(), accounts(),
                   payments({command(lp::kind::create_order, 800, 800, 2, 1000, 1),
                             command(lp::kind::pay, 801, 800, 3, 600, 0, lp::source::balance),
                             command(lp::kind::pay, 802, 800, 4, 400, 0, lp::source::balance),
                             command(lp::kind::refund, 803, 800, 0, 300, 0)}),
                   frame(wire::operation::lookup_orders, std::vector<u128>{800, 801, 802, 803})}));
  // Transfers (one within the limits, one that overdraws 1, one to another ledger's account),
  // a topup and a withdrawal that find no provider, then the same frame again: each answered `exists`.
  {
    const bytes mixed = payments({command(lp::kind::transfer, 810, 810, 2, 100, 1, lp::source::none, 3),
                                  command(lp::kind::transfer, 811, 811, 1, 5, 1, lp::source::none, 3),
                                  command(lp::kind::transfer, 812, 812, 3, 5, 1, lp::source::none, 7),
                                  command(lp::kind::topup, 813, 813, 3, 10, 1),
                                  command(lp::kind::withdrawal, 814, 814, 3, 10, 1)});
    ok &= write(dir, "payments_mixed", cat({hello(), accounts(), mixed, mixed}));
  }
  {
    // More commands in one frame than payments.orders_inflight_max.
    std::vector<lp::payment_command> many;
    for (u128 id = 820; id < 832; ++id) many.push_back(command(lp::kind::transfer, id, id, 5, 1, 1, lp::source::none, 6));
    ok &= write(dir, "payments_many", cat({hello(), accounts(), payments(many)}));
  }
  // Pending transfers left pending, some across shards (their legs hold the two-phase
  // clearing accounts), and one that expires.
  ok &= write(dir, "two_phase_left_pending",
              cat({hello(), accounts(),
                   frame(wire::operation::create_transfers,
                         std::vector<ledger::transfer>{transfer(210, 2, 3, 300, transfer_pending),
                                                       transfer(211, 2, 4, 300, transfer_pending),
                                                       transfer(212, 3, 5, 20, transfer_pending),
                                                       transfer(213, 4, 6, 20, transfer_pending),
                                                       expiring(214, 5, 6, 50)})}));
  if (!ok) {
    std::fprintf(stderr, "request_corpus: cannot write to %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
