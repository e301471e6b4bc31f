#pragma once
// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained, for the challenge-response
// of the `authenticate` operation (docs/protocol.md#authenticate-10). Pure: no I/O, no state
// beyond the call. Tested against the NIST examples and RFC 4231.
#include <array>
#include <cstddef>
#include <cstdint>

namespace kassa::wire {

constexpr size_t sha256_bytes = 32;
using digest = std::array<uint8_t, sha256_bytes>;

class sha256 {
public:
  sha256();
  void update(const void* data, size_t bytes);
  digest finish(); // the object is spent afterwards

private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buffer_[64];
  size_t buffer_used_ = 0;
  uint64_t total_bytes_ = 0;
};

digest sha256_of(const void* data, size_t bytes);
digest hmac_sha256(const void* key, size_t key_bytes, const void* message, size_t message_bytes);

// True when the `bytes` at a and b are equal; the time taken depends only on `bytes`, never on
// where they differ (a MAC compared early-out would leak how much of a guess was right).
bool equal_constant_time(const uint8_t* a, const uint8_t* b, size_t bytes);

} // namespace kassa::wire
