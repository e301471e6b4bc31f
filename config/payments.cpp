// The payments section: ledgers, providers, fees, limits, exception rules and flows, and the
// rules across it; the names of its enums.
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "config/sections.hpp"

namespace kassa::config {
namespace {

using namespace detail;

const names<payment_type> payment_type_names = {
    {"topup", payment_type::topup},
    {"withdrawal", payment_type::withdrawal},
    {"transfer", payment_type::transfer},
    {"pay", payment_type::pay},
};

const names<flow_name> flow_names = {
    {"topup", flow_name::topup},       {"withdrawal", flow_name::withdrawal},
    {"transfer", flow_name::transfer}, {"pay", flow_name::pay},
    {"refund", flow_name::refund},
};

const names<fee_rounding> fee_rounding_names = {
    {"up", fee_rounding::up},
    {"down", fee_rounding::down},
    {"half_even", fee_rounding::half_even},
};

const names<partial_payment_policy> partial_payment_names = {
    {"accept", partial_payment_policy::accept},
    {"refund", partial_payment_policy::refund},
    {"hold", partial_payment_policy::hold},
};

const names<duplicate_payment_policy> duplicate_payment_names = {
    {"refund", duplicate_payment_policy::refund},
    {"keep", duplicate_payment_policy::keep},
};

const names<late_success_policy> late_success_names = {
    {"accept", late_success_policy::accept},
    {"refund", late_success_policy::refund},
};

// The default flows: one row per step, in order. Step names are the ones the payment core
// registers (docs/payments.md); change them here and in docs/configuration.md together.
struct default_step {
  flow_name flow;
  const char* step;
  uint32_t timeout_ms;
  const char* compensate; // "" for none
  uint8_t group;
};

const default_step default_steps[] = {
    {flow_name::topup, "check_accounts", 2000, "", 0},
    {flow_name::topup, "check_limits", 1000, "", 0},
    {flow_name::topup, "route", 1000, "", 0},
    {flow_name::topup, "fetch_credentials", 5000, "", 0},
    {flow_name::topup, "provider_call", 15000, "provider_refund", 0},
    {flow_name::topup, "book_topup", 5000, "", 0},

    {flow_name::withdrawal, "check_accounts", 2000, "", 0},
    {flow_name::withdrawal, "check_limits", 1000, "", 0},
    {flow_name::withdrawal, "route", 1000, "", 0},
    {flow_name::withdrawal, "hold_funds", 5000, "release_hold", 1},
    {flow_name::withdrawal, "fetch_credentials", 5000, "", 1},
    {flow_name::withdrawal, "provider_call", 15000, "", 0},
    {flow_name::withdrawal, "settle_hold", 5000, "", 0},

    {flow_name::transfer, "check_accounts", 2000, "", 0},
    {flow_name::transfer, "check_limits", 1000, "", 0},
    {flow_name::transfer, "book_transfer", 5000, "", 0},

    {flow_name::pay, "check_accounts", 2000, "", 0},
    {flow_name::pay, "check_limits", 1000, "", 0},
    {flow_name::pay, "route", 1000, "", 0},
    {flow_name::pay, "hold_funds", 5000, "release_hold", 1},
    {flow_name::pay, "fetch_credentials", 5000, "", 1},
    {flow_name::pay, "provider_call", 15000, "provider_refund", 0},
    {flow_name::pay, "capture", 5000, "", 0},

    {flow_name::refund, "route", 1000, "", 0},
    {flow_name::refund, "hold_funds", 5000, "release_hold", 1},
    {flow_name::refund, "fetch_credentials", 5000, "", 1},
    {flow_name::refund, "provider_call", 15000, "", 0},
    {flow_name::refund, "book_refund", 5000, "", 0},
};

bool lower_word_char(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; }
bool provider_name_char(char ch) { return lower_word_char(ch) || ch == '-'; }
bool currency_char(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); }

// A string of 1 .. length_max characters that `allowed` accepts; `what` describes them.
parse_fn word(std::string& out, bool (*allowed)(char), size_t length_max, const char* what) {
  return [&out, allowed, length_max, what](reader& r, const YAML::Node& value, const place& at) {
    const std::string text = read_scalar(r, value, at, "a name");
    if (text.empty() || text.size() > length_max || !std::all_of(text.begin(), text.end(), allowed)) {
      r.fail(at, "must be 1 to " + std::to_string(length_max) + " of " + what + ", got '" + text + "'");
    }
    out = text;
  };
}

// An amount in minor units: a decimal number below 2^128, plain or quoted (YAML integers do
// not reach 128 bits everywhere), at least `min`.
parse_fn amount(u128& out, u128 min = 0) {
  return [&out, min](reader& r, const YAML::Node& value, const place& at) {
    const std::string text = read_scalar(r, value, at, "an amount (decimal minor units)");
    const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    if (!digits) r.fail(at, "expected an amount (decimal minor units), got '" + text + "'");
    if (text.size() > 1 && text[0] == '0') {
      r.fail(at, "expected an amount without leading zeros (YAML 1.1 reads them as octal), got '" +
                     text + "'");
    }
    u128 v = 0;
    if (!parse_u128(text, v)) r.fail(at, "does not fit in 128 bits, got '" + text + "'");
    if (v < min) r.fail(at, "must be at least " + to_string_u128(min) + ", got '" + text + "'");
    out = v;
  };
}

// A ledger number (a currency): 1 .. 2^32 - 1.
parse_fn ledger_number(uint32_t& out) { return integer(out, 1, UINT32_MAX); }

// http://HOST:PORT[/PATH]: kassa speaks plain HTTP to providers (a local sidecar terminates
// TLS when a provider needs it).
parse_fn provider_url(provider_config& p) {
  return [&p](reader& r, const YAML::Node& value, const place& at) {
    const std::string text = read_scalar(r, value, at, "a URL");
    const std::string expected = "expected http://HOST:PORT[/PATH], got '" + text + "'";
    const std::string scheme = "http://";
    if (text.rfind(scheme, 0) != 0) r.fail(at, expected + " (only http is supported)");
    const std::string rest = text.substr(scheme.size());
    const size_t slash = rest.find('/');
    const std::string authority = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    const size_t colon = authority.rfind(':');
    if (colon == std::string::npos) r.fail(at, expected + " (the port is required)");
    const std::string host = authority.substr(0, colon);
    const std::string port = authority.substr(colon + 1);
    const bool host_ok = !host.empty() && std::all_of(host.begin(), host.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' || ch == '-';
    });
    if (!host_ok) r.fail(at, expected + " (bad host)");
    const bool port_digits = !port.empty() && port.size() <= 5 && port[0] != '0' &&
                             std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!port_digits || std::stoul(port) > 65535) {
      r.fail(at, expected + " (the port must be 1 .. 65535)");
    }
    const bool path_ok = std::all_of(path.begin(), path.end(), [](char ch) {
      return std::isgraph(static_cast<unsigned char>(ch)) != 0 && ch != '?' && ch != '#';
    });
    if (!path_ok) r.fail(at, expected + " (the path may not hold spaces, '?' or '#')");
    while (!path.empty() && path.back() == '/') path.pop_back();
    p.url = text;
    p.host = host;
    p.port = static_cast<uint16_t>(std::stoul(port));
    p.path_prefix = path;
  };
}

parse_fn ledger_list(std::vector<payment_ledger>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_list(r, value, at, "a list of {ledger, currency} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                payment_ledger l;
                read_map(r, item, here,
                         {
                             {"ledger", required, ledger_number(l.ledger)},
                             {"currency", required, word(l.currency, currency_char, 8, "A-Z, 0-9")},
                         });
                const place ledger_at = r.find(here.path + ".ledger");
                for (size_t i = 0; i < out.size(); ++i) {
                  if (out[i].ledger == l.ledger) {
                    r.fail(ledger_at, "duplicate ledger " + first_at(must_find(r, at.path + "[" +
                                                                                  std::to_string(i) + "].ledger")));
                  }
                }
                out.push_back(l);
              });
  };
}

// A list of distinct ledger numbers; each item is remembered, for rules checked afterwards.
void read_ledger_numbers(reader& r, const YAML::Node& value, const place& at, std::vector<uint32_t>& out) {
  read_list(r, value, at, "a list of ledger numbers",
            [&](reader& r, const YAML::Node& item, const place& here) {
              uint32_t ledger = 0;
              ledger_number(ledger)(r, item, here);
              r.remember(here);
              for (size_t i = 0; i < out.size(); ++i) {
                if (out[i] == ledger) {
                  r.fail(here, "duplicate ledger " +
                                   first_at(r.find(at.path + "[" + std::to_string(i) + "]")));
                }
              }
              out.push_back(ledger);
            });
}

// A provider serves at least one ledger; each must be listed under payments.ledgers.
parse_fn provider_ledgers(std::vector<uint32_t>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_ledger_numbers(r, value, at, out);
    if (out.empty()) r.fail(at, "must list at least one ledger the provider serves");
  };
}

// Fees and limits are keyed by (type, ledger); a pair listed twice is refused at the second.
template <class Entry>
void refuse_duplicate_pair(const reader& r, const std::vector<Entry>& seen, const Entry& e,
                           const place& list_at, const place& item_at) {
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i].type == e.type && seen[i].ledger == e.ledger) {
      r.fail(r.find(item_at.path + ".ledger"),
             "duplicate entry for type " + std::string(to_string(e.type)) + ", ledger " +
                 std::to_string(e.ledger) + " " +
                 first_at(must_find(r, list_at.path + "[" + std::to_string(i) + "].type")));
    }
  }
}

parse_fn fee_list(std::vector<fee_config>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_list(r, value, at, "a list of fee maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                fee_config f;
                read_map(r, item, here,
                         {
                             {"type", required, one_of(f.type, payment_type_names)},
                             {"ledger", required, ledger_number(f.ledger)},
                             {"fixed", optional, amount(f.fixed)},
                             {"rate_ppm", optional, integer(f.rate_ppm, 0, 1000000)},
                             {"rounding", optional, one_of(f.rounding, fee_rounding_names)},
                             {"min", optional, amount(f.min)},
                             {"max", optional, amount(f.max)},
                         });
                refuse_duplicate_pair(r, out, f, at, here);
                const place min_at = r.find(here.path + ".min");
                const place max_at = r.find(here.path + ".max");
                if (f.max != 0 && f.max < f.min) {
                  if (later(max_at, min_at)) {
                    r.fail(max_at, "must be 0 (no maximum) or at least min = " + to_string_u128(f.min));
                  }
                  r.fail(min_at, "must be at most max = " + to_string_u128(f.max));
                }
                out.push_back(f);
              });
  };
}

parse_fn limit_list(std::vector<limit_config>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_list(r, value, at, "a list of limit maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                limit_config l;
                read_map(r, item, here,
                         {
                             {"type", required, one_of(l.type, payment_type_names)},
                             {"ledger", required, ledger_number(l.ledger)},
                             {"payment_max", optional, amount(l.payment_max)},
                             {"account_day_max", optional, amount(l.account_day_max)},
                             {"account_day_count_max", optional,
                              integer(l.account_day_count_max, 0, UINT32_MAX)},
                         });
                refuse_duplicate_pair(r, out, l, at, here);
                out.push_back(l);
              });
  };
}

parse_fn flow_steps(std::vector<flow_step>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out.clear();
    read_list(r, value, at, "a list of {step, timeout_ms, compensate, group} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                flow_step s;
                read_map(r, item, here,
                         {
                             {"step", required, word(s.step, lower_word_char, 32, "a-z, 0-9, _")},
                             {"timeout_ms", optional, integer(s.timeout_ms, 1, 600000)},
                             {"compensate", optional, word(s.compensate, lower_word_char, 32, "a-z, 0-9, _")},
                             {"group", optional, integer(s.group, 0, 255)},
                         });
                s.key_path = here.path;
                s.line = must_find(r, here.path + ".step").line;
                s.compensate_line = r.find(here.path + ".compensate").line;
                // A group runs as one stage: its steps must stand together.
                if (s.group != 0 && !out.empty() && out.back().group != s.group) {
                  for (const flow_step& earlier : out) {
                    if (earlier.group == s.group) {
                      r.fail(r.find(here.path + ".group"),
                             "group " + std::to_string(s.group) + " is used again after other steps " +
                                 first_at(must_find(r, earlier.key_path + ".group")) +
                                 "; the steps of a group must be adjacent");
                    }
                  }
                }
                if (out.size() == flow_steps_max) {
                  r.fail(at, "must have at most " + std::to_string(flow_steps_max) + " steps");
                }
                out.push_back(std::move(s));
              });
    if (out.empty()) r.fail(at, "must list at least one step");
  };
}

parse_fn flows_section(flows_config& c) {
  std::vector<field> fields;
  for (const auto& [name, flow] : flow_names) fields.push_back({name, optional, flow_steps(c.of(flow))});
  return section(std::move(fields));
}

} // namespace

namespace detail {

// The ledgers a client may use; none listed: every ledger.
parse_fn client_ledgers(std::vector<uint32_t>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) { read_ledger_numbers(r, value, at, out); };
}

parse_fn provider_list(std::vector<provider_config>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_list(r, value, at, "a list of provider maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                provider_config p;
                read_map(r, item, here,
                         {
                             {"name", required, word(p.name, provider_name_char, 16, "a-z, 0-9, _, -")},
                             {"url", required, provider_url(p)},
                             {"ledgers", required, provider_ledgers(p.ledgers)},
                             {"priority", optional, integer(p.priority, 0, 1000)},
                             {"amount_min", optional, amount(p.amount_min, 1)},
                             {"amount_max", optional, amount(p.amount_max)},
                             {"inflight_max", optional, integer(p.inflight_max, 1, 100000)},
                             {"connections_max", optional, integer(p.connections_max, 1, 1024)},
                             {"timeout_ms", optional, integer(p.timeout_ms, 1, 600000)},
                             {"retries_max", optional, integer(p.retries_max, 0, 100)},
                             {"backoff_ms_min", optional, integer(p.backoff_ms_min, 1, 600000)},
                             {"backoff_ms_max", optional, integer(p.backoff_ms_max, 1, 3600000)},
                             {"breaker", optional,
                              section({
                                  {"failures_min", optional, integer(p.breaker.failures_min, 1, 1000000)},
                                  {"window_ms", optional, integer(p.breaker.window_ms, 1, 3600000)},
                                  {"open_ms", optional, integer(p.breaker.open_ms, 1, 3600000)},
                              })},
                             {"credentials", optional, boolean(p.credentials)},
                             {"credential_ttl_ms", optional, integer(p.credential_ttl_ms, 1, 86400000)},
                             {"events_poll_ms", optional, integer(p.events_poll_ms, 0, 600000)},
                             {"status_query", optional,
                              section({
                                  {"interval_ms", optional, integer(p.status_query.interval_ms, 1, 3600000)},
                                  {"queries_max", optional, integer(p.status_query.queries_max, 1, 1000000)},
                              })},
                             {"statement_poll_ms", optional, integer(p.statement_poll_ms, 0, 3600000)},
                         });
                const place name_at = r.find(here.path + ".name");
                for (size_t i = 0; i < out.size(); ++i) {
                  if (out[i].name == p.name) {
                    r.fail(name_at, "duplicate provider name " +
                                        first_at(must_find(r, at.path + "[" + std::to_string(i) + "].name")));
                  }
                }
                const place min_at = r.find(here.path + ".amount_min");
                const place max_at = r.find(here.path + ".amount_max");
                if (p.amount_max != 0 && p.amount_max < p.amount_min) {
                  if (later(max_at, min_at)) {
                    r.fail(max_at, "must be 0 (no maximum) or at least amount_min = " + to_string_u128(p.amount_min));
                  }
                  r.fail(min_at, "must be at most amount_max = " + to_string_u128(p.amount_max));
                }
                const place bmin_at = r.find(here.path + ".backoff_ms_min");
                const place bmax_at = r.find(here.path + ".backoff_ms_max");
                if (p.backoff_ms_max < p.backoff_ms_min) {
                  if (later(bmax_at, bmin_at)) {
                    r.fail(bmax_at, "must be at least backoff_ms_min = " + std::to_string(p.backoff_ms_min));
                  }
                  r.fail(bmin_at, "must be at most backoff_ms_max = " + std::to_string(p.backoff_ms_max));
                }
                out.push_back(std::move(p));
              });
  };
}

parse_fn payments_section(payments_config& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"orders_inflight_max", optional, integer(c.orders_inflight_max, 1, 10000000)},
      {"flow_wait_ms", optional, integer(c.flow_wait_ms, 0, 600000)},
      {"ledgers", optional, ledger_list(c.ledgers)},
      {"providers", optional, provider_list(c.providers)},
      {"fees", optional, fee_list(c.fees)},
      {"limits", optional, limit_list(c.limits)},
      {"exceptions", optional,
       section({
           {"partial_payment", optional, one_of(c.exceptions.partial_payment, partial_payment_names)},
           {"partial_hold_ms", optional, integer(c.exceptions.partial_hold_ms, 1, 86400000)},
           {"duplicate_payment", optional, one_of(c.exceptions.duplicate_payment, duplicate_payment_names)},
           {"late_success", optional, one_of(c.exceptions.late_success, late_success_names)},
       })},
      {"accounting", optional,
       section({
           {"enabled", optional, boolean(c.accounting.enabled)},
           {"interval_ms", optional, integer(c.accounting.interval_ms, 1, 3600000)},
           {"batch_events_max", optional, integer(c.accounting.batch_events_max, 1, 1000000)},
       })},
      {"reconciliation", optional,
       section({
           {"enabled", optional, boolean(c.reconciliation.enabled)},
           {"interval_ms", optional, integer(c.reconciliation.interval_ms, 1, 3600000)},
           {"grace_ms", optional, integer(c.reconciliation.grace_ms, 0, 86400000)},
           {"inflight_grace_ms", optional, integer(c.reconciliation.inflight_grace_ms, 0, 86400000)},
           {"refund_timeout_ms", optional, integer(c.reconciliation.refund_timeout_ms, 1, 600000)},
       })},
      {"flows", optional, flows_section(c.flows)},
  });
}

// Rules across the payments section, checked once all of it is read (a list may name a
// ledger listed further down).
void check_payments(const reader& r, payments_config& c, const std::string& source) {
  auto served = [&](uint32_t ledger) {
    return std::any_of(c.ledgers.begin(), c.ledgers.end(),
                       [&](const payment_ledger& l) { return l.ledger == ledger; });
  };
  const std::string not_served = " is not listed under payments.ledgers";
  for (size_t i = 0; i < c.providers.size(); ++i) {
    const std::string path = "payments.providers[" + std::to_string(i) + "].ledgers";
    for (size_t j = 0; j < c.providers[i].ledgers.size(); ++j) {
      const uint32_t ledger = c.providers[i].ledgers[j];
      if (!served(ledger)) {
        r.fail(must_find(r, path + "[" + std::to_string(j) + "]"), "ledger " + std::to_string(ledger) + not_served);
      }
    }
  }
  for (size_t i = 0; i < c.fees.size(); ++i) {
    if (!served(c.fees[i].ledger)) {
      r.fail(must_find(r, "payments.fees[" + std::to_string(i) + "].ledger"),
             "ledger " + std::to_string(c.fees[i].ledger) + not_served);
    }
  }
  for (size_t i = 0; i < c.limits.size(); ++i) {
    if (!served(c.limits[i].ledger)) {
      r.fail(must_find(r, "payments.limits[" + std::to_string(i) + "].ledger"),
             "ledger " + std::to_string(c.limits[i].ledger) + not_served);
    }
  }
  if (c.enabled) {
    const place enabled = must_find(r, "payments.enabled");
    if (c.ledgers.empty()) {
      r.fail(enabled, "is true but payments.ledgers is empty; list the currencies the payment core serves");
    }
    if (c.providers.empty()) {
      r.fail(enabled, "is true but payments.providers is empty; list at least one provider");
    }
  }
  for (const auto& [name, flow] : flow_names) {
    for (flow_step& s : c.flows.of(flow)) s.source = source;
  }
}

} // namespace detail

flows_config::flows_config()
    : topup(default_flow(flow_name::topup)), withdrawal(default_flow(flow_name::withdrawal)),
      transfer(default_flow(flow_name::transfer)), pay(default_flow(flow_name::pay)),
      refund(default_flow(flow_name::refund)) {}

const std::vector<flow_step>& flows_config::of(flow_name flow) const {
  switch (flow) {
  case flow_name::topup: return topup;
  case flow_name::withdrawal: return withdrawal;
  case flow_name::transfer: return transfer;
  case flow_name::pay: return pay;
  case flow_name::refund: return refund;
  }
  throw std::logic_error("flows_config::of: unknown flow");
}

std::vector<flow_step>& flows_config::of(flow_name flow) {
  return const_cast<std::vector<flow_step>&>(std::as_const(*this).of(flow));
}

std::vector<flow_step> default_flow(flow_name flow) {
  std::vector<flow_step> steps;
  for (const default_step& d : default_steps) {
    if (d.flow != flow) continue;
    flow_step s;
    s.step = d.step;
    s.timeout_ms = d.timeout_ms;
    s.compensate = d.compensate;
    s.group = d.group;
    s.key_path = "payments.flows." + std::string(to_string(flow)) + "[" + std::to_string(steps.size()) + "]";
    steps.push_back(std::move(s));
  }
  return steps;
}

config_error step_error(const flow_step& s, std::string_view field, const std::string& message) {
  const int line = field == "compensate" && s.compensate_line != 0 ? s.compensate_line : s.line;
  return config_error(s.source, line, s.key_path + "." + std::string(field), message);
}

std::string_view to_string(payment_type value) { return name_of(value, payment_type_names); }
std::string_view to_string(flow_name value) { return name_of(value, flow_names); }
std::string_view to_string(fee_rounding value) { return name_of(value, fee_rounding_names); }
std::string_view to_string(partial_payment_policy value) {
  return name_of(value, partial_payment_names);
}
std::string_view to_string(duplicate_payment_policy value) {
  return name_of(value, duplicate_payment_names);
}
std::string_view to_string(late_success_policy value) { return name_of(value, late_success_names); }

} // namespace kassa::config
