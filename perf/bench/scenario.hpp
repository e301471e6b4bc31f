#pragma once
// A kassa-bench scenario: what load to send, how hard and for how long. Read from YAML
// (perf/scenarios/*.yaml, one scenario map or a list of them) and from `--set key=value`
// overrides; every knob is described in docs/performance.md. Invalid input throws
// config::config_error naming the file, line and key.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace kassa::bench {

enum class scenario_kind { transfers, hot, lookups, payments };
enum class loop_kind { closed, open };

// Hard bounds every run stays inside, whatever the file says.
constexpr uint64_t duration_s_max = 3600;
constexpr uint64_t requests_max_max = 100'000'000;
constexpr uint32_t connections_max = 1024;
constexpr uint32_t depth_max = 4096;
constexpr uint32_t events_max = 65535;
constexpr uint64_t seed_max = (uint64_t{1} << 20) - 1; // the id scheme gives the seed 20 bits
constexpr uint64_t accounts_max = 10'000'000;

struct scenario {
  std::string name;
  scenario_kind kind = scenario_kind::transfers;
  uint32_t connections = 4;
  uint32_t events = 2000;     // per request
  uint32_t depth = 4;         // requests in flight per connection
  loop_kind loop = loop_kind::closed;
  uint64_t rate_per_s = 0;    // open loop: requests/s over all connections
  uint64_t duration_s = 10;
  uint64_t warmup_s = 0;      // replies in the first seconds are not in the summary
  uint64_t requests_max = 10'000'000;
  uint64_t accounts = 100'000;
  uint64_t seed = 1;
  uint32_t hot_percent = 0;   // share of credits to hot_account (hot: 90 unless set)
  uint64_t hot_account = 1;
  uint64_t amount_min = 1;
  uint64_t amount_max = 1;
  bool setup = true;          // create and fund the accounts first
  uint64_t funding = 1'000'000'000'000ull;
  uint32_t ledger = 1;        // payments: 840 unless set
  // lookups: the share of requests that write (create_transfers); of the others, the share
  // that are lookup_accounts (the rest lookup_transfers).
  uint32_t writes_percent = 5;
  uint32_t lookup_accounts_percent = 50;
  // payments: the mix of commands, in percent (sums to 100).
  uint32_t topup_percent = 40;
  uint32_t withdrawal_percent = 20;
  uint32_t transfer_percent = 20;
  uint32_t refund_percent = 20;
  // payments: of the pay items, the share paid from the payer's balance (the rest through a
  // provider).
  uint32_t pay_from_balance_percent = 0;
  // payments: channels that top-ups, withdrawals and pays name in turn; none: kassad's
  // routing rules choose.
  std::vector<std::string> providers;
  uint64_t request_timeout_ms = 60'000;
};

std::string_view name(scenario_kind k);

// Reads every scenario of a YAML document (`source` names it in errors), applies the
// overrides ("key=value", in order) to each, and checks the result. With names in `only`,
// returns just those scenarios (the others are checked without the overrides).
std::vector<scenario> load_scenarios(const std::string& yaml, const std::string& source,
                                     const std::vector<std::string>& overrides,
                                     const std::vector<std::string>& only = {});

// Every knob after overrides, for the results' `run` line.
nlohmann::ordered_json settings_json(const scenario& s);

} // namespace kassa::bench
