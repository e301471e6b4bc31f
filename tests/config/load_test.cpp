#include <catch2/catch.hpp>

#include "config/config.hpp"

using namespace kassa::config;

namespace {
const std::string default_file = KASSA_SOURCE_DIR "/config/kassa.yaml";
const std::string minimal = "store:\n  data_dir: /tmp/kassa\n  durability: none\n";
} // namespace

TEST_CASE("the documented default file loads and agrees with the defaults in code", "[config]") {
  const config c = load_file(default_file);
  const config defaults;
  CHECK(c.source == default_file);

  CHECK(c.server.address == defaults.server.address);
  CHECK(c.server.port == defaults.server.port);
  CHECK(c.server.connections_max == defaults.server.connections_max);
  CHECK(c.server.frame_bytes_max == defaults.server.frame_bytes_max);
  CHECK(c.server.requests_inflight_max == defaults.server.requests_inflight_max);

  CHECK(c.store.data_dir == "./data");
  CHECK(c.store.durability == durability::fsync);
  CHECK(c.store.map_size_mib == defaults.store.map_size_mib);
  CHECK(c.store.shards == defaults.store.shards);
  CHECK(c.store.transfers_resident_max == defaults.store.transfers_resident_max);

  CHECK(c.batching.batch_events_max == defaults.batching.batch_events_max);
  CHECK(c.batching.commit_delay_us_max == defaults.batching.commit_delay_us_max);
  CHECK(c.batching.commit_events_max == defaults.batching.commit_events_max);
  CHECK(c.batching.queue_events_max == defaults.batching.queue_events_max);

  CHECK(c.hot_accounts.static_accounts.empty());
  CHECK(c.hot_accounts.adaptive.enabled == defaults.hot_accounts.adaptive.enabled);
  CHECK(c.hot_accounts.adaptive.window_ms == defaults.hot_accounts.adaptive.window_ms);
  CHECK(c.hot_accounts.adaptive.credits_min == defaults.hot_accounts.adaptive.credits_min);
  CHECK(c.hot_accounts.adaptive.sub_accounts == defaults.hot_accounts.adaptive.sub_accounts);
  CHECK(c.hot_accounts.sweep_interval_ms == defaults.hot_accounts.sweep_interval_ms);

  CHECK(c.log.level == defaults.log.level);

  CHECK(c.metrics.enabled == defaults.metrics.enabled);
  CHECK(c.metrics.address == defaults.metrics.address);
  CHECK(c.metrics.port == defaults.metrics.port);
  CHECK(c.metrics.connections_max == defaults.metrics.connections_max);
  CHECK(c.metrics.request_bytes_max == defaults.metrics.request_bytes_max);
  CHECK(c.metrics.read_timeout_ms == defaults.metrics.read_timeout_ms);

  const payments_config& p = c.payments;
  const payments_config& pd = defaults.payments;
  CHECK_FALSE(p.enabled);
  CHECK(p.orders_inflight_max == pd.orders_inflight_max);
  CHECK(p.flow_wait_ms == pd.flow_wait_ms);
  CHECK(p.ledgers.empty());
  CHECK(p.providers.empty());
  CHECK(p.fees.empty());
  CHECK(p.limits.empty());
  CHECK(p.exceptions.partial_payment == pd.exceptions.partial_payment);
  CHECK(p.exceptions.partial_hold_ms == pd.exceptions.partial_hold_ms);
  CHECK(p.exceptions.duplicate_payment == pd.exceptions.duplicate_payment);
  CHECK(p.exceptions.late_success == pd.exceptions.late_success);
  CHECK(p.accounting.enabled == pd.accounting.enabled);
  CHECK(p.accounting.interval_ms == pd.accounting.interval_ms);
  CHECK(p.accounting.batch_events_max == pd.accounting.batch_events_max);
  CHECK(p.reconciliation.enabled == pd.reconciliation.enabled);
  CHECK(p.reconciliation.interval_ms == pd.reconciliation.interval_ms);
  CHECK(p.reconciliation.grace_ms == pd.reconciliation.grace_ms);
  // The file spells the default flows out: they must be the table in config.cpp.
  for (flow_name f : {flow_name::topup, flow_name::withdrawal, flow_name::transfer, flow_name::pay,
                      flow_name::refund}) {
    const auto& written = p.flows.of(f);
    const auto& table = pd.flows.of(f);
    INFO(to_string(f));
    REQUIRE(written.size() == table.size());
    for (size_t i = 0; i < written.size(); ++i) {
      CHECK(written[i].step == table[i].step);
      CHECK(written[i].timeout_ms == table[i].timeout_ms);
      CHECK(written[i].compensate == table[i].compensate);
      CHECK(written[i].group == table[i].group);
      CHECK(written[i].key_path == table[i].key_path);
      CHECK(written[i].line > 0);
    }
  }
}

TEST_CASE("a file with only the required keys keeps every other default", "[config]") {
  const config c = load_string(minimal);
  CHECK(c.source == "<string>");
  CHECK(c.store.data_dir == "/tmp/kassa");
  CHECK(c.store.durability == durability::none);
  CHECK(c.server.port == 3100);
  CHECK(c.server.frame_bytes_max == 1u << 20);
  CHECK(c.batching.batch_events_max == 8190);
  CHECK(c.batching.queue_events_max == 1u << 20);
  CHECK(c.store.shards == 1);
  CHECK(c.hot_accounts.static_accounts.empty());
  CHECK_FALSE(c.hot_accounts.adaptive.enabled);
  CHECK(c.hot_accounts.adaptive.window_ms == 1000);
  CHECK(c.hot_accounts.adaptive.credits_min == 10000);
  CHECK(c.hot_accounts.adaptive.sub_accounts == 8);
  CHECK(c.hot_accounts.sweep_interval_ms == 1000);
  CHECK(c.log.level == log_level::info);
}

TEST_CASE("every key is read into its field", "[config]") {
  const config c = load_string(R"(
server:
  address: 0.0.0.0
  port: 0
  connections_max: 65536
  frame_bytes_max: 67108864
  requests_inflight_max: 4096
store:
  data_dir: "/data/kassa dir"
  durability: fsync
  map_size_mib: 16777216
  shards: 256
  transfers_resident_max: 4294967296
batching:
  batch_events_max: 65535
  commit_delay_us_max: 0
  commit_events_max: 1048576
  queue_events_max: 67108864
hot_accounts:
  static:
    - id: 1000
      sub_accounts: 256
    - id: "0x3E9"
    - {id: 170141183460469231731687303715884105728, sub_accounts: 2}
    - id: 0xFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFF
  adaptive:
    enabled: true
    window_ms: 600000
    credits_min: 1000000000
    sub_accounts: 2
  sweep_interval_ms: 3600000
log:
  level: debug
)", "inline.yaml");
  CHECK(c.source == "inline.yaml");
  CHECK(c.server.address == "0.0.0.0");
  CHECK(c.server.port == 0);
  CHECK(c.server.connections_max == 65536);
  CHECK(c.server.frame_bytes_max == 64u << 20);
  CHECK(c.server.requests_inflight_max == 4096);
  CHECK(c.store.data_dir == "/data/kassa dir");
  CHECK(c.store.map_size_mib == uint64_t(1) << 24);
  CHECK(c.store.shards == 256);
  CHECK(c.store.transfers_resident_max == uint64_t(1) << 32);
  CHECK(c.batching.batch_events_max == 65535);
  CHECK(c.batching.commit_delay_us_max == 0);
  CHECK(c.batching.commit_events_max == 1u << 20);
  CHECK(c.batching.queue_events_max == 1u << 26);
  REQUIRE(c.hot_accounts.static_accounts.size() == 4);
  CHECK(c.hot_accounts.static_accounts[0].id == 1000);
  CHECK(c.hot_accounts.static_accounts[0].sub_accounts == 256);
  CHECK(c.hot_accounts.static_accounts[1].id == 1001);
  CHECK(c.hot_accounts.static_accounts[1].sub_accounts == 8);
  CHECK(c.hot_accounts.static_accounts[2].id == kassa::u128{1} << 127);
  CHECK(c.hot_accounts.static_accounts[2].sub_accounts == 2);
  // The largest id below the corner kassa reserves for itself.
  CHECK(c.hot_accounts.static_accounts[3].id == kassa::make_u128(0xFFFF'FFFF'FFFF'FEFFull, ~0ull));
  CHECK(c.hot_accounts.adaptive.enabled);
  CHECK(c.hot_accounts.adaptive.window_ms == 600000);
  CHECK(c.hot_accounts.adaptive.credits_min == 1000000000);
  CHECK(c.hot_accounts.adaptive.sub_accounts == 2);
  CHECK(c.hot_accounts.sweep_interval_ms == 3600000);
  CHECK(c.log.level == log_level::debug);
}

TEST_CASE("a section left empty keeps its defaults", "[config]") {
  const config c = load_string("server:\nbatching:\n" + minimal + "log:\n");
  CHECK(c.server.port == 3100);
  CHECK(c.batching.commit_events_max == 65536);
}

TEST_CASE("enum values print as the words the file uses", "[config]") {
  CHECK(to_string(durability::fsync) == "fsync");
  CHECK(to_string(durability::none) == "none");
  CHECK(to_string(log_level::debug) == "debug");
  CHECK(to_string(log_level::info) == "info");
  CHECK(to_string(log_level::warn) == "warn");
  CHECK(to_string(log_level::error) == "error");
  for (auto level : {"debug", "info", "warn", "error"}) {
    const config c = load_string(minimal + "log:\n  level: " + level + "\n");
    CHECK(to_string(c.log.level) == level);
  }
  CHECK(to_string(payment_type::withdrawal) == "withdrawal");
  CHECK(to_string(flow_name::refund) == "refund");
  CHECK(to_string(fee_rounding::half_even) == "half_even");
  CHECK(to_string(partial_payment_policy::hold) == "hold");
  CHECK(to_string(duplicate_payment_policy::keep) == "keep");
  CHECK(to_string(late_success_policy::accept) == "accept");
  STATIC_REQUIRE(exit_config_error == 2);
}

TEST_CASE("hot accounts may be written as an empty list, an empty section or left out", "[config]") {
  for (const std::string& yaml :
       {minimal, minimal + "hot_accounts:\n", minimal + "hot_accounts:\n  static: []\n",
        minimal + "hot_accounts:\n  static:\n  adaptive:\n"}) {
    INFO(yaml);
    const config c = load_string(yaml);
    CHECK(c.hot_accounts.static_accounts.empty());
    CHECK_FALSE(c.hot_accounts.adaptive.enabled);
    CHECK(c.hot_accounts.sweep_interval_ms == 1000);
  }
  const config never = load_string(minimal + "hot_accounts:\n  sweep_interval_ms: 0\n"
                                              "  adaptive: {enabled: false}\n");
  CHECK(never.hot_accounts.sweep_interval_ms == 0);
}

TEST_CASE("the directory's queue may be as small as one request", "[config]") {
  const config c = load_string(minimal + "batching:\n  batch_events_max: 100\n"
                                         "  queue_events_max: 100\n");
  CHECK(c.batching.queue_events_max == 100);
}

TEST_CASE("the payments example config/kassa-payments.yaml loads with the payment core on", "[config]") {
  const kassa::config::config c = kassa::config::load_file(KASSA_SOURCE_DIR "/config/kassa-payments.yaml");
  CHECK(c.payments.enabled);
  REQUIRE(c.payments.providers.size() == 2);
  CHECK(c.payments.providers[0].port == 3200);
  CHECK(c.payments.providers[1].credentials);
  CHECK(c.payments.flows.topup.size() == kassa::config::default_flow(kassa::config::flow_name::topup).size());
}
