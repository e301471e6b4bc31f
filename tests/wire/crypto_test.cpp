// The OpenSSL-backed SHA-256 and HMAC-SHA256 against their published test vectors (FIPS 180-2
// examples, RFC 4231), the constant-time comparison, and the authenticate proof of
// docs/protocol.md's worked example.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/wire/crypto.hpp"
#include "runtime/wire/wire.hpp"

using namespace kassa::wire;

namespace {

std::string hex(const uint8_t* p, size_t n) {
  std::string out;
  char buf[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    out += buf;
  }
  return out;
}

std::string hex(const digest& d) { return hex(d.data(), d.size()); }

std::string sha_hex(const std::string& s) { return hex(sha256(s.data(), s.size())); }

std::string hmac_hex(const std::vector<uint8_t>& key, const std::string& data) {
  return hex(hmac_sha256(key.data(), key.size(), data.data(), data.size()));
}

std::vector<uint8_t> bytes(size_t n, uint8_t value) { return std::vector<uint8_t>(n, value); }

} // namespace

TEST_CASE("sha256 gives the FIPS 180-2 example digests", "[wire]") {
  CHECK(sha_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("hmac_sha256 gives the RFC 4231 test vectors", "[wire]") {
  std::vector<uint8_t> key4;
  for (uint8_t b = 1; b <= 25; ++b) key4.push_back(b);
  const std::vector<uint8_t> jefe{'J', 'e', 'f', 'e'};
  CHECK(hmac_hex(bytes(20, 0x0b), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(hmac_hex(jefe, "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac_hex(bytes(20, 0xaa), std::string(50, '\xdd')) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  CHECK(hmac_hex(key4, std::string(50, '\xcd')) ==
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  // Test case 5 publishes the first 128 bits only.
  CHECK(hmac_hex(bytes(20, 0x0c), "Test With Truncation").substr(0, 32) ==
        "a3b6167473100ee06e0c796c2955552b");
  CHECK(hmac_hex(bytes(131, 0xaa), "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(hmac_hex(bytes(131, 0xaa),
                 "This is a test using a larger than block-size key and a larger than block-size "
                 "data. The key needs to be hashed before being used by the HMAC algorithm.") ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("hmac_sha256 with an empty key and an empty message is RFC 2104's", "[wire]") {
  // The value of Python's hmac.new(b"", b"", hashlib.sha256).
  CHECK(hex(hmac_sha256(nullptr, 0, nullptr, 0)) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("equal_constant_time tells equal from different bytes anywhere", "[wire]") {
  const std::vector<uint8_t> a(32, 7), b(32, 7);
  CHECK(equal_constant_time(a.data(), a.size(), b.data(), b.size()));
  CHECK(equal_constant_time(a.data(), 0, b.data(), 0));
  for (size_t i : {size_t(0), size_t(1), size_t(17), size_t(31)}) {
    auto c = b;
    c[i] ^= 0x80;
    CHECK_FALSE(equal_constant_time(a.data(), a.size(), c.data(), c.size()));
    CHECK_FALSE(equal_constant_time(c.data(), c.size(), a.data(), a.size()));
  }
}

TEST_CASE("equal_constant_time answers unequal for buffers of different lengths", "[wire]") {
  // The shorter one is a prefix of the longer: only the lengths differ.
  const std::vector<uint8_t> a(32, 7), b(33, 7);
  CHECK_FALSE(equal_constant_time(a.data(), a.size(), b.data(), b.size()));
  CHECK_FALSE(equal_constant_time(b.data(), b.size(), a.data(), a.size()));
  CHECK_FALSE(equal_constant_time(a.data(), a.size(), b.data(), 0));
  CHECK_FALSE(equal_constant_time(a.data(), 31, b.data(), b.size()));
}

// The worked example of docs/protocol.md#authenticate-10.
TEST_CASE("the authenticate proofs of the documented example", "[wire]") {
  uint8_t key[key_bytes], server_nonce[nonce_bytes], client_nonce[nonce_bytes];
  for (size_t i = 0; i < key_bytes; ++i) key[i] = uint8_t(i);
  for (size_t i = 0; i < nonce_bytes; ++i) {
    server_nonce[i] = uint8_t(0xa0 + i);
    client_nonce[i] = uint8_t(0xb0 + i);
  }
  const auto client = auth_proof(proof_side::client, key, server_nonce, client_nonce, 7);
  const auto server = auth_proof(proof_side::server, key, server_nonce, client_nonce, 7);
  CHECK(hex(client.data(), client.size()) == "aefa55729a850cdde346ad12524dffb8a7e19f760c850f26cedfd97472c60ea6");
  CHECK(hex(server.data(), server.size()) == "19f6f12464086e80202df13f8fc44384c74614a56ab92adfe10bb880ed1becef");
  // Every input is bound: another client id, nonce or key gives another proof.
  CHECK(auth_proof(proof_side::client, key, server_nonce, client_nonce, 8) != client);
  client_nonce[0] ^= 1;
  CHECK(auth_proof(proof_side::client, key, server_nonce, client_nonce, 7) != client);
  client_nonce[0] ^= 1;
  key[31] ^= 1;
  CHECK(auth_proof(proof_side::client, key, server_nonce, client_nonce, 7) != client);
}
