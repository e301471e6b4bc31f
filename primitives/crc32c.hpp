#pragma once
// CRC-32C (Castagnoli), the checksum of wire frames and of the store journal. The SSE4.2 instruction when
// the CPU has it, slicing-by-8 tables otherwise; both are tested against Boost.CRC.
#include <cstddef>
#include <cstdint>

namespace kassa {

// Extends `crc` (the value returned for the bytes so far; 0 to start) over `data`.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

// The portable implementations, exposed for tests and the throughput measurement.
uint32_t crc32c_extend_slicing8(uint32_t crc, const void* data, size_t size);
uint32_t crc32c_extend_boost(uint32_t crc, const void* data, size_t size);
bool crc32c_hardware(); // true when crc32c_extend uses the SSE4.2 instruction

} // namespace kassa
