// u128 text: decimal and hex printing, and parsing that refuses what it cannot read exactly.
#include <catch2/catch.hpp>

#include <random>

#include "primitives/u128.hpp"
#include "tests/seed.hpp"

using namespace kassa;

TEST_CASE("u128 prints in decimal and in hex, padded to the digits asked for", "[primitives]") {
  CHECK(to_string_u128(0) == "0");
  CHECK(to_string_u128(1234567890) == "1234567890");
  CHECK(to_string_u128(u128_max) == "340282366920938463463374607431768211455");
  CHECK(to_hex_u128(0) == "0");
  CHECK(to_hex_u128(0xabc) == "abc");
  CHECK(to_hex_u128(0xabc, 6) == "000abc");
  CHECK(to_hex_u128(0, 32) == std::string(32, '0'));
  CHECK(to_hex_u128(u128_max) == std::string(32, 'f'));
  CHECK(to_hex_u128(make_u128(1, 0), 32) == "00000000000000010000000000000000");
}

TEST_CASE("u128 parses decimal and 0x-hex and refuses stray characters and overflow", "[primitives]") {
  u128 v = 7;
  CHECK((parse_u128("0", v) && v == 0));
  CHECK((parse_u128("340282366920938463463374607431768211455", v) && v == u128_max));
  CHECK((parse_u128("0xFFffffffffffffffffffffffffffffff", v) && v == u128_max));
  CHECK((parse_u128("007", v) && v == 7)); // leading zeros are a caller's rule
  v = 9;
  CHECK_FALSE(parse_u128("", v));
  CHECK_FALSE(parse_u128("0x", v));
  CHECK_FALSE(parse_u128("12a", v));
  CHECK_FALSE(parse_u128("-1", v));
  CHECK_FALSE(parse_u128("340282366920938463463374607431768211456", v));
  CHECK_FALSE(parse_u128("0x100000000000000000000000000000000", v));
  CHECK(v == 9); // untouched when refused
  CHECK_FALSE(parse_u128_digits("ff", 10, v));
  CHECK((parse_u128_digits("ff", 16, v) && v == 255));
}

TEST_CASE("u128 text reads back as the value it was printed from", "[primitives]") {
  std::mt19937_64 rng(test::seed("u128 round trip"));
  for (int i = 0; i < 10000; ++i) {
    const u128 v = make_u128(rng() >> (rng() % 64), rng());
    u128 back = 0;
    REQUIRE(parse_u128(to_string_u128(v), back));
    REQUIRE(back == v);
    REQUIRE(parse_u128("0x" + to_hex_u128(v), back));
    REQUIRE(back == v);
  }
}
