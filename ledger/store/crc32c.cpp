#include "ledger/store/crc32c.hpp"

#include <boost/crc.hpp>
#include <cstring>

namespace kassa::ledger::store {
namespace {

using crc32c_table = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

uint32_t extend_table(uint32_t crc, const void* data, size_t size) {
  // Boost keeps the register un-inverted: resume from the previous final value.
  crc32c_table c(crc ^ 0xFFFFFFFFu);
  c.process_bytes(data, size);
  return c.checksum();
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
  return extend_table;
}

} // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  static const extend_fn fn = choose();
  return fn(crc, data, size);
}

} // namespace kassa::ledger::store
