#pragma once
// The provider HTTP/JSON protocol (docs/channels.md): the records both sides exchange and
// their JSON form. Decoding is strict and total: any malformed body gives `false` and a
// reason, never an exception. Unknown keys are ignored, so a provider may add fields.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "primitives/u128.hpp"

namespace kassa::channels {

enum class pay_kind : uint8_t { charge = 1, payout = 2, refund = 3 };

// A payment's status at the provider. not_found only answers a status query.
enum class pay_status : uint8_t { succeeded = 1, partial = 2, declined = 3, pending = 4, not_found = 5 };

const char* name(pay_kind k);
const char* name(pay_status s);
bool parse_kind(std::string_view text, pay_kind& out);
bool parse_status(std::string_view text, pay_status& out);

// POST /v1/payments
struct payment_request {
  u128 payment_id = 0;
  pay_kind kind = pay_kind::charge;
  u128 amount = 0;
  uint32_t ledger = 0;
  u128 account_id = 0;
  u128 refund_of = 0;   // 0: absent
  std::string token;    // empty: absent
};

// The answer to a payment call and to a status query.
struct payment_response {
  u128 payment_id = 0;
  pay_status status = pay_status::declined;
  u128 amount = 0;
  std::string provider_ref;
};

// POST /v1/credentials
struct credentials_response {
  std::string token;
  uint64_t expires_ms = 0; // lifetime from now
};

// GET /v1/events: the callback feed.
struct event {
  uint64_t sequence = 0;
  u128 payment_id = 0;
  pay_kind kind = pay_kind::charge;
  pay_status status = pay_status::succeeded;
  u128 amount = 0;
  std::string provider_ref;
};

// GET /v1/statement: the settlement feed.
struct statement_line {
  uint64_t sequence = 0;
  u128 payment_id = 0;
  pay_kind kind = pay_kind::charge;
  pay_status status = pay_status::succeeded;
  u128 amount = 0;
  uint32_t ledger = 0;
  std::string provider_ref;
};

// Refs, tokens and error texts are bounded so that a hostile body cannot grow memory.
constexpr size_t text_bytes_max = 256;
// Nesting deeper than this is refused before parsing.
constexpr size_t json_depth_max = 8;

std::string encode(const payment_request& r);
std::string encode(const payment_response& r);
std::string encode(const credentials_response& r);
std::string encode_events(const std::vector<event>& events);
std::string encode_statement(const std::vector<statement_line>& lines);
// {"error": "..."} for 4xx/5xx answers.
std::string encode_error(std::string_view message);
// {"status":"not_found"} for the 404 of a status query.
std::string encode_not_found();

bool decode(std::string_view body, payment_request& out, std::string& error);
bool decode(std::string_view body, payment_response& out, std::string& error);
bool decode(std::string_view body, credentials_response& out, std::string& error);
bool decode_events(std::string_view body, std::vector<event>& out, std::string& error);
bool decode_statement(std::string_view body, std::vector<statement_line>& out, std::string& error);

} // namespace kassa::channels
