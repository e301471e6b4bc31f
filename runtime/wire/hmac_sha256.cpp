#include "runtime/wire/hmac_sha256.hpp"

#include <cstring>

namespace kassa::wire {

namespace {

constexpr uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

constexpr size_t block_bytes = 64;

} // namespace

sha256::sha256()
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void sha256::block(const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 |
           uint32_t(p[4 * i + 3]);
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const uint32_t ch = (e & f) ^ (~e & g);
    const uint32_t t1 = h + s1 + ch + round_constants[i] + w[i];
    const uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = s0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
}

void sha256::update(const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  total_bytes_ += bytes;
  if (buffer_used_ > 0) {
    const size_t take = bytes < block_bytes - buffer_used_ ? bytes : block_bytes - buffer_used_;
    std::memcpy(buffer_ + buffer_used_, p, take);
    buffer_used_ += take;
    p += take;
    bytes -= take;
    if (buffer_used_ < block_bytes) return;
    block(buffer_);
    buffer_used_ = 0;
  }
  for (; bytes >= block_bytes; p += block_bytes, bytes -= block_bytes) block(p);
  if (bytes > 0) std::memcpy(buffer_, p, bytes);
  buffer_used_ = bytes;
}

digest sha256::finish() {
  const uint64_t bits = total_bytes_ * 8;
  const uint8_t one = 0x80, zero = 0;
  update(&one, 1);
  while (buffer_used_ != block_bytes - 8) update(&zero, 1);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = uint8_t(bits >> (56 - 8 * i));
  update(length, 8);
  digest out;
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = uint8_t(h_[i] >> 24);
    out[4 * i + 1] = uint8_t(h_[i] >> 16);
    out[4 * i + 2] = uint8_t(h_[i] >> 8);
    out[4 * i + 3] = uint8_t(h_[i]);
  }
  return out;
}

digest sha256_of(const void* data, size_t bytes) {
  sha256 s;
  s.update(data, bytes);
  return s.finish();
}

digest hmac_sha256(const void* key, size_t key_bytes, const void* message, size_t message_bytes) {
  uint8_t k[block_bytes] = {};
  if (key_bytes > block_bytes) {
    const digest d = sha256_of(key, key_bytes);
    std::memcpy(k, d.data(), d.size());
  } else if (key_bytes > 0) {
    std::memcpy(k, key, key_bytes);
  }
  uint8_t pad[block_bytes];
  for (size_t i = 0; i < block_bytes; ++i) pad[i] = k[i] ^ 0x36;
  sha256 inner;
  inner.update(pad, block_bytes);
  inner.update(message, message_bytes);
  const digest inner_digest = inner.finish();
  for (size_t i = 0; i < block_bytes; ++i) pad[i] = k[i] ^ 0x5c;
  sha256 outer;
  outer.update(pad, block_bytes);
  outer.update(inner_digest.data(), inner_digest.size());
  return outer.finish();
}

bool equal_constant_time(const uint8_t* a, const uint8_t* b, size_t bytes) {
  volatile uint8_t difference = 0;
  for (size_t i = 0; i < bytes; ++i) difference = uint8_t(difference | (a[i] ^ b[i]));
  return difference == 0;
}

} // namespace kassa::wire
