#include "primitives/crc32c.hpp"

#include <array>
#include <boost/crc.hpp>
#include <cstring>

namespace kassa {
namespace {

constexpr uint32_t poly_reflected = 0x82F63B78u; // 0x1EDC6F41 bit-reversed

struct tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? poly_reflected : 0);
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};
const tables& slicing_tables() {
  static const tables t;
  return t;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const void* data,
                                                        size_t size) {
  auto p = static_cast<const uint8_t*>(data);
  uint64_t c = crc ^ 0xFFFFFFFFu;
  for (; size >= 8; size -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; size > 0; --size, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32 ^ 0xFFFFFFFFu;
}
#endif

using extend_fn = uint32_t (*)(uint32_t, const void*, size_t);
extend_fn choose() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return extend_sse42;
#endif
  return crc32c_extend_slicing8;
}

} // namespace

uint32_t crc32c_extend_slicing8(uint32_t crc, const void* data, size_t size) {
  const auto& t = slicing_tables().t;
  auto p = static_cast<const uint8_t*>(data);
  uint32_t c = crc ^ 0xFFFFFFFFu;
  for (; size >= 8; size -= 8, p += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4); // little-endian host (static_assert in wire.hpp)
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; size > 0; --size, ++p) c = (c >> 8) ^ t[0][(c ^ *p) & 0xFF];
  return c ^ 0xFFFFFFFFu;
}

uint32_t crc32c_extend_boost(uint32_t crc, const void* data, size_t size) {
  // Boost takes the initial remainder un-inverted and un-reflected: undo both to resume.
  uint32_t init = 0, rem = crc ^ 0xFFFFFFFFu;
  for (int i = 0; i < 32; ++i)
    if ((rem >> i) & 1) init |= 1u << (31 - i);
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> c(init);
  c.process_bytes(data, size);
  return c.checksum();
}

bool crc32c_hardware() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  static const extend_fn fn = choose();
  return fn(crc, data, size);
}

} // namespace kassa
