// The payment core's pure rules: command validation precedence, key comparison, and fee
// arithmetic against an independent 256-bit reference.
#include <catch2/catch.hpp>

#include <set>

#include <boost/multiprecision/cpp_int.hpp>
#include <cstring>
#include <random>

#include "ledger/payments/ids.hpp"
#include "ledger/payments/rules.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::ledger::payments;
using big = boost::multiprecision::uint256_t;

namespace {

payment_command topup() {
  payment_command c{};
  c.key = 1;
  c.order_id = 2;
  c.account_id = 3;
  c.amount = 100;
  c.ledger = 840;
  c.kind = uint16_t(kind::topup);
  return c;
}

big to_big(u128 v) { return (big(uint64_t(v >> 64)) << 64) | big(uint64_t(v)); }

// amount * ppm / 1e6 rounded by `r`, computed in 256 bits.
big reference(u128 amount, uint32_t ppm, rounding r) {
  const big p = to_big(amount) * ppm;
  big q = p / 1000000, rest = p % 1000000;
  if (rest != 0) {
    if (r == rounding::up) q += 1;
    else if (r == rounding::half_even && (rest * 2 > 1000000 || (rest * 2 == 1000000 && (q & 1) != 0))) q += 1;
  }
  return q;
}

} // namespace

TEST_CASE("a well-formed command of each kind validates ok", "[payments]") {
  auto c = topup();
  CHECK(validate(c) == payment_result::ok);
  c.kind = uint16_t(kind::withdrawal);
  CHECK(validate(c) == payment_result::ok);
  c.kind = uint16_t(kind::create_order);
  CHECK(validate(c) == payment_result::ok);
  c.kind = uint16_t(kind::transfer);
  c.counterparty_id = 4;
  CHECK(validate(c) == payment_result::ok);
  payment_command p{};
  p.key = 9, p.order_id = 2, p.account_id = 3, p.amount = 5, p.kind = uint16_t(kind::pay), p.source = uint16_t(source::balance);
  CHECK(validate(p) == payment_result::ok);
  payment_command r{};
  r.key = 10, r.order_id = 2, r.amount = 5, r.kind = uint16_t(kind::refund);
  CHECK(validate(r) == payment_result::ok);
}

TEST_CASE("a command breaking several rules gets the first in the order of the codes", "[payments]") {
  auto c = topup();
  c.reserved[1] = 1;
  c.key = 0;
  c.amount = 0;
  CHECK(validate(c) == payment_result::reserved_field);
  c.reserved[1] = 0;
  CHECK(validate(c) == payment_result::key_must_not_be_zero);
  c.key = u128_max;
  CHECK(validate(c) == payment_result::key_must_not_be_int_max);
  c.key = 1;
  c.kind = 99;
  CHECK(validate(c) == payment_result::kind_invalid);
  c.kind = uint16_t(kind::topup);
  c.source = uint16_t(source::balance);
  CHECK(validate(c) == payment_result::source_invalid);
  c.source = 0;
  c.order_id = 0;
  CHECK(validate(c) == payment_result::order_id_must_not_be_zero);
  c.order_id = u128_max;
  CHECK(validate(c) == payment_result::order_id_must_not_be_int_max);
  c.order_id = 2;
  c.account_id = 0;
  CHECK(validate(c) == payment_result::account_id_must_not_be_zero);
  c.account_id = 3;
  CHECK(validate(c) == payment_result::amount_must_not_be_zero);
  c.amount = 1;
  CHECK(validate(c) == payment_result::ok);
  auto t = topup();
  t.kind = uint16_t(kind::transfer);
  CHECK(validate(t) == payment_result::counterparty_id_must_not_be_zero);
  t.counterparty_id = t.account_id;
  CHECK(validate(t) == payment_result::accounts_must_be_different);
  auto p = topup();
  p.kind = uint16_t(kind::pay);
  CHECK(validate(p) == payment_result::source_invalid); // pay needs a source
  p.source = uint16_t(source::provider);
  CHECK(validate(p) == payment_result::reserved_field); // pay takes the order's ledger
  p.ledger = 0;
  CHECK(validate(p) == payment_result::ok);
  p.source = uint16_t(source::balance);
  std::strcpy(p.provider, "alpha");
  CHECK(validate(p) == payment_result::reserved_field); // a balance item names no provider
  auto r = topup();
  r.kind = uint16_t(kind::refund);
  CHECK(validate(r) == payment_result::reserved_field); // a refund names no account or ledger
}

TEST_CASE("a repeated key is the same command only when every byte is the same", "[payments]") {
  auto a = topup(), b = topup();
  CHECK(same_fields(a, b));
  b.user_data_64 = 1;
  CHECK(!same_fields(a, b));
}

TEST_CASE("fees round as named and never overflow silently (256-bit reference, random amounts)", "[payments]") {
  const uint64_t seed = kassa::test::seed("payments fees");
  std::mt19937_64 rng(seed);
  INFO("seed " << seed);
  for (int i = 0; i < 200000; ++i) {
    const int width = int(rng() % 128) + 1;
    u128 amount = (u128(rng()) << 64 | rng());
    if (width < 128) amount &= (u128(1) << width) - 1;
    const uint32_t ppm = i % 7 == 0 ? 1000000 : uint32_t(rng() % 1000001);
    const rounding r = static_cast<rounding>(rng() % 3);
    u128 got = 0;
    const big want = reference(amount, ppm, r);
    const bool fits = want <= to_big(u128_max);
    REQUIRE(scale_ppm(amount, ppm, r, got) == fits);
    if (fits) REQUIRE(to_big(got) == want);
  }
}

TEST_CASE("a fee is fixed plus the rate, clamped to its minimum and maximum", "[payments]") {
  u128 fee = 0;
  CHECK(fee_of(fee_rule{25, 0, rounding::up, 0, 0}, 1000, fee));
  CHECK(fee == 25);
  CHECK(fee_of(fee_rule{0, 10000, rounding::up, 0, 0}, 6001, fee)); // 1% of 6001 = 60.01
  CHECK(fee == 61);
  CHECK(fee_of(fee_rule{0, 10000, rounding::down, 0, 0}, 6001, fee));
  CHECK(fee == 60);
  CHECK(fee_of(fee_rule{0, 500000, rounding::half_even, 0, 0}, 3, fee)); // 1.5 -> 2
  CHECK(fee == 2);
  CHECK(fee_of(fee_rule{0, 500000, rounding::half_even, 0, 0}, 5, fee)); // 2.5 -> 2
  CHECK(fee == 2);
  CHECK(fee_of(fee_rule{0, 10000, rounding::up, 50, 0}, 100, fee)); // 1 -> min 50
  CHECK(fee == 50);
  CHECK(fee_of(fee_rule{0, 10000, rounding::up, 0, 70}, 100000, fee)); // 1000 -> max 70
  CHECK(fee == 70);
  CHECK(!fee_of(fee_rule{u128_max, 1, rounding::up, 0, 0}, 1000000, fee)); // overflow: a result code
}

TEST_CASE("transfer ids derive from the row's sequence and never collide across legs", "[payments]") {
  for (uint64_t seq : {uint64_t{1}, uint64_t{77}, (uint64_t{1} << 55) - 1}) {
    for (int l = 1; l <= 13; ++l) {
      const u128 id = transfer_id(seq, leg(l));
      CHECK(transfer_sequence(id) == seq);
      CHECK(ledger::system_ids::kind_of(id) == ledger::system_ids::kind::payment);
      CHECK(id != transfer_id(seq + 1, leg(l)));
      // a booking again under the next attempt: another id, the same sequence and leg
      std::set<u128> attempts;
      for (uint32_t n = 0; n < transfer_attempts; ++n) {
        const u128 again = transfer_id(seq, leg(l), n);
        CHECK(transfer_sequence(again) == seq);
        CHECK(transfer_attempt(again) == n);
        CHECK(transfer_leg(again) == leg(l));
        for (int other = 1; other <= 13; ++other)
          if (other != l) CHECK(again != transfer_id(seq, leg(other), n));
        attempts.insert(again);
      }
      CHECK(attempts.size() == transfer_attempts);
      CHECK(attempts.count(id) == 1);
    }
  }
  const u128 a = account_id(role::provider_clearing, 3, 2, 840);
  CHECK(account_role(a) == role::provider_clearing);
  CHECK(account_provider(a) == 3);
  CHECK(account_shard(a) == 2);
  CHECK(account_ledger(a) == 840);
  CHECK(ledger::system_ids::reserved(a));
}

TEST_CASE("every payment result code, state and kind has its name", "[payments]") {
  for (uint32_t r = 0; r <= payment_result_max; ++r)
    CHECK(name(payment_result(r)) != "unknown");
  for (uint16_t s = 0; s <= order_state_max; ++s) CHECK(name(order_state(s)) != "invalid");
  CHECK(name(order_state(order_state_max + 1)) == "invalid");
  for (uint16_t k = 1; k <= kind_max; ++k) CHECK(kind_known(k));
  CHECK(!kind_known(0));
  CHECK(!kind_known(kind_max + 1));
  CHECK(uint32_t(payment_result::funds_not_held) == 40); // appended: numbers never change
  CHECK(name(payment_result::funds_not_held) == "funds_not_held");
}

TEST_CASE("a provider id decodes back to its row's sequence and role, legacy ids too", "[payments][ids]") {
  const uint64_t installation = 0x1234'5678'9ABC'DEF0ull;
  const provider_ids ids(installation, {{1, 0xAAAA'0001u, 1}});
  for (uint64_t seq : {uint64_t{1}, uint64_t{77}, payment_sequence_max}) {
    for (call_role role : {call_role::main, call_role::compensation}) {
      const u128 id = ids.id(seq, role);
      CHECK(u128_hi(id) == issuer_of(installation, 0xAAAA'0001u));
      CHECK(u128_hi(id) >> 32 == installation >> 32); // the installation reads off every id
      uint64_t s = 0;
      call_role r = call_role::main;
      REQUIRE(ids.decode(id, s, r));
      CHECK(s == seq);
      CHECK(r == role);
      payment_id_parts parts;
      REQUIRE(decode_payment_id(id, parts));
      CHECK((!parts.legacy && parts.sequence == seq && parts.role == role));
    }
    CHECK(ids.id(seq) != ids.id(seq, call_role::compensation));
  }
  // The legacy format still decodes: "KASS", the role, the sequence.
  payment_id_parts parts;
  REQUIRE(decode_payment_id(legacy_payment_id(42, call_role::compensation), parts));
  CHECK((parts.legacy && parts.sequence == 42 && parts.role == call_role::compensation));
  CHECK(legacy_payment_id(42) == make_u128(0x4B41'5353'0000'0001ull, 42)); // as kassa sent it
  CHECK_FALSE(decode_payment_id(make_u128(0, 12345), parts));
  CHECK_FALSE(decode_payment_id(make_u128(installation, 12345), parts)); // no role
  // A store without generations (format 1) sends legacy ids only.
  const provider_ids legacy;
  CHECK(legacy.id(5) == legacy_payment_id(5));
  uint64_t s = 0;
  call_role r = call_role::main;
  CHECK(legacy.decode(legacy_payment_id(5), s, r));
  CHECK(s == 5);
  CHECK_FALSE(legacy.decode(ids.id(5), s, r));
}

TEST_CASE("rows before the first generation keep their legacy ids; each generation its own", "[payments][ids]") {
  // upgraded at sequence 100, restored twice: at 150 and (the same backup again) at 150
  const uint64_t installation = 0x0BAD'CAFE'0000'0000ull;
  const provider_ids ids(installation, {{1, 11, 100}, {2, 22, 150}, {3, 33, 150}});
  uint64_t s = 0;
  call_role r = call_role::main;
  CHECK(ids.id(99) == legacy_payment_id(99));
  CHECK(ids.decode(legacy_payment_id(99), s, r));
  CHECK(s == 99);
  CHECK_FALSE(ids.decode(legacy_payment_id(100), s, r)); // row 100 never had a legacy id
  CHECK(u128_hi(ids.id(100)) == issuer_of(installation, 11));
  CHECK(u128_hi(ids.id(149)) == issuer_of(installation, 11));
  CHECK(u128_hi(ids.id(150)) == issuer_of(installation, 33));
  CHECK(ids.issuer() == issuer_of(installation, 33));
  // an id of an earlier generation for a sequence the newest one gave out again is not ours
  CHECK_FALSE(ids.decode(payment_id(issuer_of(installation, 11), 150), s, r));
  CHECK_FALSE(ids.decode(payment_id(issuer_of(installation, 22), 150), s, r));
  CHECK(ids.decode(payment_id(issuer_of(installation, 11), 120), s, r));
  CHECK(s == 120);
  // a sequence beyond 56 bits is nobody's (no assertion on what a provider sends)
  CHECK_FALSE(ids.decode(legacy_payment_id(payment_sequence_max + 1), s, r));
}

TEST_CASE("installations and generations never send the same id for a sequence", "[payments][ids]") {
  const uint64_t seed = kassa::test::seed("provider ids");
  std::mt19937_64 rng(seed);
  std::set<u128> seen;
  size_t made = 0;
  for (int installation = 0; installation < 20; ++installation) {
    uint64_t inst = 0;
    while (!installation_id_valid(inst)) inst = rng();
    std::vector<id_generation> gens;
    std::set<uint32_t> nonces;
    for (uint32_t g = 1; g <= 5; ++g) {
      uint32_t n = 0;
      while (n == 0 || nonces.count(n)) n = uint32_t(rng());
      nonces.insert(n);
      gens.push_back({g, n, 1}); // every restore from the same backup: the sequences restart alike
      const provider_ids ids(inst, gens);
      for (uint64_t seq = 1; seq <= 50; ++seq)
        for (call_role role : {call_role::main, call_role::compensation}) {
          seen.insert(ids.id(seq, role));
          ++made;
        }
    }
  }
  CHECK(seen.size() == made);
  // and none is a legacy id
  for (const u128& id : seen) CHECK_FALSE(is_legacy_payment_id(id));
}

TEST_CASE("a case refund id carries the case id under the newest generation and never names a row",
          "[payments][ids]") {
  const uint64_t installation = 0x0BAD'CAFE'0000'0000ull;
  const provider_ids ids(installation, {{1, 11, 100}, {2, 22, 150}});
  const u128 id = ids.case_refund_id(7);
  CHECK(u128_hi(id) == ids.issuer());
  CHECK(id == payment_id(ids.issuer(), 7, call_role::case_refund));
  uint64_t s = 0;
  call_role r = call_role::main;
  REQUIRE(ids.decode(id, s, r));
  CHECK(r == call_role::case_refund); // s is the case id: callers must not read it as a row's
  CHECK(s == 7);
  // not the row 7's ids, nor any row's id under the same issuer
  CHECK(id != ids.id(7));
  CHECK(id != ids.id(7, call_role::compensation));
  CHECK(id != ids.id(170));
  // a case refund an earlier generation (the original, before a restore) sent is not ours
  CHECK_FALSE(ids.decode(payment_id(issuer_of(installation, 11), 7, call_role::case_refund), s, r));
  // nor a legacy id with that role: legacy stores never sent one
  CHECK_FALSE(ids.decode(legacy_payment_id(7, call_role::case_refund), s, r));
  payment_id_parts parts;
  REQUIRE(decode_payment_id(id, parts));
  CHECK((!parts.legacy && parts.sequence == 7 && parts.role == call_role::case_refund));
  // a store without generations sends none
  CHECK(provider_ids{}.case_refund_id(7) == 0);
}
