#include "perf/bench/scenario.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "ledger/payments/records.hpp"

namespace kassa::bench {

using namespace config::detail;

namespace {

const names<scenario_kind> kind_names = {{"transfers", scenario_kind::transfers},
                                         {"hot", scenario_kind::hot},
                                         {"lookups", scenario_kind::lookups},
                                         {"payments", scenario_kind::payments}};
const names<loop_kind> loop_names = {{"closed", loop_kind::closed}, {"open", loop_kind::open}};

// What a scenario of this kind starts from before its keys are read.
scenario defaults(scenario_kind k) {
  scenario s;
  s.kind = k;
  switch (k) {
  case scenario_kind::transfers: break;
  case scenario_kind::hot: s.hot_percent = 90; break;
  case scenario_kind::lookups: s.events = 100; break;
  case scenario_kind::payments:
    s.events = 10;
    s.depth = 8;
    s.accounts = 1000;
    s.ledger = 840;
    s.amount_min = s.amount_max = 100;
    s.funding = 100'000'000;
    break;
  }
  return s;
}

// The keys a file or an override may set (name and kind only in a file).
std::vector<field> fields(scenario& s, bool in_file) {
  std::vector<field> f;
  if (in_file) {
    f.push_back({"name", required, text(s.name)});
    f.push_back({"kind", required, one_of(s.kind, kind_names)});
  }
  auto add = [&](std::string_view key, parse_fn parse) { f.push_back({key, optional, std::move(parse)}); };
  add("connections", integer(s.connections, 1, connections_max));
  add("events", integer(s.events, 1, events_max));
  add("depth", integer(s.depth, 1, depth_max));
  add("loop", one_of(s.loop, loop_names));
  add("rate_per_s", integer(s.rate_per_s, 0, 10'000'000));
  add("duration_s", integer(s.duration_s, 1, duration_s_max));
  add("warmup_s", integer(s.warmup_s, 0, duration_s_max));
  add("requests_max", integer(s.requests_max, 1, requests_max_max));
  add("accounts", integer(s.accounts, 2, accounts_max));
  add("seed", integer(s.seed, 0, seed_max));
  add("hot_percent", integer(s.hot_percent, 0, 100));
  add("hot_account", integer(s.hot_account, 1, accounts_max));
  add("amount_min", integer(s.amount_min, 1, UINT64_MAX));
  add("amount_max", integer(s.amount_max, 1, UINT64_MAX));
  add("setup", boolean(s.setup));
  add("funding", integer(s.funding, 0, UINT64_MAX));
  add("ledger", integer(s.ledger, 1, UINT32_MAX));
  add("writes_percent", integer(s.writes_percent, 0, 100));
  add("lookup_accounts_percent", integer(s.lookup_accounts_percent, 0, 100));
  add("topup_percent", integer(s.topup_percent, 0, 100));
  add("withdrawal_percent", integer(s.withdrawal_percent, 0, 100));
  add("transfer_percent", integer(s.transfer_percent, 0, 100));
  add("refund_percent", integer(s.refund_percent, 0, 100));
  add("pay_from_balance_percent", integer(s.pay_from_balance_percent, 0, 100));
  add("providers", [&s](reader& r, const YAML::Node& v, const place& at) {
    s.providers.clear();
    read_list(r, v, at, "a list of channel names", [&s](reader& r2, const YAML::Node& item, const place& here) {
      std::string p = read_scalar(r2, item, here, "a channel name");
      if (p.empty() || p.size() > ledger::payments::provider_name_bytes)
        r2.fail(here, "a channel name has 1 to 16 bytes");
      s.providers.push_back(std::move(p));
    });
  });
  add("request_timeout_ms", integer(s.request_timeout_ms, 1, 600'000));
  return f;
}

// Reads one scenario map, applies the overrides, checks the rules between keys.
// Scenarios not in `only` (when it is not empty) get no overrides: they will not run.
scenario read_scenario(const YAML::Node& map, const place& at, const std::string& source,
                       const std::vector<std::pair<std::string, std::string>>& all_overrides,
                       const std::vector<std::string>& only) {
  reader file(source);
  if (!map.IsMap()) file.fail(at, "expected a scenario (a map with name, kind and knobs)");
  scenario_kind k = scenario_kind::transfers;
  if (const YAML::Node kind = map["kind"]; kind) {
    place kat = child(at, "kind", kind.Mark());
    one_of(k, kind_names)(file, kind, kat);
  }
  scenario s = defaults(k);
  read_map(file, map, at, fields(s, true));
  const bool selected = only.empty() || std::find(only.begin(), only.end(), s.name) != only.end();
  const std::vector<std::pair<std::string, std::string>> none;
  const auto& overrides = selected ? all_overrides : none;

  reader set("--set");
  std::vector<std::string> set_keys;
  for (const auto& [key, value] : overrides) {
    YAML::Node m(YAML::NodeType::Map);
    try {
      m[key] = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      set.fail({key, 1, 1}, "cannot read '" + value + "': " + e.msg);
    }
    if (key == "name" || key == "kind") set.fail({key, 1, 1}, "the name and kind come from the file");
    read_map(set, m, {"", 1, 1}, fields(s, false));
    set_keys.push_back(key);
  }
  // Blames the key where it was last written: an override, else the file.
  auto fail = [&](const std::string& key, const std::string& message) {
    for (const auto& k2 : set_keys) {
      if (k2 == key) set.fail({key, 1, 1}, message);
    }
    place p = file.find(at.path.empty() ? key : at.path + "." + key);
    if (p.line == 0) p = {p.path, at.line, at.column};
    file.fail(p, message);
  };

  if (s.loop == loop_kind::open && s.rate_per_s == 0) fail("rate_per_s", "an open loop needs rate_per_s > 0");
  if (s.loop == loop_kind::closed && s.rate_per_s != 0) fail("rate_per_s", "rate_per_s is for loop: open");
  if (s.warmup_s >= s.duration_s) fail("warmup_s", "must be below duration_s");
  if (s.amount_min > s.amount_max) fail("amount_max", "must be at least amount_min");
  if (s.hot_account > s.accounts) fail("hot_account", "must be one of the accounts 1..accounts");
  // Transfer ids give each connection 56 bits of counter (docs/performance.md).
  const unsigned __int128 ids = (unsigned __int128)(s.requests_max + s.depth) * s.events;
  if (ids >= (unsigned __int128)1 << 40) fail("requests_max", "requests_max x events must stay below 2^40");
  if (s.kind == scenario_kind::payments) {
    const uint64_t sum = uint64_t(s.topup_percent) + s.withdrawal_percent + s.transfer_percent + s.refund_percent;
    if (sum != 100) fail("refund_percent", "topup, withdrawal, transfer and refund percents must sum to 100, got " + std::to_string(sum));
    if (s.events > 8190) fail("events", "a submit_payments request holds at most 8190 commands");
  }
  if (s.kind == scenario_kind::hot && s.hot_percent == 0) fail("hot_percent", "a hot scenario needs hot_percent > 0");
  return s;
}

} // namespace

std::string_view name(scenario_kind k) {
  for (const auto& [n, v] : kind_names) if (v == k) return n;
  return "unknown";
}

std::vector<scenario> load_scenarios(const std::string& yaml, const std::string& source,
                                     const std::vector<std::string>& overrides,
                                     const std::vector<std::string>& only) {
  reader r(source);
  std::vector<std::pair<std::string, std::string>> sets;
  for (const auto& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) reader("--set").fail({o, 1, 1}, "expected key=value");
    sets.emplace_back(o.substr(0, eq), o.substr(eq + 1));
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    r.fail({"", e.mark.line + 1, e.mark.column + 1}, e.msg);
  }
  std::vector<scenario> out;
  if (doc.IsSequence()) {
    read_list(r, doc, {"", 1, 1}, "a list of scenarios", [&](reader&, const YAML::Node& item, const place& at) {
      out.push_back(read_scenario(item, at, source, sets, only));
    });
  } else {
    out.push_back(read_scenario(doc, {"", 1, 1}, source, sets, only));
  }
  if (out.empty()) r.fail({"", 1, 1}, "no scenario in the file");
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (out[i].name == out[j].name) r.fail({"[" + std::to_string(i) + "].name", 1, 1}, "scenario '" + out[i].name + "' twice");
    }
  }
  if (!only.empty()) {
    out.erase(std::remove_if(out.begin(), out.end(),
                             [&](const scenario& s) { return std::find(only.begin(), only.end(), s.name) == only.end(); }),
              out.end());
  }
  return out;
}

nlohmann::ordered_json settings_json(const scenario& s) {
  nlohmann::ordered_json j;
  j["kind"] = std::string(name(s.kind));
  j["connections"] = s.connections;
  j["events"] = s.events;
  j["depth"] = s.depth;
  j["loop"] = s.loop == loop_kind::open ? "open" : "closed";
  j["rate_per_s"] = s.rate_per_s;
  j["duration_s"] = s.duration_s;
  j["warmup_s"] = s.warmup_s;
  j["requests_max"] = s.requests_max;
  j["accounts"] = s.accounts;
  j["seed"] = s.seed;
  j["hot_percent"] = s.hot_percent;
  j["hot_account"] = s.hot_account;
  j["amount_min"] = s.amount_min;
  j["amount_max"] = s.amount_max;
  j["setup"] = s.setup;
  j["funding"] = s.funding;
  j["ledger"] = s.ledger;
  j["request_timeout_ms"] = s.request_timeout_ms;
  if (s.kind == scenario_kind::lookups) {
    j["writes_percent"] = s.writes_percent;
    j["lookup_accounts_percent"] = s.lookup_accounts_percent;
  }
  if (s.kind == scenario_kind::payments) {
    j["topup_percent"] = s.topup_percent;
    j["withdrawal_percent"] = s.withdrawal_percent;
    j["transfer_percent"] = s.transfer_percent;
    j["refund_percent"] = s.refund_percent;
    j["pay_from_balance_percent"] = s.pay_from_balance_percent;
    j["providers"] = s.providers;
  }
  return j;
}

} // namespace kassa::bench
