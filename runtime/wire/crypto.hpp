#pragma once
// SHA-256 and HMAC-SHA256 for the challenge-response of the `authenticate` operation
// (docs/protocol.md#authenticate-10), computed by OpenSSL's libcrypto: a payment system uses a
// vetted implementation, not its own. Pure: no I/O, no state beyond the call. Tested against
// FIPS 180-2 and RFC 4231 (tests/wire/crypto_test.cpp).
#include <array>
#include <cstddef>
#include <cstdint>

namespace kassa::wire {

constexpr size_t sha256_bytes = 32;
using digest = std::array<uint8_t, sha256_bytes>;

// Both stop the process if libcrypto fails (it allocates): a MAC that was not computed must
// never be compared as if it were.
digest sha256(const void* data, size_t bytes);
digest hmac_sha256(const void* key, size_t key_bytes, const void* message, size_t message_bytes);

// True when a and b hold the same bytes (CRYPTO_memcmp). The time taken depends only on the
// lengths, never on where the bytes differ: a MAC compared early-out would leak how much of a
// guess was right. Buffers of different lengths are unequal.
bool equal_constant_time(const void* a, size_t a_bytes, const void* b, size_t b_bytes);

} // namespace kassa::wire
