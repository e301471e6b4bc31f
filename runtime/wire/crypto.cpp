#include "runtime/wire/crypto.hpp"

#include <climits>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "primitives/assert.hpp"

namespace kassa::wire {

digest sha256(const void* data, size_t bytes) {
  digest out{};
  unsigned int out_bytes = 0;
  const int ok = EVP_Digest(data, bytes, out.data(), &out_bytes, EVP_sha256(), nullptr);
  KASSA_ASSERT(ok == 1 && out_bytes == out.size());
  return out;
}

digest hmac_sha256(const void* key, size_t key_bytes, const void* message, size_t message_bytes) {
  // HMAC() wants a non-null key even when it is empty, and a non-null message pointer.
  static const uint8_t empty = 0;
  KASSA_ASSERT(key_bytes <= size_t(INT_MAX));
  digest out{};
  unsigned int out_bytes = 0;
  const unsigned char* mac =
      HMAC(EVP_sha256(), key_bytes > 0 ? key : &empty, static_cast<int>(key_bytes),
           message_bytes > 0 ? static_cast<const unsigned char*>(message) : &empty, message_bytes,
           out.data(), &out_bytes);
  KASSA_ASSERT(mac != nullptr && out_bytes == out.size());
  return out;
}

bool equal_constant_time(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a_bytes != b_bytes) return false; // the lengths are public: a MAC's is fixed
  return CRYPTO_memcmp(a, b, a_bytes) == 0;
}

} // namespace kassa::wire
