#include "channels/protocol.hpp"

#include <nlohmann/json.hpp>

#include "channels/json_fields.hpp"
#include "channels/text.hpp"

namespace kassa::channels {

using json = nlohmann::json;

const char* name(pay_kind k) {
  switch (k) {
    case pay_kind::charge: return "charge";
    case pay_kind::payout: return "payout";
    case pay_kind::refund: return "refund";
  }
  return "?";
}

const char* name(pay_status s) {
  switch (s) {
    case pay_status::succeeded: return "succeeded";
    case pay_status::partial: return "partial";
    case pay_status::declined: return "declined";
    case pay_status::pending: return "pending";
    case pay_status::not_found: return "not_found";
  }
  return "?";
}

bool parse_kind(std::string_view t, pay_kind& out) {
  for (pay_kind k : {pay_kind::charge, pay_kind::payout, pay_kind::refund}) {
    if (t == name(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

bool parse_status(std::string_view t, pay_status& out) {
  for (pay_status s : {pay_status::succeeded, pay_status::partial, pay_status::declined,
                       pay_status::pending, pay_status::not_found}) {
    if (t == name(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

namespace {

json payment_json(const payment_response& r) {
  return json{{"payment_id", id_text(r.payment_id)},
              {"status", name(r.status)},
              {"amount", amount_text(r.amount)},
              {"provider_ref", r.provider_ref}};
}

// The fields every event and statement line share.
template <class Line>
bool read_line(const json& j, Line& l, fields& f) {
  return f.u64(j, "sequence", l.sequence) && f.id(j, "payment_id", l.payment_id) &&
         f.kind(j, "kind", l.kind) && f.status(j, "status", l.status) && f.amount(j, "amount", l.amount) &&
         f.text(j, "provider_ref", l.provider_ref);
}

} // namespace

std::string encode(const payment_request& r) {
  json j{{"payment_id", id_text(r.payment_id)},
         {"kind", name(r.kind)},
         {"amount", amount_text(r.amount)},
         {"ledger", r.ledger},
         {"account_id", id_text(r.account_id)}};
  if (r.refund_of != 0) j["refund_of"] = id_text(r.refund_of);
  if (!r.token.empty()) j["token"] = r.token;
  return dump(j);
}

std::string encode(const payment_response& r) { return dump(payment_json(r)); }

std::string encode(const credentials_response& r) {
  return dump(json{{"token", r.token}, {"expires_ms", r.expires_ms}});
}

std::string encode_events(const std::vector<event>& events) {
  json arr = json::array();
  for (const auto& e : events) {
    arr.push_back(json{{"sequence", e.sequence},
                       {"payment_id", id_text(e.payment_id)},
                       {"kind", name(e.kind)},
                       {"status", name(e.status)},
                       {"amount", amount_text(e.amount)},
                       {"provider_ref", e.provider_ref}});
  }
  return dump(json{{"events", std::move(arr)}});
}

std::string encode_statement(const std::vector<statement_line>& lines) {
  json arr = json::array();
  for (const auto& l : lines) {
    arr.push_back(json{{"sequence", l.sequence},
                       {"payment_id", id_text(l.payment_id)},
                       {"kind", name(l.kind)},
                       {"status", name(l.status)},
                       {"amount", amount_text(l.amount)},
                       {"ledger", l.ledger},
                       {"provider_ref", l.provider_ref}});
  }
  return dump(json{{"entries", std::move(arr)}});
}

std::string encode_error(std::string_view message) {
  return dump(json{{"error", std::string(message)}});
}

std::string encode_not_found() { return dump(json{{"status", "not_found"}}); }

bool decode(std::string_view body, payment_request& out, std::string& error) {
  json j;
  if (!parse_object(body, j, error)) return false;
  fields f{error};
  payment_request r;
  if (!(f.id(j, "payment_id", r.payment_id) && f.kind(j, "kind", r.kind) && f.amount(j, "amount", r.amount) &&
        f.u32(j, "ledger", r.ledger) && f.id(j, "account_id", r.account_id) &&
        f.optional_id(j, "refund_of", r.refund_of) && f.optional_text(j, "token", r.token))) {
    return false;
  }
  out = std::move(r);
  return true;
}

bool decode(std::string_view body, payment_response& out, std::string& error) {
  json j;
  if (!parse_object(body, j, error)) return false;
  fields f{error};
  payment_response r;
  if (!(f.id(j, "payment_id", r.payment_id) && f.status(j, "status", r.status) &&
        f.amount(j, "amount", r.amount) && f.text(j, "provider_ref", r.provider_ref))) {
    return false;
  }
  out = std::move(r);
  return true;
}

bool decode(std::string_view body, credentials_response& out, std::string& error) {
  json j;
  if (!parse_object(body, j, error)) return false;
  fields f{error};
  credentials_response r;
  if (!(f.text(j, "token", r.token) && f.u64(j, "expires_ms", r.expires_ms))) return false;
  if (r.token.empty()) {
    error = "token: empty";
    return false;
  }
  out = std::move(r);
  return true;
}

bool decode_events(std::string_view body, std::vector<event>& out, std::string& error) {
  json j;
  if (!parse_object(body, j, error)) return false;
  fields f{error};
  const json* arr = f.array(j, "events");
  if (!arr) return false;
  std::vector<event> events;
  events.reserve(arr->size());
  for (const json& item : *arr) {
    event e;
    if (!item.is_object()) return f.fail("events[]", "not an object");
    if (!read_line(item, e, f)) return false;
    events.push_back(std::move(e));
  }
  out = std::move(events);
  return true;
}

bool decode_statement(std::string_view body, std::vector<statement_line>& out, std::string& error) {
  json j;
  if (!parse_object(body, j, error)) return false;
  fields f{error};
  const json* arr = f.array(j, "entries");
  if (!arr) return false;
  std::vector<statement_line> lines;
  lines.reserve(arr->size());
  for (const json& item : *arr) {
    statement_line l;
    if (!item.is_object()) return f.fail("entries[]", "not an object");
    if (!read_line(item, l, f) || !f.u32(item, "ledger", l.ledger)) return false;
    lines.push_back(std::move(l));
  }
  out = std::move(lines);
  return true;
}

} // namespace kassa::channels
