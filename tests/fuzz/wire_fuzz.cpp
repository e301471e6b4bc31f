// libFuzzer target: any bytes given to the wire decoder, as a stream of frames, yield frames,
// need_more or an error, never a crash; consumed never exceeds the buffer, and a decoded
// frame re-encodes to exactly its bytes. Run: wire_fuzz tests/fuzz/corpus/wire
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/wire/wire.hpp"

namespace {

void fail(const char* what) {
  std::fprintf(stderr, "wire_fuzz: %s\n", what);
  std::abort();
}

void drain(const uint8_t* data, size_t size, const kassa::wire::limits& l) {
  using namespace kassa::wire;
  size_t at = 0;
  while (at < size) {
    const decoded d = decode(data + at, size - at, l);
    if (d.consumed > size - at) fail("consumed more than the buffer holds");
    switch (d.outcome) {
    case decode_outcome::need_more:
    case decode_outcome::error_close:
      if (d.consumed != 0) fail("need_more or error_close consumed bytes");
      return; // a server waits for more bytes or closes: no progress possible
    case decode_outcome::error_keep_open:
      if (d.consumed < header_bytes || d.error == status::ok) fail("keep_open without a frame");
      break;
    case decode_outcome::frame: {
      if (d.consumed < header_bytes || d.consumed != d.h.frame_bytes) fail("frame length");
      if (d.body != data + at + header_bytes || d.body_bytes != d.consumed - header_bytes)
        fail("body outside the frame");
      if (d.body_bytes != d.h.event_count * record_bytes(d.h.op, d.h.reply) &&
          !(d.h.reply && d.h.st != status::ok))
        fail("body is not event_count records");
      std::vector<uint8_t> again;
      encode(again, d.h, d.body, d.body_bytes);
      if (again.size() != d.consumed || std::memcmp(again.data(), data + at, d.consumed) != 0)
        fail("a decoded frame does not re-encode to its bytes");
      // One byte short of a valid frame is never a frame.
      if (decode(data + at, d.consumed - 1, l).outcome == decode_outcome::frame)
        fail("a truncated frame decoded");
      break;
    }
    }
    at += d.consumed;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  drain(data, size, kassa::wire::limits{4096, 32, false});
  drain(data, size, kassa::wire::limits{4096, 32, true});
  drain(data, size, kassa::wire::limits{kassa::wire::header_bytes, 1, false});
  return 0;
}
