#pragma once
// CRC-32C (Castagnoli), the checksum of the journal. Hardware instruction when the CPU has
// SSE4.2 (it runs at several GB/s, far from the commit path's cost), table-driven otherwise.
#include <cstddef>
#include <cstdint>

namespace kassa::ledger::store {

// Extends `crc` (the value returned for the bytes so far; 0 to start) over `data`.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

} // namespace kassa::ledger::store
