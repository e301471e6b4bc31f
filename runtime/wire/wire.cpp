#include "runtime/wire/wire.hpp"

#include <cassert>
#include <stdexcept>

#include "primitives/crc32c.hpp"
#include "runtime/wire/crypto.hpp"

namespace kassa::wire {

std::string_view name(operation op) {
  switch (op) {
#define KASSA_WIRE_NAME(n, v)                                                                \
  case operation::n:                                                                         \
    return #n;
    KASSA_WIRE_OPERATIONS(KASSA_WIRE_NAME)
#undef KASSA_WIRE_NAME
  }
  return "unknown";
}

std::string_view name(status st) {
  switch (st) {
#define KASSA_WIRE_NAME(n, v)                                                                \
  case status::n:                                                                            \
    return #n;
    KASSA_WIRE_STATUSES(KASSA_WIRE_NAME)
#undef KASSA_WIRE_NAME
  }
  return "unknown";
}

bool operation_known(uint16_t op) {
  switch (op) {
#define KASSA_WIRE_KNOWN(n, v)                                                               \
  case v:                                                                                    \
    return true;
    KASSA_WIRE_OPERATIONS(KASSA_WIRE_KNOWN)
#undef KASSA_WIRE_KNOWN
  }
  return false;
}

bool closes_connection(status st) {
  switch (st) {
  case status::bad_magic:
  case status::frame_too_large:
  case status::frame_too_small:
  case status::bad_checksum:
    return true;
  default:
    return false;
  }
}

size_t record_bytes(operation op, bool reply) {
  switch (op) {
  case operation::hello:
    return reply ? sizeof(hello_reply) : sizeof(hello_request);
  case operation::create_accounts:
  case operation::create_transfers:
    return reply ? sizeof(event_result) : 128;
  case operation::lookup_accounts:
  case operation::lookup_transfers:
    return reply ? 128 : sizeof(u128);
  case operation::get_account_transfers:
    return reply ? sizeof(ledger::transfer) : sizeof(filter);
  case operation::get_account_balances:
    return reply ? sizeof(ledger::account_balance) : sizeof(filter);
  case operation::submit_payments:
    return reply ? sizeof(ledger::payments::payment_reply) : sizeof(ledger::payments::payment_command);
  case operation::lookup_orders:
    return reply ? sizeof(ledger::payments::order) : sizeof(u128);
  case operation::authenticate:
    return reply ? sizeof(authenticate_reply) : sizeof(authenticate_request);
  case operation::get_cases:
    return reply ? sizeof(case_record) : sizeof(cases_filter);
  case operation::resolve_case:
    return reply ? sizeof(resolve_reply) : sizeof(ledger::store::recon_resolution);
  case operation::lookup_order_items:
    return reply ? sizeof(ledger::payments::order_item) : sizeof(u128);
  }
  return 0;
}

uint32_t request_events_max(operation op, uint32_t frame_bytes_max, uint32_t batch_events_max) {
  if ((op != operation::lookup_orders && op != operation::lookup_order_items) || frame_bytes_max < header_bytes)
    return batch_events_max;
  const size_t fit = (frame_bytes_max - header_bytes) / sizeof(ledger::payments::order);
  return fit < batch_events_max ? static_cast<uint32_t>(fit) : batch_events_max;
}

uint32_t cases_per_reply_max(uint32_t frame_bytes_max, uint32_t batch_events_max) {
  if (frame_bytes_max < header_bytes) return 0;
  const size_t fit = (frame_bytes_max - header_bytes) / sizeof(case_record);
  return fit < batch_events_max ? static_cast<uint32_t>(fit) : batch_events_max;
}

status validate(const cases_filter& f, uint32_t cases_max) {
  if (f.limit == 0 || f.limit > cases_max) return status::filter_invalid;
  if ((f.flags & ~cases_flags_known) != 0) return status::filter_invalid;
  for (uint8_t b : f.reserved)
    if (b != 0) return status::filter_invalid;
  return status::ok;
}

namespace {

// The fields of a resolve_case request that kassa fills, and the reserved ones, are zero.
bool resolution_request_clean(const ledger::store::recon_resolution& r) {
  return r.resolved_ns == 0 && r.client_id == 0 && r.reserved == 0 && r.reserved2 == 0 && r.transfer_id == 0 &&
         r.debit_account_id == 0 && r.credit_account_id == 0;
}

} // namespace

status validate(const filter& f, uint32_t batch_events_max) {
  if (f.account_id == 0 || f.account_id == u128_max) return status::filter_invalid;
  if (f.limit == 0 || f.limit > batch_events_max) return status::filter_invalid;
  if ((f.flags & ~filter_flags_known) != 0) return status::filter_invalid;
  if ((f.flags & (filter_debits | filter_credits)) == 0) return status::filter_invalid;
  if (f.timestamp_min != 0 && f.timestamp_max != 0 && f.timestamp_min > f.timestamp_max)
    return status::filter_invalid;
  for (uint8_t b : f.reserved)
    if (b != 0) return status::filter_invalid;
  return status::ok;
}

std::array<uint8_t, proof_bytes> auth_proof(proof_side side, const uint8_t (&key)[key_bytes],
                                            const uint8_t (&server_nonce)[nonce_bytes],
                                            const uint8_t (&client_nonce)[nonce_bytes],
                                            uint64_t client_id) {
  constexpr size_t label_bytes = 20;
  static const char client_label[] = "kassa-auth-client-v1";
  static const char server_label[] = "kassa-auth-server-v1";
  static_assert(sizeof client_label == label_bytes + 1 && sizeof server_label == label_bytes + 1);
  uint8_t message[label_bytes + 2 * nonce_bytes + 8];
  std::memcpy(message, side == proof_side::client ? client_label : server_label, label_bytes);
  std::memcpy(message + label_bytes, server_nonce, nonce_bytes);
  std::memcpy(message + label_bytes + nonce_bytes, client_nonce, nonce_bytes);
  std::memcpy(message + label_bytes + 2 * nonce_bytes, &client_id, 8); // little-endian host
  return hmac_sha256(key, key_bytes, message, sizeof message);
}

uint32_t frame_checksum(const uint8_t* frame, size_t frame_bytes) {
  assert(frame_bytes >= header_bytes);
  static const uint8_t zero[4] = {};
  uint32_t crc = crc32c_extend(0, frame, 12);
  crc = crc32c_extend(crc, zero, 4);
  return crc32c_extend(crc, frame + 16, frame_bytes - 16);
}

namespace {

decoded fail_close(status st) {
  decoded d;
  d.outcome = decode_outcome::error_close;
  d.error = st;
  return d;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

} // namespace

decoded decode(const uint8_t* data, size_t size, const limits& l) {
  assert(l.frame_bytes_max >= header_bytes);
  static const uint8_t magic_bytes[4] = {'K', 'A', 'S', 'S'};
  // Judge the magic on the bytes that are there: a stream that starts wrong is lost already.
  // (An empty buffer may come as a null pointer: nothing to judge yet.)
  if (size == 0) return decoded{};
  if (std::memcmp(data, magic_bytes, size < 4 ? size : 4) != 0) return fail_close(status::bad_magic);
  if (size < 12) return decoded{};
  uint32_t frame_bytes;
  std::memcpy(&frame_bytes, data + 8, 4);
  if (frame_bytes < header_bytes) return fail_close(status::frame_too_small);
  if (frame_bytes > l.frame_bytes_max) return fail_close(status::frame_too_large);
  if (size < frame_bytes) return decoded{};

  header_layout raw;
  std::memcpy(&raw, data, header_bytes);
  if (raw.checksum != frame_checksum(data, frame_bytes)) return fail_close(status::bad_checksum);

  decoded d;
  d.consumed = frame_bytes;
  d.body = data + header_bytes;
  d.body_bytes = frame_bytes - header_bytes;
  header& h = d.h;
  h.version = raw.version;
  h.op = static_cast<operation>(raw.operation);
  h.frame_bytes = frame_bytes;
  h.request_id = raw.request_id;
  h.event_count = raw.event_count;
  h.reply = (raw.flags & flag_reply) != 0;
  h.st = static_cast<status>(raw.status);
  h.ctx.trace_id = raw.trace_id;
  h.ctx.business_id = raw.business_id;
  h.ctx.client_id = raw.client_id;
  h.ctx.deadline_ns = raw.deadline_ns;
  h.ctx.shadow = (raw.flags & flag_shadow) != 0;

  auto keep_open = [&d](status st) {
    d.outcome = decode_outcome::error_keep_open;
    d.error = st;
    return d;
  };
  if (raw.version != protocol_version) return keep_open(status::version_unsupported);
  if ((raw.flags & ~flags_known) != 0 || h.reply != l.replies ||
      (!l.replies && (raw.status != 0 || raw.request_id == 0)) ||
      !all_zero(raw.reserved, sizeof raw.reserved))
    return keep_open(status::reserved_nonzero);
  if (!operation_known(raw.operation)) return keep_open(status::operation_unknown);
  if (h.event_count > l.batch_events_max) return keep_open(status::too_many_events);
  if (!h.reply && h.event_count > request_events_max(h.op, l.frame_bytes_max, l.batch_events_max))
    return keep_open(status::too_many_events);
  if (h.reply && h.st != status::ok) {
    // An error reply carries no body.
    if (h.event_count != 0 || d.body_bytes != 0) return keep_open(status::body_size_invalid);
  } else {
    const bool single = h.op == operation::hello || h.op == operation::authenticate ||
                        (!h.reply && (h.op == operation::get_account_transfers ||
                                      h.op == operation::get_account_balances || h.op == operation::get_cases)) ||
                        h.op == operation::resolve_case;
    if (single && h.event_count != 1) return keep_open(status::body_size_invalid);
    if (!h.reply && h.op == operation::submit_payments && h.event_count == 0)
      return keep_open(status::body_size_invalid);
    if (uint64_t(h.event_count) * record_bytes(h.op, h.reply) != d.body_bytes)
      return keep_open(status::body_size_invalid);
    if (!h.reply && (h.op == operation::get_account_transfers ||
                     h.op == operation::get_account_balances)) {
      filter f;
      std::memcpy(&f, d.body, sizeof f);
      if (validate(f, l.batch_events_max) != status::ok) return keep_open(status::filter_invalid);
    }
    if (!h.reply && h.op == operation::get_cases) {
      cases_filter f;
      std::memcpy(&f, d.body, sizeof f);
      if (validate(f, cases_per_reply_max(l.frame_bytes_max, l.batch_events_max)) != status::ok)
        return keep_open(status::filter_invalid);
    }
    if (!h.reply && h.op == operation::resolve_case) {
      ledger::store::recon_resolution r;
      std::memcpy(&r, d.body, sizeof r);
      if (!resolution_request_clean(r)) return keep_open(status::reserved_nonzero);
    }
    if (!h.reply && h.op == operation::authenticate) {
      authenticate_request a;
      std::memcpy(&a, d.body, sizeof a);
      if (a.reserved != 0) return keep_open(status::reserved_nonzero);
    }
  }
  d.outcome = decode_outcome::frame;
  return d;
}

uint32_t encode(std::vector<uint8_t>& out, const header& h, const void* body, size_t body_bytes) {
  if (body_bytes > UINT32_MAX - header_bytes) throw std::length_error("wire frame too large");
  const auto frame_bytes = static_cast<uint32_t>(header_bytes + body_bytes);
  header_layout raw{};
  raw.magic = magic;
  raw.version = h.version;
  raw.operation = static_cast<uint16_t>(h.op);
  raw.frame_bytes = frame_bytes;
  raw.checksum = 0;
  raw.request_id = h.request_id;
  raw.event_count = h.event_count;
  raw.flags = uint16_t((h.ctx.shadow ? flag_shadow : 0) | (h.reply ? flag_reply : 0));
  raw.status = static_cast<uint16_t>(h.st);
  raw.trace_id = h.ctx.trace_id;
  raw.business_id = h.ctx.business_id;
  raw.client_id = h.ctx.client_id;
  raw.deadline_ns = h.ctx.deadline_ns;

  const size_t start = out.size();
  out.resize(start + frame_bytes);
  uint8_t* frame = out.data() + start;
  std::memcpy(frame, &raw, header_bytes);
  if (body_bytes != 0) std::memcpy(frame + header_bytes, body, body_bytes);
  const uint32_t crc = frame_checksum(frame, frame_bytes);
  std::memcpy(frame + 12, &crc, 4);
  return frame_bytes;
}

uint32_t encode_error(std::vector<uint8_t>& out, const header& request, status st) {
  header h = request;
  h.version = protocol_version;
  h.reply = true;
  h.st = st;
  h.event_count = 0;
  return encode(out, h, nullptr, 0);
}

} // namespace kassa::wire
