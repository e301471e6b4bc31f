#include "runtime/cli_cases.hpp"

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "ledger/payments/case_resolution.hpp"
#include "runtime/cli_payments.hpp"

namespace kassa::runtime {

namespace {

namespace ks = ledger::store;
namespace lp = ledger::payments;

constexpr int exit_ok = 0;
constexpr int exit_refused = 1;

std::string text_of(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// JSON string: the note and the name are the operator's own text.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\', out += ch;
    else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(ch));
      out += buf;
    } else out += ch;
  }
  return out + "\"";
}

std::string q128(u128 v) { return "\"" + to_string_u128(v) + "\""; }

std::string case_json(const wire::case_record& r) {
  const ks::recon_case& c = r.c;
  const ks::recon_resolution& j = r.resolution;
  std::string out = "{\"id\":" + std::to_string(c.id) + ",\"kind\":" +
                    quoted(std::string(ks::name(ks::case_kind(c.kind)))) + ",\"status\":" +
                    quoted(std::string(ks::name(ks::case_status(c.status)))) +
                    ",\"opened_ns\":" + std::to_string(c.opened_ns) + ",\"resolved_ns\":" +
                    std::to_string(c.resolved_ns) + ",\"provider\":" + quoted(text_of(c.provider, sizeof c.provider)) +
                    ",\"payment_id\":" + q128(c.payment_id) + ",\"row_id\":" + q128(c.row_id) +
                    ",\"ledger\":" + std::to_string(c.ledger) + ",\"internal_amount\":" + q128(c.internal_amount) +
                    ",\"provider_amount\":" + q128(c.provider_amount) + ",\"trace_id\":" + q128(c.trace_id);
  if (j.case_id != 0) {
    out += ",\"resolution\":{\"action\":" + quoted(std::string(lp::name(lp::case_action(j.action)))) +
           ",\"by\":" + quoted(text_of(j.by, sizeof j.by)) + ",\"client_id\":" + std::to_string(j.client_id) +
           ",\"note\":" + quoted(text_of(j.note, sizeof j.note)) + ",\"transfer_id\":" + q128(j.transfer_id) +
           ",\"direction\":" + quoted(std::string(lp::name(lp::case_direction(j.direction)))) +
           ",\"amount\":" + q128(j.amount) + ",\"debit_account_id\":" + q128(j.debit_account_id) +
           ",\"credit_account_id\":" + q128(j.credit_account_id) + "}";
  }
  return out + "}";
}

void print_resolution(const ks::recon_case& c, const ks::recon_resolution& j) {
  if (c.status != uint8_t(ks::case_status::resolved)) return;
  if (j.case_id == 0) {
    std::printf("resolved %s; no journal entry (resolved before kassa kept one)\n", utc_text(c.resolved_ns).c_str());
    return;
  }
  std::printf("resolved %s by %s (client %llu): %s\n", utc_text(j.resolved_ns).c_str(),
              text_of(j.by, sizeof j.by).c_str(), (unsigned long long)j.client_id,
              std::string(lp::name(lp::case_action(j.action))).c_str());
  std::printf("note: %s\n", text_of(j.note, sizeof j.note).c_str());
  if (j.transfer_id != 0)
    std::printf("correcting transfer %s: %s %s, debit %s, credit %s\n", to_string_u128(j.transfer_id).c_str(),
                std::string(lp::name(lp::case_direction(j.direction))).c_str(), to_string_u128(j.amount).c_str(),
                to_string_u128(j.debit_account_id).c_str(), to_string_u128(j.credit_account_id).c_str());
}

// Every case from `id_min` on, page by page (each as large as a reply frame holds).
std::vector<wire::case_record> fetch(client::blocking_client& c, bool open_only, uint64_t id_min, size_t max) {
  const auto& limits = c.async().server_limits();
  wire::cases_filter f;
  f.id_min = id_min;
  f.limit = wire::cases_per_reply_max(limits.frame_bytes_max, limits.batch_events_max);
  f.flags = open_only ? wire::cases_open_only : 0;
  std::vector<wire::case_record> out;
  while (out.size() < max) {
    if (f.limit > max - out.size()) f.limit = uint32_t(max - out.size());
    const auto page = c.get_cases(f);
    out.insert(out.end(), page.begin(), page.end());
    if (page.size() < f.limit) break;
    f.id_min = page.back().c.id + 1;
  }
  return out;
}

template <class E>
E parse_word(const std::string& what, const std::string& text, std::initializer_list<E> values) {
  for (E v : values)
    if (lp::name(v) == text) return v;
  std::string words;
  for (E v : values) words += (words.empty() ? "" : ", ") + std::string(lp::name(v));
  throw std::invalid_argument(what + " must be one of " + words + ", got '" + text + "'");
}

} // namespace

int cases_list(client::blocking_client& c, bool open_only, bool json) {
  const auto records = fetch(c, open_only, 0, SIZE_MAX);
  if (json) {
    for (const auto& r : records) std::printf("%s\n", case_json(r).c_str());
    return exit_ok;
  }
  std::vector<ks::recon_case> cases;
  for (const auto& r : records) cases.push_back(r.c);
  print_case_table(cases);
  return exit_ok;
}

int cases_show(client::blocking_client& c, uint64_t id, bool json) {
  const auto records = fetch(c, false, id, 1);
  if (records.empty() || records[0].c.id != id) {
    std::fprintf(stderr, "kassa: no case %llu\n", (unsigned long long)id);
    return exit_refused;
  }
  if (json) {
    std::printf("%s\n", case_json(records[0]).c_str());
    return exit_ok;
  }
  print_case_table({records[0].c});
  print_resolution(records[0].c, records[0].resolution);
  return exit_ok;
}

int cases_resolve(client::blocking_client& c, const case_resolution_args& a, bool json) {
  ks::recon_resolution r;
  r.case_id = a.id;
  r.action = uint8_t(parse_word("--action", a.action, {lp::case_action::accept, lp::case_action::book, lp::case_action::refund}));
  if (!a.direction.empty())
    r.direction = uint8_t(parse_word("--direction", a.direction,
                                     {lp::case_direction::from_suspense, lp::case_direction::to_suspense}));
  r.amount = a.amount;
  if (a.note.empty()) throw std::invalid_argument("--note is required: say why the case is resolved so");
  if (a.note.size() > sizeof r.note) throw std::invalid_argument("--note holds at most 128 bytes");
  if (a.by.size() > sizeof r.by) throw std::invalid_argument("--by holds at most 32 bytes");
  std::memcpy(r.note, a.note.data(), a.note.size());
  std::memcpy(r.by, a.by.data(), a.by.size());
  const wire::resolve_reply got = c.resolve_case(r);
  const auto result = lp::case_result(got.result);
  const std::string result_name(lp::name(result));
  if (json) {
    std::printf("{\"case\":%llu,\"result\":%s,\"transfer_id\":%s,\"amount\":%s,\"ok\":%s}\n",
                (unsigned long long)got.case_id, quoted(result_name).c_str(), q128(got.transfer_id).c_str(),
                q128(got.amount).c_str(), result == lp::case_result::ok ? "true" : "false");
  } else if (result == lp::case_result::ok && got.transfer_id != 0) {
    std::printf("case %llu: resolved (%s); correcting transfer %s of %s\n", (unsigned long long)got.case_id,
                a.action.c_str(), to_string_u128(got.transfer_id).c_str(), to_string_u128(got.amount).c_str());
  } else if (result == lp::case_result::ok) {
    std::printf("case %llu: resolved (%s); nothing booked\n", (unsigned long long)got.case_id, a.action.c_str());
  } else {
    std::printf("case %llu: %s; nothing changed\n", (unsigned long long)got.case_id, result_name.c_str());
  }
  return result == lp::case_result::ok ? exit_ok : exit_refused;
}

} // namespace kassa::runtime
