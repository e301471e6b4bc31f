#pragma once
// The kassa wire protocol: a pure codec of length-prefixed, checksummed frames (no sockets, no
// threads). Every byte is documented in docs/protocol.md; the layouts below are that table.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ledger/payments/records.hpp"
#include "ledger/store/recon_store.hpp"
#include "ledger/types.hpp"
#include "primitives/u128.hpp"

namespace kassa::wire {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the wire format is little-endian and records are copied as they are in memory");

constexpr size_t header_bytes = 128;
constexpr uint16_t protocol_version = 1;
constexpr uint32_t magic = 0x5353414B; // the bytes "KASS" read as a little-endian u32

#define KASSA_WIRE_OPERATIONS(X)                                                             \
  X(hello, 1)                                                                                \
  X(create_accounts, 2)                                                                      \
  X(create_transfers, 3)                                                                     \
  X(lookup_accounts, 4)                                                                      \
  X(lookup_transfers, 5)                                                                     \
  X(get_account_transfers, 6)                                                                \
  X(get_account_balances, 7)                                                                 \
  X(submit_payments, 8)                                                                      \
  X(lookup_orders, 9)                                                                        \
  X(authenticate, 10)                                                                        \
  X(get_cases, 11)                                                                           \
  X(resolve_case, 12)                                                                        \
  X(lookup_order_items, 21)

// Frame-level status codes. Numbers are part of the protocol and never change.
#define KASSA_WIRE_STATUSES(X)                                                               \
  X(ok, 0)                                                                                   \
  X(busy, 1)                                                                                 \
  X(bad_magic, 2)                                                                            \
  X(frame_too_large, 3)                                                                      \
  X(frame_too_small, 4)                                                                      \
  X(bad_checksum, 5)                                                                         \
  X(version_unsupported, 6)                                                                  \
  X(hello_required, 7)                                                                       \
  X(operation_unknown, 8)                                                                    \
  X(body_size_invalid, 9)                                                                    \
  X(too_many_events, 10)                                                                     \
  X(reserved_nonzero, 11)                                                                    \
  X(inflight_limit, 12)                                                                      \
  X(deadline_exceeded, 13)                                                                   \
  X(shutting_down, 14)                                                                       \
  X(store_unavailable, 15)                                                                   \
  X(filter_invalid, 16)                                                                      \
  X(internal, 17)                                                                            \
  X(payments_disabled, 18)                                                                   \
  X(unauthenticated, 19)                                                                     \
  X(forbidden, 20)                                                                           \
  X(authentication_failed, 21)                                                               \
  X(shadow_disabled, 22)                                                                     \
  X(reconciliation_disabled, 23)

#define KASSA_WIRE_ENUM_ITEM(name, value) name = value,
enum class operation : uint16_t { KASSA_WIRE_OPERATIONS(KASSA_WIRE_ENUM_ITEM) };
enum class status : uint16_t { KASSA_WIRE_STATUSES(KASSA_WIRE_ENUM_ITEM) };
#undef KASSA_WIRE_ENUM_ITEM

// Numbers are not contiguous: 13 to 20 are kept for other operations (operation_known).
constexpr uint16_t operation_min = 1, operation_max = 21;
constexpr uint16_t status_max = 23;

std::string_view name(operation op); // "unknown" outside the enum
std::string_view name(status st);
bool operation_known(uint16_t op);
// True when the server closes the connection right after this status: framing is lost.
// (shutting_down also ends in a close, once the requests in flight are answered.)
bool closes_connection(status st);

// Header flag bits (offset 28).
constexpr uint16_t flag_shadow = 1u << 0; // route to the shadow store
constexpr uint16_t flag_reply = 1u << 1;  // set by the server on every reply
constexpr uint16_t flags_known = flag_shadow | flag_reply;

// The request context every frame carries; replies echo the request's.
struct context {
  u128 trace_id = 0;
  u128 business_id = 0; // e.g. the order id
  uint64_t client_id = 0;
  uint64_t deadline_ns = 0; // unix epoch ns; 0 = none
  bool shadow = false;
};

// A frame header as the codec sees it (magic, checksum and reserved bytes are its business).
struct header {
  uint16_t version = protocol_version;
  operation op = operation::hello;
  uint32_t frame_bytes = 0; // set by encode()
  uint64_t request_id = 0; // never 0 in a request: 0 marks a connection-level error reply
  uint32_t event_count = 0;
  bool reply = false;
  status st = status::ok;
  context ctx;
};

// The 128 header bytes exactly as they are on the wire.
struct header_layout {
  uint32_t magic;
  uint16_t version;
  uint16_t operation;
  uint32_t frame_bytes;
  uint32_t checksum;
  uint64_t request_id;
  uint32_t event_count;
  uint16_t flags;
  uint16_t status;
  u128 trace_id;
  u128 business_id;
  uint64_t client_id;
  uint64_t deadline_ns;
  uint8_t reserved[48];
};
static_assert(sizeof(header_layout) == header_bytes);
static_assert(offsetof(header_layout, checksum) == 12);
static_assert(offsetof(header_layout, request_id) == 16);
static_assert(offsetof(header_layout, event_count) == 24);
static_assert(offsetof(header_layout, flags) == 28);
static_assert(offsetof(header_layout, status) == 30);
static_assert(offsetof(header_layout, trace_id) == 32);
static_assert(offsetof(header_layout, business_id) == 48);
static_assert(offsetof(header_layout, client_id) == 64);
static_assert(offsetof(header_layout, deadline_ns) == 72);
static_assert(offsetof(header_layout, reserved) == 80);

// --- bodies --------------------------------------------------------------------------------

struct hello_request {
  uint16_t version_min = protocol_version;
  uint16_t version_max = protocol_version;
  uint32_t reserved = 0;
  uint64_t reserved2 = 0;
};
static_assert(sizeof(hello_request) == 16);

// hello_reply.access_flags bits.
constexpr uint16_t access_required = 1u << 0;   // access.required: authenticate before any request
constexpr uint16_t access_available = 1u << 1;  // access.clients is not empty: authenticate works
constexpr size_t nonce_bytes = 16;

struct hello_reply {
  uint16_t version = protocol_version;
  uint16_t access_flags = 0;
  uint32_t frame_bytes_max = 0;       // server.frame_bytes_max
  uint32_t batch_events_max = 0;      // batching.batch_events_max
  uint32_t requests_inflight_max = 0; // server.requests_inflight_max
  // Random, one per connection: the challenge an `authenticate` answers. All zero when the
  // server has no clients to authenticate.
  uint8_t server_nonce[nonce_bytes] = {};
};
static_assert(sizeof(hello_reply) == 32);
static_assert(offsetof(hello_reply, access_flags) == 2 && offsetof(hello_reply, server_nonce) == 16);

// --- authenticate: challenge-response with a key both sides hold (docs/protocol.md) ----------

constexpr size_t key_bytes = 32;
constexpr size_t proof_bytes = 32;

struct authenticate_request {
  uint64_t client_id = 0;                // as in access.clients[].id; also in the header
  uint64_t reserved = 0;
  uint8_t client_nonce[nonce_bytes] = {}; // random, chosen by the client
  uint8_t proof[proof_bytes] = {};        // auth_proof(client, ...)
};
static_assert(sizeof(authenticate_request) == 64);
static_assert(offsetof(authenticate_request, client_nonce) == 16 &&
              offsetof(authenticate_request, proof) == 32);

struct authenticate_reply {
  uint8_t proof[proof_bytes] = {}; // auth_proof(server, ...): the server holds the key too
  uint32_t operations = 0;         // bit n set: operation n is allowed
  uint32_t ledgers_count = 0;      // 0: every ledger; else the client is limited to this many
  uint8_t reserved[24] = {};
};
static_assert(sizeof(authenticate_reply) == 64);
static_assert(offsetof(authenticate_reply, operations) == 32 &&
              offsetof(authenticate_reply, reserved) == 40);

// Which side a proof is from: the two are different MACs, so a reply cannot be sent back as
// a request.
enum class proof_side { client, server };

// HMAC-SHA256(key, label || server_nonce || client_nonce || client_id as u64 little-endian),
// label the 20 ASCII bytes "kassa-auth-client-v1" or "kassa-auth-server-v1".
std::array<uint8_t, proof_bytes> auth_proof(proof_side side, const uint8_t (&key)[key_bytes],
                                            const uint8_t (&server_nonce)[nonce_bytes],
                                            const uint8_t (&client_nonce)[nonce_bytes],
                                            uint64_t client_id);

// One failed event of create_accounts / create_transfers (ok events are not listed).
struct event_result {
  uint32_t index;  // of the event in the request
  uint32_t result; // ledger::account_result or ledger::transfer_result
};
static_assert(sizeof(event_result) == 8);

// The account filter of get_account_transfers / get_account_balances.
constexpr uint32_t filter_debits = 1u << 0;
constexpr uint32_t filter_credits = 1u << 1;
constexpr uint32_t filter_reversed = 1u << 2;
constexpr uint32_t filter_flags_known = filter_debits | filter_credits | filter_reversed;

struct filter {
  u128 account_id = 0;
  uint64_t timestamp_min = 0; // inclusive; 0 = unbounded
  uint64_t timestamp_max = 0; // inclusive; 0 = unbounded
  uint32_t limit = 0;         // 1 .. batch_events_max results
  uint32_t flags = filter_debits | filter_credits;
  uint8_t reserved[24] = {};
};
static_assert(sizeof(filter) == 64);
static_assert(offsetof(filter, limit) == 32 && offsetof(filter, reserved) == 40);

// status::ok, or filter_invalid when the filter breaks a rule of docs/protocol.md.
status validate(const filter& f, uint32_t batch_events_max);

static_assert(sizeof(ledger::account_balance) == 80);
static_assert(std::is_trivially_copyable_v<filter> && std::is_trivially_copyable_v<hello_reply>);

// submit_payments and lookup_orders carry the payment core's records as they are.
static_assert(sizeof(ledger::payments::payment_command) == 128);
static_assert(sizeof(ledger::payments::payment_reply) == 64);
static_assert(sizeof(ledger::payments::order) == 256);
static_assert(sizeof(ledger::payments::order_item) == 256);

// get_cases (11): the request's one record, a page of cases by id.
constexpr uint32_t cases_open_only = 1u << 0;
constexpr uint32_t cases_flags_known = cases_open_only;
struct cases_filter {
  uint64_t id_min = 0; // the first case id wanted (0 and 1: from the first)
  uint32_t limit = 0;  // 1 .. cases_per_reply_max
  uint32_t flags = 0;
  uint8_t reserved[16] = {};
};
static_assert(sizeof(cases_filter) == 32);

// A case as a get_cases reply holds it: the reconciliation store's records as they are, the
// case and its journal entry (all zero while the case is open, or resolved before the journal).
struct case_record {
  ledger::store::recon_case c;
  ledger::store::recon_resolution resolution;
};
static_assert(sizeof(case_record) == 400);

// resolve_case (12): the request is one recon_resolution with case_id, action, direction,
// amount, by and note set; the fields kassa fills (resolved_ns, client_id, transfer_id and
// the two accounts) and the reserved ones are zero. The reply:
struct resolve_reply {
  uint32_t result = 0;  // ledger::payments::case_result
  uint32_t reserved = 0;
  uint64_t case_id = 0;
  u128 transfer_id = 0; // the correcting transfer; 0 when none was booked
  u128 amount = 0;      // what it moved
};
static_assert(sizeof(resolve_reply) == 48);

// The most cases a get_cases reply holds: batch_events_max, and no more than fit in a frame.
uint32_t cases_per_reply_max(uint32_t frame_bytes_max, uint32_t batch_events_max);
// status::ok, or filter_invalid when the filter breaks a rule of docs/protocol.md.
status validate(const cases_filter& f, uint32_t cases_max);

// Bytes per event record of the request (reply = false) or reply body; 0 for unknown ops.
size_t record_bytes(operation op, bool reply);

// The most records a request of `op` may hold: batch_events_max, and for lookup_orders and
// lookup_order_items also no more ids than 256-byte records fit in a reply frame (for
// lookup_order_items, also the most items its reply may hold).
uint32_t request_events_max(operation op, uint32_t frame_bytes_max, uint32_t batch_events_max);

// --- decoding ------------------------------------------------------------------------------

struct limits {
  uint32_t frame_bytes_max = 1u << 20;
  uint32_t batch_events_max = 8190;
  // false: decode requests (the server side); true: decode replies (the client side).
  bool replies = false;
};

enum class decode_outcome {
  frame,           // a valid frame: header, body, consumed
  need_more,       // the buffer holds no complete frame yet; read more, call again
  error_keep_open, // a bad frame whose length is known: answer `error`, skip `consumed` bytes
  error_close,     // framing is lost: answer `error` (request_id 0), then close
};

struct decoded {
  decode_outcome outcome = decode_outcome::need_more;
  status error = status::ok;
  header h;                     // valid for frame and error_keep_open
  const uint8_t* body = nullptr; // points into the input; not aligned
  size_t body_bytes = 0;
  size_t consumed = 0;          // bytes to drop from the front (0 unless frame / keep_open)
};

// Decodes one frame from the front of a stream buffer. Checks, in this order: magic,
// frame_bytes against header_bytes and frame_bytes_max (as soon as 12 bytes are there),
// checksum, version, flags/status/reserved bytes (and request_id 0 in a request), operation,
// event_count (request_events_max for a request), body size (and event_count 1 for hello,
// authenticate and filters, at least 1 for submit_payments), filter, the reserved field of an
// authenticate request. The order is the precedence of the error codes.
decoded decode(const uint8_t* data, size_t size, const limits& l);

// Copies `count` records of type T out of an unaligned body.
template <class T>
std::vector<T> records(const uint8_t* body, size_t body_bytes) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::vector<T> out(body_bytes / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), body, out.size() * sizeof(T));
  return out;
}

// --- encoding ------------------------------------------------------------------------------

// Appends one frame to `out`: sets magic, frame_bytes (returned) and checksum; the reserved
// bytes are zero. `h.event_count` is written as given.
uint32_t encode(std::vector<uint8_t>& out, const header& h, const void* body, size_t body_bytes);

// Appends an error reply to `request` (empty body, event_count 0, the request's context).
uint32_t encode_error(std::vector<uint8_t>& out, const header& request, status st);

// The checksum of a whole frame, as if its checksum field were zero.
uint32_t frame_checksum(const uint8_t* frame, size_t frame_bytes);

} // namespace kassa::wire
