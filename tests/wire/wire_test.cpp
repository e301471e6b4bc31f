// The frame codec: round trips of every operation, every decode error, stream splitting, and
// the bytes of the documented examples.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "ledger/payments/case_resolution.hpp"
#include "runtime/wire/wire.hpp"
#include "tests/seed.hpp"
#include "tests/wire/examples.hpp"

using namespace kassa;
using namespace kassa::wire;

namespace {

const limits server_side{4096, 16, false};
const limits client_side{4096, 16, true};

header request(operation op, uint64_t id, uint32_t count) {
  header h;
  h.op = op;
  h.request_id = id;
  h.event_count = count;
  return h;
}

template <class T>
std::vector<uint8_t> frame_of(const header& h, const std::vector<T>& body) {
  std::vector<uint8_t> out;
  encode(out, h, body.data(), body.size() * sizeof(T));
  return out;
}

void reseal(std::vector<uint8_t>& frame) {
  const uint32_t crc = frame_checksum(frame.data(), frame.size());
  std::memcpy(frame.data() + 12, &crc, 4);
}

template <class T>
void poke(std::vector<uint8_t>& frame, size_t offset, T value) {
  std::memcpy(frame.data() + offset, &value, sizeof value);
  reseal(frame);
}

decoded decode_all(const std::vector<uint8_t>& frame, const limits& l) {
  return decode(frame.data(), frame.size(), l);
}

filter valid_filter() {
  filter f;
  f.account_id = 1;
  f.limit = 10;
  return f;
}

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    out += buf;
    out += (i % 16 == 15) ? '\n' : ' ';
  }
  return out;
}

template <class T>
void check_round_trip(const header& h, const std::vector<T>& body, const limits& l) {
  const auto frame = frame_of(h, body);
  const decoded d = decode_all(frame, l);
  INFO(name(h.op) << (h.reply ? " reply" : " request"));
  REQUIRE(d.outcome == decode_outcome::frame);
  CHECK(d.consumed == frame.size());
  CHECK(d.h.frame_bytes == frame.size());
  CHECK(d.h.op == h.op);
  CHECK(d.h.request_id == h.request_id);
  CHECK(d.h.event_count == h.event_count);
  CHECK(d.h.reply == h.reply);
  CHECK(d.h.st == h.st);
  CHECK(d.h.ctx.trace_id == h.ctx.trace_id);
  CHECK(d.h.ctx.business_id == h.ctx.business_id);
  CHECK(d.h.ctx.client_id == h.ctx.client_id);
  CHECK(d.h.ctx.deadline_ns == h.ctx.deadline_ns);
  CHECK(d.h.ctx.shadow == h.ctx.shadow);
  REQUIRE(d.body_bytes == body.size() * sizeof(T));
  if (d.body_bytes > 0) CHECK(std::memcmp(d.body, body.data(), d.body_bytes) == 0);
  CHECK(record_bytes(h.op, h.reply) * h.event_count == d.body_bytes);
}

} // namespace

TEST_CASE("every operation round-trips as a request and as a reply", "[wire]") {
  context ctx;
  ctx.trace_id = make_u128(0x0123456789abcdef, 0xfedcba9876543210);
  ctx.business_id = 42;
  ctx.client_id = 9;
  ctx.deadline_ns = 1'700'000'000'000'000'000ull;
  ctx.shadow = true;
  auto with_ctx = [&](header h, bool reply) {
    h.ctx = ctx;
    h.reply = reply;
    return h;
  };
  const limits& rq = server_side;
  const limits& rp = client_side;

  hello_reply hr;
  hr.frame_bytes_max = 4096;
  hr.batch_events_max = 16;
  hr.requests_inflight_max = 64;
  check_round_trip(with_ctx(request(operation::hello, 1, 1), false), std::vector<hello_request>(1), rq);
  check_round_trip(with_ctx(request(operation::hello, 1, 1), true), std::vector<hello_reply>{hr}, rp);

  ledger::account a{};
  a.id = 5;
  a.ledger = 1;
  a.code = 2;
  check_round_trip(with_ctx(request(operation::create_accounts, 2, 3), false),
                   std::vector<ledger::account>(3, a), rq);
  check_round_trip(with_ctx(request(operation::create_accounts, 2, 1), true),
                   std::vector<event_result>{{1, 14}}, rp);
  check_round_trip(with_ctx(request(operation::create_accounts, 2, 0), true),
                   std::vector<event_result>{}, rp);

  const ledger::transfer t = test::example_transfer();
  check_round_trip(with_ctx(request(operation::create_transfers, 3, 2), false),
                   std::vector<ledger::transfer>(2, t), rq);
  check_round_trip(with_ctx(request(operation::create_transfers, 3, 2), true),
                   std::vector<event_result>{{0, 34}, {1, 1}}, rp);

  check_round_trip(with_ctx(request(operation::lookup_accounts, 4, 2), false),
                   std::vector<u128>{5, 6}, rq);
  check_round_trip(with_ctx(request(operation::lookup_accounts, 4, 1), true),
                   std::vector<ledger::account>{a}, rp);
  check_round_trip(with_ctx(request(operation::lookup_transfers, 5, 1), false),
                   std::vector<u128>{1001}, rq);
  check_round_trip(with_ctx(request(operation::lookup_transfers, 5, 1), true),
                   std::vector<ledger::transfer>{t}, rp);

  check_round_trip(with_ctx(request(operation::get_account_transfers, 6, 1), false),
                   std::vector<filter>{valid_filter()}, rq);
  check_round_trip(with_ctx(request(operation::get_account_transfers, 6, 2), true),
                   std::vector<ledger::transfer>(2, t), rp);
  check_round_trip(with_ctx(request(operation::get_account_balances, 7, 1), false),
                   std::vector<filter>{valid_filter()}, rq);
  ledger::account_balance b{};
  b.credits_posted = 12345;
  b.timestamp = 77;
  check_round_trip(with_ctx(request(operation::get_account_balances, 7, 3), true),
                   std::vector<ledger::account_balance>(3, b), rp);

  const ledger::payments::payment_command cmd = test::example_topup();
  check_round_trip(with_ctx(request(operation::submit_payments, 8, 2), false),
                   std::vector<ledger::payments::payment_command>(2, cmd), rq);
  ledger::payments::payment_reply pr{};
  pr.index = 1;
  pr.result = uint32_t(ledger::payments::payment_result::in_progress);
  pr.state = uint16_t(ledger::payments::order_state::processing);
  pr.order_id = 9001;
  pr.amount = 5000;
  pr.fee = 30;
  check_round_trip(with_ctx(request(operation::submit_payments, 8, 2), true),
                   std::vector<ledger::payments::payment_reply>(2, pr), rp);
  check_round_trip(with_ctx(request(operation::lookup_orders, 9, 3), false),
                   std::vector<u128>{9001, 9002, 9001}, rq);
  ledger::payments::order ord{};
  ord.id = 9001;
  ord.amount = 5000;
  ord.kind = uint16_t(ledger::payments::kind::topup);
  ord.state = uint16_t(ledger::payments::order_state::completed);
  check_round_trip(with_ctx(request(operation::lookup_orders, 9, 2), true),
                   std::vector<ledger::payments::order>(2, ord), rp);
  check_round_trip(with_ctx(request(operation::lookup_orders, 9, 0), true),
                   std::vector<ledger::payments::order>{}, rp);
  check_round_trip(with_ctx(request(operation::lookup_order_items, 10, 1), false), std::vector<u128>{9001}, rq);
  ledger::payments::order_item item{};
  item.id = 3;
  item.order_id = 9001;
  item.amount = 2500;
  item.kind = uint16_t(ledger::payments::kind::pay);
  check_round_trip(with_ctx(request(operation::lookup_order_items, 10, 2), true),
                   std::vector<ledger::payments::order_item>(2, item), rp);

  authenticate_request ar;
  ar.client_id = 9;
  for (size_t i = 0; i < nonce_bytes; ++i) ar.client_nonce[i] = uint8_t(0xb0 + i);
  for (size_t i = 0; i < proof_bytes; ++i) ar.proof[i] = uint8_t(i * 7);
  check_round_trip(with_ctx(request(operation::authenticate, 10, 1), false),
                   std::vector<authenticate_request>{ar}, rq);
  authenticate_reply ap;
  for (size_t i = 0; i < proof_bytes; ++i) ap.proof[i] = uint8_t(255 - i);
  ap.operations = 0x3FE;
  ap.ledgers_count = 2;
  check_round_trip(with_ctx(request(operation::authenticate, 10, 1), true),
                   std::vector<authenticate_reply>{ap}, rp);

  // Error replies carry no body, for every operation and every status.
  for (uint16_t op = operation_min; op <= operation_max; ++op)
    for (uint16_t st = 1; st <= status_max && operation_known(op); ++st) {
      header h = request(operation(op), 77, 0);
      std::vector<uint8_t> out;
      encode_error(out, h, status(st));
      const decoded d = decode_all(out, client_side);
      REQUIRE(d.outcome == decode_outcome::frame);
      CHECK(d.h.st == status(st));
      CHECK(d.h.request_id == 77);
      CHECK(d.body_bytes == 0);
    }
}

TEST_CASE("cases round-trip; a bad cases filter or a resolve_case with kassa's fields set is refused",
          "[wire][cases]") {
  cases_filter f;
  f.id_min = 3;
  f.limit = cases_per_reply_max(server_side.frame_bytes_max, server_side.batch_events_max);
  f.flags = cases_open_only;
  CHECK(f.limit == 9); // (4096 - 128) / 400 cases fit in a frame, fewer than 16 events
  check_round_trip(request(operation::get_cases, 11, 1), std::vector<cases_filter>{f}, server_side);
  case_record rec{};
  rec.c.id = 3;
  rec.c.ledger = 840;
  rec.resolution.case_id = 3;
  rec.resolution.transfer_id = ledger::payments::case_transfer_id(3);
  header h = request(operation::get_cases, 11, 2);
  h.reply = true;
  check_round_trip(h, std::vector<case_record>(2, rec), client_side);
  ledger::store::recon_resolution r;
  r.case_id = 3;
  r.action = uint8_t(ledger::payments::case_action::book);
  std::strcpy(r.note, "why");
  check_round_trip(request(operation::resolve_case, 12, 1), std::vector<ledger::store::recon_resolution>{r},
                   server_side);
  resolve_reply rr;
  rr.case_id = 3;
  rr.transfer_id = rec.resolution.transfer_id;
  h = request(operation::resolve_case, 12, 1);
  h.reply = true;
  check_round_trip(h, std::vector<resolve_reply>{rr}, client_side);

  auto refused = [](header h, const void* body, size_t bytes) {
    std::vector<uint8_t> frame;
    encode(frame, h, body, bytes);
    return decode_all(frame, server_side).error;
  };
  for (int k = 0; k < 4; ++k) {
    cases_filter bad = f;
    switch (k) {
      case 0: bad.limit = 0; break;
      case 1: bad.limit = f.limit + 1; break;
      case 2: bad.flags = 2; break;
      case 3: bad.reserved[15] = 1; break;
    }
    CHECK(refused(request(operation::get_cases, 11, 1), &bad, sizeof bad) == status::filter_invalid);
  }
  cases_filter two[2] = {f, f};
  CHECK(refused(request(operation::get_cases, 11, 2), two, sizeof two) == status::body_size_invalid);
  ledger::store::recon_resolution filled = r;
  filled.transfer_id = 1; // kassa's to fill
  CHECK(refused(request(operation::resolve_case, 12, 1), &filled, sizeof filled) == status::reserved_nonzero);
  CHECK(uint16_t(operation::get_cases) == 11);
  CHECK(uint16_t(operation::resolve_case) == 12);
  CHECK(uint16_t(status::reconciliation_disabled) == 23);
  CHECK(name(status::reconciliation_disabled) == "reconciliation_disabled");
}

TEST_CASE("random frames round-trip", "[wire]") {
  std::mt19937_64 rng(test::seed("wire random round trip"));
  const limits l{1u << 16, 64, false};
  for (int round = 0; round < 2000; ++round) {
    const bool reply = rng() % 2;
    header h;
    static const operation ops[] = {
#define KASSA_WIRE_LIST(n, v) operation::n,
        KASSA_WIRE_OPERATIONS(KASSA_WIRE_LIST)
#undef KASSA_WIRE_LIST
    };
    h.op = ops[rng() % std::size(ops)];
    h.reply = reply;
    h.request_id = rng() | 1;
    h.ctx.trace_id = make_u128(rng(), rng());
    h.ctx.business_id = make_u128(rng(), rng());
    h.ctx.client_id = rng();
    h.ctx.deadline_ns = rng();
    h.ctx.shadow = rng() % 2;
    const bool single = h.op == operation::hello || h.op == operation::authenticate ||
                        h.op == operation::resolve_case ||
                        (!reply && (h.op == operation::get_account_transfers ||
                                    h.op == operation::get_account_balances || h.op == operation::get_cases));
    h.event_count = single ? 1 : uint32_t(rng() % (l.batch_events_max + 1));
    if (!reply && h.op == operation::submit_payments && h.event_count == 0) h.event_count = 1;
    std::vector<uint8_t> body(h.event_count * record_bytes(h.op, reply));
    for (auto& b : body) b = uint8_t(rng());
    if (!reply && h.op == operation::authenticate) std::memset(body.data() + 8, 0, 8); // reserved
    if (!reply && h.op == operation::get_cases) {
      cases_filter f;
      f.id_min = rng();
      f.limit = 1 + rng() % cases_per_reply_max(l.frame_bytes_max, l.batch_events_max);
      f.flags = rng() % 2 ? cases_open_only : 0;
      std::memcpy(body.data(), &f, sizeof f);
    } else if (!reply && h.op == operation::resolve_case) {
      ledger::store::recon_resolution r;
      r.case_id = rng();
      r.action = uint8_t(rng());
      r.amount = make_u128(rng(), rng());
      std::memcpy(body.data(), &r, sizeof r);
    } else if (!reply && single && h.op != operation::hello && h.op != operation::authenticate) {
      filter f = valid_filter();
      f.account_id = make_u128(rng(), rng() | 1);
      f.limit = 1 + rng() % l.batch_events_max;
      f.flags = uint32_t(1 + rng() % 3) | (rng() % 2 ? filter_reversed : 0);
      std::memcpy(body.data(), &f, sizeof f);
    }
    check_round_trip(h, body, limits{l.frame_bytes_max, l.batch_events_max, reply});
  }
}

TEST_CASE("a stream fed byte by byte yields need_more until the frame is complete", "[wire]") {
  const auto frame = test::example_create_transfers();
  for (size_t n = 0; n < frame.size(); ++n) {
    const decoded d = decode(frame.data(), n, server_side);
    REQUIRE(d.outcome == decode_outcome::need_more);
    CHECK(d.consumed == 0);
  }
  const decoded d = decode(frame.data(), frame.size(), server_side);
  CHECK(d.outcome == decode_outcome::frame);
  CHECK(d.consumed == frame.size());
}

TEST_CASE("two frames back to back decode one after the other", "[wire]") {
  auto stream = test::example_hello();
  const auto second = test::example_create_transfers();
  stream.insert(stream.end(), second.begin(), second.end());
  stream.push_back('K'); // the start of a third frame

  decoded d = decode(stream.data(), stream.size(), server_side);
  REQUIRE(d.outcome == decode_outcome::frame);
  CHECK(d.h.op == operation::hello);
  size_t at = d.consumed;
  d = decode(stream.data() + at, stream.size() - at, server_side);
  REQUIRE(d.outcome == decode_outcome::frame);
  CHECK(d.h.op == operation::create_transfers);
  CHECK(d.h.request_id == 2);
  const auto transfers = records<ledger::transfer>(d.body, d.body_bytes);
  REQUIRE(transfers.size() == 1);
  CHECK(transfers[0].amount == 12345);
  at += d.consumed;
  d = decode(stream.data() + at, stream.size() - at, server_side);
  CHECK(d.outcome == decode_outcome::need_more);
}

TEST_CASE("each decode error comes from the frame that causes it", "[wire]") {
  const auto good = test::example_create_transfers();
  auto expect = [](const std::vector<uint8_t>& frame, decode_outcome outcome, status st,
                   const limits& l = server_side) {
    const decoded d = decode_all(frame, l);
    INFO("expected " << name(st) << ", got " << name(d.error));
    REQUIRE(d.outcome == outcome);
    CHECK(d.error == st);
    CHECK(closes_connection(st) == (outcome == decode_outcome::error_close));
    if (outcome == decode_outcome::error_keep_open) {
      CHECK(d.consumed == frame.size()); // skip exactly this frame
      CHECK(d.h.request_id == 2);
    } else {
      CHECK(d.consumed == 0);
    }
  };
  using o = decode_outcome;

  SECTION("bad_magic, judged on the first bytes already") {
    auto f = good;
    f[0] = 'X';
    expect(f, o::error_close, status::bad_magic);
    CHECK(decode(f.data(), 1, server_side).outcome == o::error_close);
    const uint8_t http[] = {'G', 'E', 'T', ' '};
    CHECK(decode(http, 4, server_side).error == status::bad_magic);
  }
  SECTION("frame_too_large, judged before the body arrives") {
    auto f = good;
    poke<uint32_t>(f, 8, server_side.frame_bytes_max + 1);
    expect(f, o::error_close, status::frame_too_large);
    CHECK(decode(f.data(), 12, server_side).error == status::frame_too_large);
  }
  SECTION("frame_too_small") {
    auto f = good;
    poke<uint32_t>(f, 8, 127);
    expect(f, o::error_close, status::frame_too_small);
  }
  SECTION("bad_checksum, of a header byte or a body byte") {
    auto f = good;
    f[20] ^= 1;
    expect(f, o::error_close, status::bad_checksum);
    f = good;
    f.back() ^= 0x80;
    expect(f, o::error_close, status::bad_checksum);
  }
  SECTION("version_unsupported") {
    auto f = good;
    poke<uint16_t>(f, 4, 2);
    expect(f, o::error_keep_open, status::version_unsupported);
  }
  SECTION("reserved_nonzero: reserved bytes, unknown flags, reply flag or status in a request") {
    for (size_t at : {80, 100, 127}) {
      auto f = good;
      f[at] = 1;
      reseal(f);
      expect(f, o::error_keep_open, status::reserved_nonzero);
    }
    auto f = good;
    poke<uint16_t>(f, 28, 1u << 2);
    expect(f, o::error_keep_open, status::reserved_nonzero);
    f = good;
    poke<uint16_t>(f, 28, flag_reply);
    expect(f, o::error_keep_open, status::reserved_nonzero);
    f = good;
    poke<uint16_t>(f, 30, 1);
    expect(f, o::error_keep_open, status::reserved_nonzero);
    f = good;
    poke<uint64_t>(f, 16, 0); // request_id 0 is reserved for connection-level errors
    {
      const decoded d = decode_all(f, server_side);
      CHECK(d.outcome == o::error_keep_open);
      CHECK(d.error == status::reserved_nonzero);
    }
    // A client expects replies: a frame without the reply flag is refused.
    expect(good, o::error_keep_open, status::reserved_nonzero, client_side);
  }
  SECTION("operation_unknown") {
    for (uint16_t op : {0, 13, 0xFFFF}) {
      auto f = good;
      poke<uint16_t>(f, 6, op);
      expect(f, o::error_keep_open, status::operation_unknown);
    }
  }
  SECTION("body_size_invalid") {
    auto f = good;
    poke<uint32_t>(f, 24, 2); // event_count 2, one record
    expect(f, o::error_keep_open, status::body_size_invalid);
    f = good;
    f.push_back(0);
    poke<uint32_t>(f, 8, uint32_t(f.size()));
    expect(f, o::error_keep_open, status::body_size_invalid);
    // A filter request holds exactly one filter.
    filter two[2] = {valid_filter(), valid_filter()};
    std::vector<uint8_t> g;
    encode(g, request(operation::get_account_transfers, 2, 2), two, sizeof two);
    expect(g, o::error_keep_open, status::body_size_invalid);
    // A submit_payments request holds at least one command.
    g.clear();
    encode(g, request(operation::submit_payments, 2, 0), nullptr, 0);
    expect(g, o::error_keep_open, status::body_size_invalid);
    // An error reply has no body.
    header h = request(operation::lookup_accounts, 2, 1);
    h.reply = true;
    h.st = status::busy;
    g.clear();
    u128 id = 1;
    encode(g, h, &id, sizeof id);
    expect(g, o::error_keep_open, status::body_size_invalid, client_side);
    // An authenticate request holds exactly one record.
    authenticate_request two_auth[2];
    g.clear();
    encode(g, request(operation::authenticate, 2, 2), two_auth, sizeof two_auth);
    expect(g, o::error_keep_open, status::body_size_invalid);
  }
  SECTION("reserved_nonzero: the reserved field of an authenticate request") {
    authenticate_request a;
    a.client_id = 9;
    a.reserved = 1;
    std::vector<uint8_t> g;
    encode(g, request(operation::authenticate, 2, 1), &a, sizeof a);
    expect(g, o::error_keep_open, status::reserved_nonzero);
  }
  SECTION("too_many_events") {
    std::vector<ledger::transfer> many(server_side.batch_events_max + 1);
    const auto f = frame_of(request(operation::create_transfers, 2, uint32_t(many.size())), many);
    expect(f, o::error_keep_open, status::too_many_events);
    std::vector<ledger::payments::payment_command> commands(server_side.batch_events_max + 1);
    expect(frame_of(request(operation::submit_payments, 2, uint32_t(commands.size())), commands),
           o::error_keep_open, status::too_many_events);
  }
  SECTION("too_many_events: lookup_orders asks for no more orders than fit in a reply frame") {
    // 4096-byte frames hold (4096 - 128) / 256 = 15 orders, fewer than batch_events_max 16.
    CHECK(request_events_max(operation::lookup_orders, 4096, 16) == 15);
    CHECK(request_events_max(operation::lookup_orders, 1u << 20, 8190) == 4095);
    CHECK(request_events_max(operation::lookup_transfers, 4096, 16) == 16);
    std::vector<u128> ids(15, 1);
    CHECK(decode_all(frame_of(request(operation::lookup_orders, 2, 15), ids), server_side).outcome ==
          o::frame);
    ids.push_back(1);
    expect(frame_of(request(operation::lookup_orders, 2, 16), ids), o::error_keep_open,
           status::too_many_events);
  }
  SECTION("filter_invalid") {
    std::vector<filter> bad(6, valid_filter());
    bad[0].account_id = 0;
    bad[1].limit = 0;
    bad[2].limit = server_side.batch_events_max + 1;
    bad[3].flags = filter_reversed;
    bad[4].reserved[23] = 1;
    bad[5].timestamp_min = 10;
    bad[5].timestamp_max = 9;
    for (const filter& b : bad) {
      const auto f = frame_of(request(operation::get_account_balances, 2, 1), std::vector<filter>{b});
      expect(f, o::error_keep_open, status::filter_invalid);
    }
  }
}

TEST_CASE("statuses only a server produces are named, numbered and keep the connection", "[wire]") {
  std::set<std::string_view> names;
  for (uint16_t st = 0; st <= status_max; ++st) names.insert(name(status(st)));
  CHECK(names.size() == status_max + 1u);
  CHECK(name(status(status_max + 1)) == "unknown");
  CHECK(name(status::store_unavailable) == "store_unavailable");
  CHECK(name(operation::get_account_balances) == "get_account_balances");
  CHECK(name(operation::submit_payments) == "submit_payments");
  CHECK(name(operation::lookup_orders) == "lookup_orders");
  CHECK(name(status::payments_disabled) == "payments_disabled");
  CHECK(uint16_t(status::payments_disabled) == 18);
  CHECK(name(operation::authenticate) == "authenticate");
  CHECK(uint16_t(operation::authenticate) == 10);
  CHECK(name(operation::lookup_order_items) == "lookup_order_items");
  CHECK(uint16_t(operation::lookup_order_items) == 21);
  CHECK(uint16_t(operation::get_cases) == 11);
  CHECK(uint16_t(operation::resolve_case) == 12);
  for (uint16_t op = 13; op <= 20; ++op) CHECK_FALSE(operation_known(op)); // kept for other operations
  CHECK(request_events_max(operation::lookup_order_items, 1u << 20, 8190) == 4095);
  CHECK(uint16_t(status::unauthenticated) == 19);
  CHECK(uint16_t(status::forbidden) == 20);
  CHECK(uint16_t(status::authentication_failed) == 21);
  CHECK(name(status::authentication_failed) == "authentication_failed");
  CHECK(uint16_t(status::shadow_disabled) == 22);
  CHECK(name(status::shadow_disabled) == "shadow_disabled");
  // The connection stays open: the server closes it itself after too many failed attempts.
  for (status st : {status::busy, status::hello_required, status::inflight_limit,
                    status::deadline_exceeded, status::store_unavailable, status::internal,
                    status::payments_disabled, status::unauthenticated, status::forbidden,
                    status::authentication_failed, status::shadow_disabled, status::reconciliation_disabled})
    CHECK_FALSE(closes_connection(st));
}

// The hex dumps of docs/protocol.md ("Worked examples"), byte for byte.
TEST_CASE("the documented example frames are the codec's bytes", "[wire]") {
  const std::string hello_hex =
      "4b 41 53 53 01 00 01 00 90 00 00 00 9a f7 12 5e\n"
      "01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00\n";
  const std::string transfer_hex =
      "4b 41 53 53 01 00 03 00 00 01 00 00 99 62 58 da\n"
      "02 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00\n"
      "07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "2a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "e9 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "39 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
      "01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00\n";
  const auto hello = test::example_hello();
  const auto create = test::example_create_transfers();
  INFO("hello:\n" << hex(hello));
  INFO("create_transfers:\n" << hex(create));
  CHECK(hex(hello) == hello_hex);
  CHECK(hex(create) == transfer_hex);
  CHECK(decode_all(hello, server_side).outcome == decode_outcome::frame);
  CHECK(decode_all(create, server_side).outcome == decode_outcome::frame);
}

// Not run by default: writes the fuzz seed corpus (valid frames of every operation) to
// $KASSA_WIRE_CORPUS, e.g. KASSA_WIRE_CORPUS=tests/fuzz/corpus/wire test_wire "[.corpus]".
TEST_CASE("write the wire fuzz corpus", "[wire][.corpus]") {
  const char* dir = std::getenv("KASSA_WIRE_CORPUS");
  REQUIRE(dir != nullptr);
  auto write = [&](const std::string& file, const std::vector<uint8_t>& bytes) {
    std::ofstream out(std::string(dir) + "/" + file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    REQUIRE(out.good());
  };
  write("hello", test::example_hello());
  write("create_transfers", test::example_create_transfers());
  auto stream = test::example_hello();
  const auto t = test::example_create_transfers();
  stream.insert(stream.end(), t.begin(), t.end());
  write("hello_then_create_transfers", stream);
  ledger::account a{};
  a.id = 1;
  a.ledger = 1;
  a.code = 1;
  write("create_accounts", frame_of(request(operation::create_accounts, 3, 2),
                                    std::vector<ledger::account>(2, a)));
  write("lookup_accounts", frame_of(request(operation::lookup_accounts, 4, 2), std::vector<u128>{1, 2}));
  write("lookup_transfers", frame_of(request(operation::lookup_transfers, 5, 1), std::vector<u128>{1001}));
  write("get_account_transfers", frame_of(request(operation::get_account_transfers, 6, 1),
                                          std::vector<filter>{valid_filter()}));
  write("get_account_balances", frame_of(request(operation::get_account_balances, 7, 1),
                                         std::vector<filter>{valid_filter()}));
  write("submit_payments", test::example_submit_payments());
  write("lookup_orders", test::example_lookup_orders());
  auto hello_then_authenticate = test::example_hello();
  const auto auth = test::example_authenticate();
  hello_then_authenticate.insert(hello_then_authenticate.end(), auth.begin(), auth.end());
  write("hello_then_authenticate", hello_then_authenticate);
}

TEST_CASE("a hello reply carries the access flags and the server nonce where the doc says", "[wire]") {
  hello_reply r;
  r.access_flags = access_required | access_available;
  for (size_t i = 0; i < nonce_bytes; ++i) r.server_nonce[i] = uint8_t(0xa0 + i);
  r.frame_bytes_max = 4096;
  r.batch_events_max = 16;
  r.requests_inflight_max = 64;
  header h = request(operation::hello, 1, 1);
  h.reply = true;
  const auto frame = frame_of(h, std::vector<hello_reply>{r});
  REQUIRE(frame.size() == header_bytes + 32);
  const uint8_t* body = frame.data() + header_bytes;
  CHECK(body[2] == 3); // access_flags: required | available
  CHECK(body[3] == 0);
  for (size_t i = 0; i < nonce_bytes; ++i) CHECK(body[16 + i] == 0xa0 + i);
  const decoded d = decode_all(frame, client_side);
  REQUIRE(d.outcome == decode_outcome::frame);
  hello_reply back;
  std::memcpy(&back, d.body, sizeof back);
  CHECK(back.access_flags == r.access_flags);
  CHECK(std::memcmp(back.server_nonce, r.server_nonce, nonce_bytes) == 0);
}
