#include "config/config.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <tuple>
#include <utility>
#include <unistd.h>

#include "config/reader.hpp"
#include "primitives/reserved_ids.hpp"

namespace kassa::config {
namespace {

using namespace detail;

// A configuration file is a page of YAML; anything this large is the wrong file.
constexpr size_t file_bytes_max = 1u << 20;
// A frame is a header of at most this many bytes followed by fixed-size event records. These
// mirror the wire format (docs/protocol.md) without depending on it.
constexpr uint64_t frame_header_bytes_max = 256;
constexpr uint64_t event_bytes = 128;

const names<durability> durability_names = {
    {"fsync", durability::fsync},
    {"none", durability::none},
};

const names<log_level> log_level_names = {
    {"debug", log_level::debug},
    {"info", log_level::info},
    {"warn", log_level::warn},
    {"error", log_level::error},
};

// A rule between two keys is blamed on the one written later in the file; a key left at its
// default counts as written first.
bool later(const place& a, const place& b) {
  return std::tie(a.line, a.column) > std::tie(b.line, b.column);
}

// One function per section; a new section is one more of these and one line in top_level().
parse_fn server_section(server_config& c) {
  return section({
      {"address", optional, text(c.address)},
      {"port", optional, integer(c.port, 0, 65535)},
      {"connections_max", optional, integer(c.connections_max, 1, 65536)},
      {"frame_bytes_max", optional, integer(c.frame_bytes_max, 256, 64u << 20)},
      {"requests_inflight_max", optional, integer(c.requests_inflight_max, 1, 4096)},
  });
}

parse_fn store_section(store_config& c) {
  return section({
      {"data_dir", required, text(c.data_dir)},
      {"durability", required, one_of(c.durability, durability_names)},
      {"map_size_mib", optional, integer(c.map_size_mib, 1, uint64_t(1) << 24)},
      {"shards", optional, integer(c.shards, 1, 256)},
      {"transfers_resident_max", optional,
       integer(c.transfers_resident_max, 1000, uint64_t(1) << 32)},
  });
}

parse_fn batching_section(batching_config& c) {
  return section({
      {"batch_events_max", optional, integer(c.batch_events_max, 1, 65535)},
      {"commit_delay_us_max", optional, integer(c.commit_delay_us_max, 0, 1000000)},
      {"commit_events_max", optional, integer(c.commit_events_max, 1, 1u << 20)},
      {"queue_events_max", optional, integer(c.queue_events_max, 1, 1u << 26)},
  });
}

// An account id: decimal or 0x-hex, plain or quoted (a 128-bit id does not fit YAML's
// integers everywhere). Ids kassa reserves are refused here, so kassad never starts with a
// rule it could not apply.
parse_fn account_id(u128& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    const std::string text = read_scalar(r, value, at, "an id (decimal or 0x-hex)");
    const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const bool digits =
        !text.empty() && std::all_of(text.begin() + (hex ? 2 : 0), text.end(), [&](char ch) {
          return hex ? std::isxdigit(static_cast<unsigned char>(ch)) != 0 : ch >= '0' && ch <= '9';
        });
    if (!digits) r.fail(at, "expected an id (decimal or 0x-hex), got '" + text + "'");
    if (!hex && text.size() > 1 && text[0] == '0') {
      r.fail(at, "expected an id without leading zeros (YAML 1.1 reads them as octal), got '" +
                     text + "'");
    }
    u128 id = 0;
    if (!parse_u128(text, id)) r.fail(at, "does not fit in 128 bits, got '" + text + "'");
    if (id == 0 || id == u128_max) {
      r.fail(at, "must not be " + std::string(id == 0 ? "0" : "2^128 - 1") +
                     "; ids 0 and 2^128 - 1 are reserved");
    }
    if (id_reserved(id)) {
      r.fail(at, "'" + text + "' lies in the ids kassa reserves for its own accounts (the high "
                              "64 bits 0xffffffffffffff00 and above); choose another id");
    }
    out = id;
  };
}

parse_fn hot_static_list(std::vector<hot_account_static>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    std::vector<std::pair<u128, place>> seen;
    read_list(r, value, at, "a list of {id, sub_accounts} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                hot_account_static rule;
                read_map(r, item, here,
                         {
                             {"id", required, account_id(rule.id)},
                             {"sub_accounts", optional, integer(rule.sub_accounts, 2, 256)},
                         });
                const place id_at = r.find(here.path + ".id");
                for (const auto& [id, first] : seen) {
                  if (id == rule.id) {
                    r.fail(id_at, "duplicate id (first at " + first.path + ", line " +
                                      std::to_string(first.line) + ")");
                  }
                }
                seen.emplace_back(rule.id, id_at);
                out.push_back(rule);
              });
  };
}

parse_fn hot_adaptive_section(hot_accounts_adaptive& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"window_ms", optional, integer(c.window_ms, 1, 600000)},
      {"credits_min", optional, integer(c.credits_min, 1, 1000000000)},
      {"sub_accounts", optional, integer(c.sub_accounts, 2, 256)},
  });
}

parse_fn hot_accounts_section(hot_accounts_config& c) {
  return section({
      {"static", optional, hot_static_list(c.static_accounts)},
      {"adaptive", optional, hot_adaptive_section(c.adaptive)},
      {"sweep_interval_ms", optional, integer(c.sweep_interval_ms, 0, 3600000)},
  });
}

// An IPv4 or IPv6 address in numeric form (a host name would need a resolver at boot).
parse_fn ip_address(std::string& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = read_scalar(r, value, at, "an IP address");
    unsigned char bytes[sizeof(in6_addr)];
    if (inet_pton(AF_INET, out.c_str(), bytes) != 1 && inet_pton(AF_INET6, out.c_str(), bytes) != 1) {
      r.fail(at, "'" + out + "' is not an IPv4 or IPv6 address");
    }
  };
}

parse_fn metrics_section(metrics_config& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"address", optional, ip_address(c.address)},
      {"port", optional, integer(c.port, 0, 65535)},
      {"connections_max", optional, integer(c.connections_max, 1, 1024)},
      {"request_bytes_max", optional, integer(c.request_bytes_max, 256, 65536)},
      {"read_timeout_ms", optional, integer(c.read_timeout_ms, 1, 60000)},
  });
}

parse_fn log_section(log_config& c) {
  return section({
      {"level", optional, one_of(c.level, log_level_names)},
  });
}

// --- payments ----------------------------------------------------------------------------

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

// The place of a key that must be there (read_map checked it), for rules checked afterwards.
place must_find(const reader& r, const std::string& path) {
  place at = r.find(path);
  if (at.line == 0) throw std::logic_error("config: no place for " + path);
  return at;
}

std::string first_at(const place& first) {
  return "(first at " + first.path + ", line " + std::to_string(first.line) + ")";
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

// --- access --------------------------------------------------------------------------------

const std::vector<std::pair<std::string_view, uint16_t>> access_operations = {
    {"create_accounts", 2},       {"create_transfers", 3},     {"lookup_accounts", 4},
    {"lookup_transfers", 5},      {"get_account_transfers", 6}, {"get_account_balances", 7},
    {"submit_payments", 8},       {"lookup_orders", 9},          {"get_cases", 11},
    {"resolve_case", 12},         {"lookup_order_items", 21},
};

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// A key is 32 bytes written as 64 hex digits; an all-zero key is a placeholder, not a secret.
// Returns "" or what is wrong. The key itself never appears in a message.
std::string parse_key(const std::string& text, uint8_t (&out)[access_key_bytes]) {
  const std::string expected = "expected 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`";
  if (text.size() != 2 * access_key_bytes) {
    return expected + ", got " + std::to_string(text.size()) + " characters";
  }
  uint8_t any = 0;
  for (size_t i = 0; i < access_key_bytes; ++i) {
    const int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return expected + ", got a character that is not a hex digit";
    out[i] = uint8_t(hi << 4 | lo);
    any |= out[i];
  }
  if (any == 0) return "is all zero; generate a random key, e.g. `openssl rand -hex 32`";
  return "";
}

parse_fn access_key(access_client& c) {
  return [&c](reader& r, const YAML::Node& value, const place& at) {
    const std::string problem = parse_key(read_scalar(r, value, at, "a key (64 hex digits)"), c.key);
    if (!problem.empty()) r.fail(at, problem);
  };
}

// The key read from a file that only its owner may read (the file holds 64 hex digits and
// optional trailing white space), so that the YAML itself holds no secret.
parse_fn access_key_file(access_client& c) {
  return [&c](reader& r, const YAML::Node& value, const place& at) {
    c.key_file = read_scalar(r, value, at, "a file path");
    int fd = ::open(c.key_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) r.fail(at, "cannot read '" + c.key_file + "': " + std::strerror(errno));
    struct stat st {};
    const bool stat_ok = ::fstat(fd, &st) == 0;
    char buffer[256];
    ssize_t n = stat_ok && S_ISREG(st.st_mode) ? ::read(fd, buffer, sizeof buffer) : -1;
    ::close(fd);
    if (!stat_ok || !S_ISREG(st.st_mode)) r.fail(at, "'" + c.key_file + "' is not a regular file");
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%03o", unsigned(st.st_mode & 0777));
      r.fail(at, "'" + c.key_file + "' may be read by others (mode " + mode +
                     "); make it readable by its owner only: chmod 600 " + c.key_file);
    }
    if (n < 0) r.fail(at, "cannot read '" + c.key_file + "': " + std::strerror(errno));
    std::string text(buffer, size_t(n));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    const std::string problem = parse_key(text, c.key);
    if (!problem.empty()) r.fail(at, "'" + c.key_file + "': " + problem);
  };
}

parse_fn access_operation_list(uint32_t& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = 0;
    read_list(r, value, at, "a list of operation names",
              [&](reader& r, const YAML::Node& item, const place& here) {
                const std::string name = read_scalar(r, item, here, "an operation name");
                r.remember(here);
                const auto it = std::find_if(access_operations.begin(), access_operations.end(),
                                             [&](const auto& e) { return e.first == name; });
                if (it == access_operations.end()) {
                  std::vector<std::string_view> words;
                  for (const auto& e : access_operations) words.push_back(e.first);
                  r.fail(here, "'" + name + "' is not one of: " + list_names(words) +
                                   " (hello and authenticate are always allowed)");
                }
                if ((out & (1u << it->second)) != 0) r.fail(here, "duplicate operation " + name);
                out |= 1u << it->second;
              });
    if (out == 0) {
      r.fail(at, "must list at least one operation; leave operations out to allow every operation");
    }
  };
}

const names<uint32_t> access_store_names = {
    {"real", access_store_real},
    {"shadow", access_store_shadow},
};

parse_fn access_store_list(uint32_t& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = 0;
    read_list(r, value, at, "a list of stores (real, shadow)",
              [&](reader& r, const YAML::Node& item, const place& here) {
                uint32_t store = 0;
                one_of(store, access_store_names)(r, item, here);
                if ((out & store) != 0) r.fail(here, "duplicate store " + read_scalar(r, item, here, "a store"));
                out |= store;
              });
    if (out == 0) r.fail(at, "must list at least one store; leave stores out for the real store only");
  };
}

parse_fn access_client_list(std::vector<access_client>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_list(r, value, at, "a list of {id, key or key_file, ledgers, operations} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                access_client c;
                read_map(r, item, here,
                         {
                             {"id", required, integer(c.id, 1, UINT64_MAX)},
                             {"key", optional, access_key(c)},
                             {"key_file", optional, access_key_file(c)},
                             {"ledgers", optional, client_ledgers(c.ledgers)},
                             {"operations", optional, access_operation_list(c.operations)},
                             {"stores", optional, access_store_list(c.stores)},
                         });
                const place id_at = must_find(r, here.path + ".id");
                for (size_t i = 0; i < out.size(); ++i) {
                  if (out[i].id == c.id) {
                    r.fail(id_at, "duplicate client id " +
                                      first_at(must_find(r, at.path + "[" + std::to_string(i) + "].id")));
                  }
                }
                const place key_at = r.find(here.path + ".key");
                const place file_at = r.find(here.path + ".key_file");
                if (key_at.line == 0 && file_at.line == 0) {
                  r.fail(here, "needs key (64 hex digits) or key_file (a file holding them)");
                }
                if (key_at.line != 0 && file_at.line != 0) {
                  r.fail(later(key_at, file_at) ? key_at : file_at,
                         "key and key_file exclude each other; keep one");
                }
                out.push_back(c);
              });
  };
}

parse_fn access_section(access_config& c) {
  return section({
      {"required", optional, boolean(c.required)},
      {"authentication_failures_max", optional, integer(c.authentication_failures_max, 1, 100)},
      {"clients", optional, access_client_list(c.clients)},
  });
}

void check_access(const reader& r, const access_config& c) {
  if (c.required && c.clients.empty()) {
    r.fail(must_find(r, "access.required"),
           "is true but access.clients is empty; no client could make a request");
  }
}

// --- shadow --------------------------------------------------------------------------------

parse_fn shadow_section(shadow_config& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"map_size_mib", optional, integer(c.map_size_mib, 1, uint64_t(1) << 24)},
      {"providers", optional, provider_list(c.providers)},
  });
}

// Shadow providers serve ledgers of the payment core, and none may be a real provider: shadow
// payments must never reach one.
void check_shadow(const reader& r, shadow_config& c, const config& all) {
  if (c.map_size_mib == 0) c.map_size_mib = all.store.map_size_mib;
  for (size_t i = 0; i < c.providers.size(); ++i) {
    const provider_config& p = c.providers[i];
    const std::string path = "shadow.providers[" + std::to_string(i) + "]";
    for (size_t j = 0; j < p.ledgers.size(); ++j) {
      const bool served = std::any_of(all.payments.ledgers.begin(), all.payments.ledgers.end(),
                                      [&](const payment_ledger& l) { return l.ledger == p.ledgers[j]; });
      if (!served) {
        r.fail(must_find(r, path + ".ledgers[" + std::to_string(j) + "]"),
               "ledger " + std::to_string(p.ledgers[j]) + " is not listed under payments.ledgers");
      }
    }
    for (size_t k = 0; k < all.payments.providers.size(); ++k) {
      const provider_config& real = all.payments.providers[k];
      if (real.host == p.host && real.port == p.port && real.path_prefix == p.path_prefix) {
        r.fail(must_find(r, path + ".url"),
               "is the url of payments.providers[" + std::to_string(k) + "] (" + real.name +
                   "); shadow payments must never reach a real provider: point it at a "
                   "kassa-channel-sim");
      }
    }
  }
}

parse_fn top_level(config& c) {
  return section({
      {"server", optional, server_section(c.server)},
      {"store", required, store_section(c.store)},
      {"batching", optional, batching_section(c.batching)},
      {"hot_accounts", optional, hot_accounts_section(c.hot_accounts)},
      {"log", optional, log_section(c.log)},
      {"metrics", optional, metrics_section(c.metrics)},
      {"payments", optional, payments_section(c.payments)},
      {"access", optional, access_section(c.access)},
      {"shadow", optional, shadow_section(c.shadow)},
  });
}

void check_across_sections(const reader& r, const config& c) {
  const place frame = r.find("server.frame_bytes_max");
  const place batch = r.find("batching.batch_events_max");
  const place commit = r.find("batching.commit_events_max");
  const place queue = r.find("batching.queue_events_max");

  const uint64_t frame_bytes_min =
      event_bytes * c.batching.batch_events_max + frame_header_bytes_max;
  if (c.server.frame_bytes_max < frame_bytes_min) {
    if (later(frame, batch)) {
      r.fail(frame, "must be at least 128 * batching.batch_events_max + 256 = " +
                        std::to_string(frame_bytes_min) + " so that a full batch fits in a frame");
    }
    const uint64_t batch_events_fit =
        (c.server.frame_bytes_max - frame_header_bytes_max) / event_bytes;
    r.fail(batch, "must be at most (server.frame_bytes_max - 256) / 128 = " +
                      std::to_string(batch_events_fit) + " so that a full batch fits in a frame");
  }
  if (c.batching.commit_events_max < c.batching.batch_events_max) {
    if (later(commit, batch)) {
      r.fail(commit, "must be at least batching.batch_events_max = " +
                         std::to_string(c.batching.batch_events_max));
    }
    r.fail(batch, "must be at most batching.commit_events_max = " +
                      std::to_string(c.batching.commit_events_max));
  }
  if (c.batching.queue_events_max < c.batching.batch_events_max) {
    if (later(queue, batch)) {
      r.fail(queue, "must be at least batching.batch_events_max = " +
                        std::to_string(c.batching.batch_events_max) +
                        " so that a full request can wait");
    }
    r.fail(batch, "must be at most batching.queue_events_max = " +
                      std::to_string(c.batching.queue_events_max));
  }
  const place metrics_port = r.find("metrics.port");
  const place server_port = r.find("server.port");
  if (c.metrics.enabled && c.metrics.port != 0 && c.metrics.port == c.server.port) {
    if (later(server_port, metrics_port)) {
      r.fail(server_port, "must differ from metrics.port = " + std::to_string(c.metrics.port));
    }
    r.fail(metrics_port, "must differ from server.port = " + std::to_string(c.server.port));
  }
}

int line_of(const YAML::Mark& mark) { return mark.line < 0 ? 0 : mark.line + 1; }

// The line where a second YAML document starts, or 0. A configuration is one document, and
// yaml-cpp 0.7 can allocate without bound while parsing some malformed later documents (found
// by fuzzing), so a second one is refused by its marker before any parsing. A marker is "---"
// or "..." at the start of a line; in a map-shaped file it cannot be part of a value.
int second_document_line(const std::string& yaml) {
  bool started = false; // a document's content or its "---" has been seen
  bool ended = false;   // ... and then its "..." end marker
  int line = 0;
  for (size_t begin = 0; begin < yaml.size();) {
    size_t end = std::min(yaml.find('\n', begin), yaml.size());
    const std::string_view text(yaml.data() + begin, end - begin);
    begin = end + 1;
    ++line;
    const std::string_view head = text.substr(0, 3);
    const bool marker = (head == "---" || head == "...") &&
                        (text.size() == 3 || std::isspace(static_cast<unsigned char>(text[3])));
    const size_t first = text.find_first_not_of(" \t\r");
    const bool blank = first == std::string_view::npos || text[first] == '#';
    if (marker && text[0] == '.') {
      ended = true;
    } else if (marker || !blank) {
      const bool directive = !marker && !started && text[0] == '%';
      if (ended || (marker && started)) return line;
      started = started || !directive;
    }
  }
  return 0;
}

} // namespace

config_error::config_error(std::string source_, int line_, std::string key_path_,
                           std::string message_)
    : std::runtime_error(source_ + ":" + std::to_string(line_) + ": " +
                         (key_path_.empty() ? "" : key_path_ + ": ") + message_),
      source(std::move(source_)), line(line_), key_path(std::move(key_path_)),
      message(std::move(message_)) {}

config load_string(const std::string& yaml, const std::string& source) {
  if (yaml.size() > file_bytes_max) {
    throw config_error(source, 0, "", "larger than " + std::to_string(file_bytes_max) +
                                          " bytes; is this the configuration file?");
  }
  config c;
  c.source = source;
  reader r(source);
  try {
    if (int line = second_document_line(yaml)) {
      throw config_error(source, line, "", "a second YAML document starts here; expected one");
    }
    const YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) {
      throw config_error(source, 0, "", "empty configuration; store.data_dir and "
                                        "store.durability are required");
    }
    top_level(c)(r, root, place{"", line_of(root.Mark()), 1});
  } catch (const YAML::ParserException& e) {
    throw config_error(source, line_of(e.mark), "", "YAML syntax: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw config_error(source, line_of(e.mark), "", e.what());
  }
  check_across_sections(r, c);
  check_payments(r, c.payments, source);
  check_access(r, c.access);
  check_shadow(r, c.shadow, c);
  return c;
}

config load_file(const std::string& path) {
  auto unreadable = [&](int error) {
    return config_error(path, 0, "", std::string("cannot read the file: ") + std::strerror(error));
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw unreadable(errno);
  std::string text;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw unreadable(error);
    }
    if (n == 0) break;
    text.append(buffer, size_t(n));
    if (text.size() > file_bytes_max) break; // load_string reports it
  }
  ::close(fd);
  return load_string(text, path);
}

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

std::string_view to_string(durability value) {
  for (const auto& [name, e] : durability_names) {
    if (e == value) return name;
  }
  return "?";
}

std::string_view to_string(log_level value) {
  for (const auto& [name, e] : log_level_names) {
    if (e == value) return name;
  }
  return "?";
}

namespace {
template <class E> std::string_view name_of(E value, const names<E>& table) {
  for (const auto& [name, e] : table) {
    if (e == value) return name;
  }
  return "?";
}
} // namespace

const std::vector<std::pair<std::string_view, uint16_t>>& access_operation_names() {
  return access_operations;
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
