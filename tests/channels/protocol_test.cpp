// The provider protocol's JSON codec: round trips of every record and refusals of malformed
// bodies (as error values, never exceptions). Tagged [channels].
#include <catch2/catch.hpp>

#include <random>

#include "channels/protocol.hpp"
#include "channels/text.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::channels;

namespace {

u128 random_u128(std::mt19937_64& rng) { return make_u128(rng(), rng()); }

} // namespace

TEST_CASE("amounts are decimal text and ids 32 hex digits, parsed strictly", "[channels]") {
  u128 v = 0;
  CHECK(amount_text(0) == "0");
  CHECK(amount_text(u128_max) == "340282366920938463463374607431768211455");
  REQUIRE(parse_amount("340282366920938463463374607431768211455", v));
  CHECK(v == u128_max);
  CHECK_FALSE(parse_amount("340282366920938463463374607431768211456", v)); // 2^128
  for (const char* bad : {"", "-1", "+1", "01", "1.0", " 1", "1 ", "1e3", "0x10", "abc"}) {
    INFO(bad);
    CHECK_FALSE(parse_amount(bad, v));
  }
  CHECK(id_text(0x2a) == "0000000000000000000000000000002a");
  REQUIRE(parse_id("0000000000000000000000000000002A", v));
  CHECK(v == 0x2a);
  for (const char* bad : {"", "2a", "0000000000000000000000000000002", "00000000000000000000000000000002aa",
                          "000000000000000000000000000000g1"}) {
    INFO(bad);
    CHECK_FALSE(parse_id(bad, v));
  }
}

TEST_CASE("every record survives a round trip through JSON", "[channels]") {
  std::mt19937_64 rng(test::seed("protocol round trips"));
  for (int i = 0; i < 200; ++i) {
    payment_request a;
    a.payment_id = random_u128(rng);
    a.kind = static_cast<pay_kind>(1 + rng() % 3);
    a.amount = random_u128(rng) >> (rng() % 128);
    a.ledger = static_cast<uint32_t>(rng());
    a.account_id = random_u128(rng);
    a.refund_of = rng() % 2 ? random_u128(rng) : 0;
    a.token = rng() % 2 ? "tok-" + std::to_string(rng()) : "";
    payment_request b;
    std::string why;
    REQUIRE(decode(encode(a), b, why));
    CHECK((b.payment_id == a.payment_id && b.kind == a.kind && b.amount == a.amount && b.ledger == a.ledger &&
           b.account_id == a.account_id && b.refund_of == a.refund_of && b.token == a.token));

    payment_response r{random_u128(rng), static_cast<pay_status>(1 + rng() % 5), random_u128(rng),
                       "ref-" + std::to_string(rng())};
    payment_response r2;
    REQUIRE(decode(encode(r), r2, why));
    CHECK((r2.payment_id == r.payment_id && r2.status == r.status && r2.amount == r.amount &&
           r2.provider_ref == r.provider_ref));
  }
  credentials_response c{"tok-abc", 60000}, c2;
  std::string why;
  REQUIRE(decode(encode(c), c2, why));
  CHECK((c2.token == "tok-abc" && c2.expires_ms == 60000));

  std::vector<event> events{{1, 7, pay_kind::charge, pay_status::succeeded, 100, "r1"},
                            {UINT64_MAX, u128_max, pay_kind::refund, pay_status::declined, u128_max, ""}};
  std::vector<event> events2;
  REQUIRE(decode_events(encode_events(events), events2, why));
  REQUIRE(events2.size() == 2);
  CHECK((events2[1].sequence == UINT64_MAX && events2[1].payment_id == u128_max && events2[1].amount == u128_max &&
         events2[1].kind == pay_kind::refund && events2[1].status == pay_status::declined));

  std::vector<statement_line> lines{{3, 9, pay_kind::payout, pay_status::partial, 5, 840, "r9"}}, lines2;
  REQUIRE(decode_statement(encode_statement(lines), lines2, why));
  REQUIRE(lines2.size() == 1);
  CHECK((lines2[0].sequence == 3 && lines2[0].ledger == 840 && lines2[0].status == pay_status::partial));
}

TEST_CASE("malformed bodies are refused with a reason, never an exception", "[channels]") {
  const std::string ok_id = "\"0000000000000000000000000000000a\"";
  const std::vector<std::string> bad = {
      "",
      "garbage",
      "[]",
      "null",
      "{",
      "{\"payment_id\":" + ok_id + "}",                                     // fields missing
      "{\"payment_id\":1,\"kind\":\"charge\",\"amount\":\"1\",\"ledger\":1,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"steal\",\"amount\":\"1\",\"ledger\":1,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"charge\",\"amount\":1,\"ledger\":1,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"charge\",\"amount\":\"-1\",\"ledger\":1,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"charge\",\"amount\":\"1\",\"ledger\":-1,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"charge\",\"amount\":\"1\",\"ledger\":1.5,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"charge\",\"amount\":\"1\",\"ledger\":4294967296,\"account_id\":" + ok_id + "}",
      "{\"payment_id\":" + ok_id + ",\"kind\":\"charge\",\"amount\":\"1\",\"ledger\":1,\"account_id\":" + ok_id +
          ",\"token\":\"" + std::string(300, 'x') + "\"}",
      "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}",
      std::string("{\"payment_id\":\"\xff\xfe\"}"),
  };
  for (const auto& body : bad) {
    INFO(body.substr(0, 120));
    payment_request r;
    std::string why;
    CHECK_NOTHROW(decode(body, r, why));
    CHECK_FALSE(decode(body, r, why));
    CHECK_FALSE(why.empty());
  }
  std::vector<event> events;
  std::string why;
  CHECK_FALSE(decode_events("{\"events\":{}}", events, why));
  CHECK_FALSE(decode_events("{\"events\":[1]}", events, why));
  CHECK_FALSE(decode_events("{\"events\":[{\"sequence\":-1}]}", events, why));
  std::vector<statement_line> lines;
  CHECK_FALSE(decode_statement("{\"entries\":[{\"sequence\":1}]}", lines, why));
  credentials_response c;
  CHECK_FALSE(decode("{\"token\":\"\",\"expires_ms\":1}", c, why));
  // Random bytes never throw.
  std::mt19937_64 rng(test::seed("protocol fuzz"));
  for (int i = 0; i < 2000; ++i) {
    std::string body(rng() % 64, '\0');
    for (auto& ch : body) ch = "{}[]\":,0123456789abcdefx \\u-"[rng() % 29];
    payment_request r;
    CHECK_NOTHROW(decode(body, r, why));
  }
  // Unknown keys are ignored: a provider may add fields.
  payment_response r;
  REQUIRE(decode("{\"payment_id\":" + ok_id + ",\"status\":\"succeeded\",\"amount\":\"5\",\"provider_ref\":\"x\","
                 "\"extra\":{\"a\":[1,2]}}",
                 r, why));
  CHECK(r.amount == 5);
}
