// The payments section: every key read into its field, the defaults, and each range and rule
// refused at its key and line.
#include <catch2/catch.hpp>

#include <string>

#include "config/config.hpp"
#include "tests/config/error_cases.hpp"

using namespace kassa::config;
using kassa::u128;
using kassa::test::check_errors;
using kassa::test::error_of;

namespace {

const std::string store = "store:\n  data_dir: /tmp/kassa\n  durability: none\n"; // lines 1-3

// The example of docs/configuration.md#payments, with every key set away from its default.
const std::string full = store + R"(payments:
  enabled: true
  orders_inflight_max: 10000000
  flow_wait_ms: 0
  ledgers:
    - ledger: 840
      currency: USD
    - {ledger: 978, currency: EUR}
  providers:
    - name: alpha
      url: http://127.0.0.1:3200/p/alpha/
      ledgers: [840, 978]
      priority: 0
      amount_min: 100
      amount_max: "340282366920938463463374607431768211455"
      inflight_max: 100000
      connections_max: 1024
      timeout_ms: 600000
      retries_max: 0
      backoff_ms_min: 600000
      backoff_ms_max: 3600000
      breaker: {failures_min: 1000000, window_ms: 1, open_ms: 3600000}
      credentials: true
      credential_ttl_ms: 86400000
      events_poll_ms: 0
      status_query: {interval_ms: 3600000, queries_max: 1}
      statement_poll_ms: 0
    - name: beta_2-x
      url: http://pay.example.com:80
      ledgers: [978]
  fees:
    - type: topup
      ledger: 840
      fixed: 30
      rate_ppm: 1000000
      rounding: half_even
      min: 1
      max: 500
    - {type: pay, ledger: 840, rounding: down}
  limits:
    - type: withdrawal
      ledger: 978
      payment_max: 100000
      account_day_max: "1000000"
      account_day_count_max: 4294967295
  exceptions:
    partial_payment: hold
    partial_hold_ms: 86400000
    duplicate_payment: keep
    late_success: refund
  accounting:
    enabled: false
    interval_ms: 3600000
    batch_events_max: 1000000
  reconciliation:
    enabled: false
    interval_ms: 1
    grace_ms: 0
  flows:
    topup:
      - {step: check_limits, timeout_ms: 1}
      - step: charge_a
        group: 7
      - {step: fetch_token, group: 7, compensate: drop_token}
      - {step: book, timeout_ms: 600000, compensate: unbook}
    refund:
      - {step: refund_everything}
)";

} // namespace

TEST_CASE("every payments key is read into its field", "[config]") {
  const config c = load_string(full, "pay.yaml");
  const payments_config& p = c.payments;
  CHECK(p.enabled);
  CHECK(p.orders_inflight_max == 10000000);
  CHECK(p.flow_wait_ms == 0);
  REQUIRE(p.ledgers.size() == 2);
  CHECK(p.ledgers[0].ledger == 840);
  CHECK(p.ledgers[0].currency == "USD");
  CHECK(p.ledgers[1].ledger == 978);
  CHECK(p.ledgers[1].currency == "EUR");

  REQUIRE(p.providers.size() == 2);
  const provider_config& a = p.providers[0];
  CHECK(a.name == "alpha");
  CHECK(a.url == "http://127.0.0.1:3200/p/alpha/");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 3200);
  CHECK(a.path_prefix == "/p/alpha");
  CHECK(a.ledgers == std::vector<uint32_t>{840, 978});
  CHECK(a.priority == 0);
  CHECK(a.amount_min == 100);
  CHECK(a.amount_max == kassa::u128_max);
  CHECK(a.inflight_max == 100000);
  CHECK(a.connections_max == 1024);
  CHECK(a.timeout_ms == 600000);
  CHECK(a.retries_max == 0);
  CHECK(a.backoff_ms_min == 600000);
  CHECK(a.backoff_ms_max == 3600000);
  CHECK(a.breaker.failures_min == 1000000);
  CHECK(a.breaker.window_ms == 1);
  CHECK(a.breaker.open_ms == 3600000);
  CHECK(a.credentials);
  CHECK(a.credential_ttl_ms == 86400000);
  CHECK(a.events_poll_ms == 0);
  CHECK(a.status_query.interval_ms == 3600000);
  CHECK(a.status_query.queries_max == 1);
  CHECK(a.statement_poll_ms == 0);
  const provider_config& b = p.providers[1];
  CHECK(b.name == "beta_2-x");
  CHECK(b.host == "pay.example.com");
  CHECK(b.port == 80);
  CHECK(b.path_prefix.empty());
  CHECK(b.priority == 1);
  CHECK(b.amount_min == 1);
  CHECK(b.amount_max == 0);
  CHECK(b.breaker.failures_min == 5);
  CHECK_FALSE(b.credentials);

  REQUIRE(p.fees.size() == 2);
  CHECK(p.fees[0].type == payment_type::topup);
  CHECK(p.fees[0].ledger == 840);
  CHECK(p.fees[0].fixed == 30);
  CHECK(p.fees[0].rate_ppm == 1000000);
  CHECK(p.fees[0].rounding == fee_rounding::half_even);
  CHECK(p.fees[0].min == 1);
  CHECK(p.fees[0].max == 500);
  CHECK(p.fees[1].type == payment_type::pay);
  CHECK(p.fees[1].rounding == fee_rounding::down);
  CHECK(p.fees[1].fixed == 0);
  REQUIRE(p.limits.size() == 1);
  CHECK(p.limits[0].type == payment_type::withdrawal);
  CHECK(p.limits[0].ledger == 978);
  CHECK(p.limits[0].payment_max == 100000);
  CHECK(p.limits[0].account_day_max == 1000000);
  CHECK(p.limits[0].account_day_count_max == 4294967295u);

  CHECK(p.exceptions.partial_payment == partial_payment_policy::hold);
  CHECK(p.exceptions.partial_hold_ms == 86400000);
  CHECK(p.exceptions.duplicate_payment == duplicate_payment_policy::keep);
  CHECK(p.exceptions.late_success == late_success_policy::refund);
  CHECK_FALSE(p.accounting.enabled);
  CHECK(p.accounting.interval_ms == 3600000);
  CHECK(p.accounting.batch_events_max == 1000000);
  CHECK_FALSE(p.reconciliation.enabled);
  CHECK(p.reconciliation.interval_ms == 1);
  CHECK(p.reconciliation.grace_ms == 0);

  const auto& topup = p.flows.topup;
  REQUIRE(topup.size() == 4);
  CHECK(topup[0].step == "check_limits");
  CHECK(topup[0].timeout_ms == 1);
  CHECK(topup[0].group == 0);
  CHECK(topup[0].compensate.empty());
  CHECK(topup[0].line == 64);
  CHECK(topup[1].step == "charge_a");
  CHECK(topup[1].timeout_ms == 5000);
  CHECK(topup[1].group == 7);
  CHECK(topup[1].line == 65);
  CHECK(topup[2].compensate == "drop_token");
  CHECK(topup[2].compensate_line == 67);
  CHECK(topup[3].timeout_ms == 600000);
  CHECK(topup[3].key_path == "payments.flows.topup[3]");
  CHECK(topup[3].source == "pay.yaml");
  REQUIRE(p.flows.refund.size() == 1);
  CHECK(p.flows.refund[0].step == "refund_everything");
  // Flows the file leaves out keep their defaults.
  CHECK(p.flows.withdrawal.size() == default_flow(flow_name::withdrawal).size());
  CHECK(p.flows.pay.at(0).source == "pay.yaml");
  CHECK(&p.flows.of(flow_name::refund) == &p.flows.refund);
}

TEST_CASE("without a payments section the payment core is off with the documented defaults",
          "[config]") {
  for (const std::string& yaml : {store, store + "payments:\n", store + "payments:\n  flows:\n"}) {
    INFO(yaml);
    const config c = load_string(yaml);
    const payments_config& p = c.payments;
    CHECK_FALSE(p.enabled);
    CHECK(p.orders_inflight_max == 100000);
    CHECK(p.flow_wait_ms == 5000);
    CHECK(p.ledgers.empty());
    CHECK(p.providers.empty());
    CHECK(p.fees.empty());
    CHECK(p.limits.empty());
    CHECK(p.exceptions.partial_payment == partial_payment_policy::refund);
    CHECK(p.exceptions.partial_hold_ms == 60000);
    CHECK(p.exceptions.duplicate_payment == duplicate_payment_policy::refund);
    CHECK(p.exceptions.late_success == late_success_policy::accept);
    CHECK(p.accounting.enabled);
    CHECK(p.accounting.interval_ms == 200);
    CHECK(p.accounting.batch_events_max == 8190);
    CHECK(p.reconciliation.enabled);
    CHECK(p.reconciliation.interval_ms == 1000);
    CHECK(p.reconciliation.grace_ms == 5000);
  }
}

TEST_CASE("the default flows are the documented pipelines", "[config]") {
  auto names = [](flow_name f) {
    std::string out;
    for (const flow_step& s : default_flow(f)) {
      out += (out.empty() ? "" : " ") + s.step;
      if (s.group) out += "/" + std::to_string(s.group);
      if (!s.compensate.empty()) out += "(" + s.compensate + ")";
    }
    return out;
  };
  CHECK(names(flow_name::topup) ==
        "check_accounts check_limits route fetch_credentials provider_call(provider_refund) book_topup");
  CHECK(names(flow_name::withdrawal) == "check_accounts check_limits route hold_funds/1(release_hold) "
                                        "fetch_credentials/1 provider_call settle_hold");
  CHECK(names(flow_name::transfer) == "check_accounts check_limits book_transfer");
  CHECK(names(flow_name::pay) == "check_accounts check_limits route hold_funds/1(release_hold) "
                                 "fetch_credentials/1 provider_call(provider_refund) capture");
  CHECK(names(flow_name::refund) ==
        "route hold_funds/1(release_hold) fetch_credentials/1 provider_call book_refund");
  const flows_config flows;
  CHECK(flows.topup[4].timeout_ms == 15000);
  CHECK(flows.topup[4].key_path == "payments.flows.topup[4]");
  CHECK(flows.topup[4].line == 0);
}

TEST_CASE("a step unknown at boot is reported at its line by step_error", "[config]") {
  const config c = load_string(full, "pay.yaml");
  const config_error e = step_error(c.payments.flows.topup[2], "step", "unknown step \"fetch_token\"");
  CHECK(e.line == 67);
  CHECK(e.key_path == "payments.flows.topup[2].step");
  CHECK(std::string(e.what()) ==
        "pay.yaml:67: payments.flows.topup[2].step: unknown step \"fetch_token\"");
  const config_error undo = step_error(c.payments.flows.topup[2], "compensate", "unknown step \"drop_token\"");
  CHECK(undo.line == 67);
  CHECK(undo.key_path == "payments.flows.topup[2].compensate");
  // A default flow has no line: the error names the step by its path.
  const config_error d = step_error(c.payments.flows.pay[1], "step", "unknown step \"route_if_provider\"");
  CHECK(std::string(d.what()) ==
        "pay.yaml:0: payments.flows.pay[1].step: unknown step \"route_if_provider\"");
}

TEST_CASE("payments settings out of range are refused at their key", "[config]") {
  auto payments = [](const std::string& lines) { return store + "payments:\n" + lines; }; // line 5 on
  check_errors({
      {payments("  enabled: yes\n"), 5, "payments.enabled", "expected true or false, got 'yes'"},
      {payments("  orders_inflight_max: 0\n"), 5, "payments.orders_inflight_max",
       "must be between 1 and 10000000, got '0'"},
      {payments("  orders_inflight_max: 10000001\n"), 5, "payments.orders_inflight_max",
       "must be between 1 and 10000000, got '10000001'"},
      {payments("  flow_wait_ms: 600001\n"), 5, "payments.flow_wait_ms",
       "must be between 0 and 600000, got '600001'"},
      {payments("  flow_wait: 5\n"), 5, "payments.flow_wait", "unknown key, did you mean flow_wait_ms?"},
      {payments("  ledgers:\n    - ledger: 0\n      currency: USD\n"), 6, "payments.ledgers[0].ledger",
       "must be between 1 and 4294967295, got '0'"},
      {payments("  ledgers:\n    - ledger: 4294967296\n      currency: USD\n"), 6,
       "payments.ledgers[0].ledger", "must be between 1 and 4294967295, got '4294967296'"},
      {payments("  ledgers:\n    - ledger: 840\n      currency: usd\n"), 7,
       "payments.ledgers[0].currency", "must be 1 to 8 of A-Z, 0-9, got 'usd'"},
      {payments("  ledgers:\n    - ledger: 840\n      currency: ABCDEFGHI\n"), 7,
       "payments.ledgers[0].currency", "must be 1 to 8 of A-Z, 0-9, got 'ABCDEFGHI'"},
      {payments("  ledgers:\n    - ledger: 840\n"), 6, "payments.ledgers[0].currency",
       "missing required key"},
      {payments("  ledgers:\n    - {ledger: 840, currency: USD}\n    - {ledger: 840, currency: EUR}\n"),
       7, "payments.ledgers[1].ledger", "duplicate ledger (first at payments.ledgers[0].ledger, line 6)"},
      {payments("  ledgers: {ledger: 840}\n"), 5, "payments.ledgers",
       "expected a list of {ledger, currency} maps, got a map"},
      {payments("  exceptions:\n    partial_payment: ignore\n"), 6, "payments.exceptions.partial_payment",
       "'ignore' is not one of: accept, refund, hold"},
      {payments("  exceptions:\n    partial_hold_ms: 0\n"), 6, "payments.exceptions.partial_hold_ms",
       "must be between 1 and 86400000, got '0'"},
      {payments("  exceptions:\n    partial_hold_ms: 86400001\n"), 6,
       "payments.exceptions.partial_hold_ms", "must be between 1 and 86400000, got '86400001'"},
      {payments("  exceptions:\n    duplicate_payment: accept\n"), 6,
       "payments.exceptions.duplicate_payment", "'accept' is not one of: refund, keep"},
      {payments("  exceptions:\n    late_success: keep\n"), 6, "payments.exceptions.late_success",
       "'keep' is not one of: accept, refund"},
      {payments("  accounting:\n    enabled: 1\n"), 6, "payments.accounting.enabled",
       "expected true or false, got '1'"},
      {payments("  accounting:\n    interval_ms: 0\n"), 6, "payments.accounting.interval_ms",
       "must be between 1 and 3600000, got '0'"},
      {payments("  accounting:\n    batch_events_max: 1000001\n"), 6,
       "payments.accounting.batch_events_max", "must be between 1 and 1000000, got '1000001'"},
      {payments("  reconciliation:\n    interval_ms: 3600001\n"), 6,
       "payments.reconciliation.interval_ms", "must be between 1 and 3600000, got '3600001'"},
      {payments("  reconciliation:\n    grace_ms: 86400001\n"), 6, "payments.reconciliation.grace_ms",
       "must be between 0 and 86400000, got '86400001'"},
      {store + "payments: true\n", 4, "payments", "expected a map of keys, got 'true'"},
  });
}

TEST_CASE("a bad provider is refused at its key, by list index and line", "[config]") {
  // Lines: 4 payments, 5 ledgers, 6 providers, 7 name, 8 url, 9 ledgers, 10 the extra lines.
  auto provider = [](const std::string& extra, const std::string& name = "alpha",
                     const std::string& url = "http://127.0.0.1:3200/p/alpha",
                     const std::string& ledgers = "[840]") {
    return store + "payments:\n  ledgers: [{ledger: 840, currency: USD}]\n  providers:\n    - name: " +
           name + "\n      url: " + url + "\n      ledgers: " + ledgers + "\n" + extra;
  };
  const std::string url_expected = "expected http://HOST:PORT[/PATH], got '";
  check_errors({
      {provider("", "Alpha"), 7, "payments.providers[0].name", "must be 1 to 16 of a-z, 0-9, _, -, got 'Alpha'"},
      {provider("", "a23456789012345678"), 7, "payments.providers[0].name",
       "must be 1 to 16 of a-z, 0-9, _, -, got 'a23456789012345678'"},
      {provider("", "alpha", "https://x:1"), 8, "payments.providers[0].url",
       url_expected + "https://x:1' (only http is supported)"},
      {provider("", "alpha", "http://x/p"), 8, "payments.providers[0].url",
       url_expected + "http://x/p' (the port is required)"},
      {provider("", "alpha", "http://x:0"), 8, "payments.providers[0].url",
       url_expected + "http://x:0' (the port must be 1 .. 65535)"},
      {provider("", "alpha", "http://x:65536"), 8, "payments.providers[0].url",
       url_expected + "http://x:65536' (the port must be 1 .. 65535)"},
      {provider("", "alpha", "http://:80"), 8, "payments.providers[0].url",
       url_expected + "http://:80' (bad host)"},
      {provider("", "alpha", "http://x:80/a?b=1"), 8, "payments.providers[0].url",
       url_expected + "http://x:80/a?b=1' (the path may not hold spaces, '?' or '#')"},
      {provider("", "alpha", "http://x:80", "[]"), 9, "payments.providers[0].ledgers",
       "must list at least one ledger the provider serves"},
      {provider("", "alpha", "http://x:80", "[978]"), 9, "payments.providers[0].ledgers[0]",
       "ledger 978 is not listed under payments.ledgers"},
      {provider("", "alpha", "http://x:80", "[840, 840]"), 9, "payments.providers[0].ledgers[1]",
       "duplicate ledger (first at payments.providers[0].ledgers[0], line 9)"},
      {provider("      priority: 1001\n"), 10, "payments.providers[0].priority",
       "must be between 0 and 1000, got '1001'"},
      {provider("      amount_min: 0\n"), 10, "payments.providers[0].amount_min",
       "must be at least 1, got '0'"},
      {provider("      amount_min: 1.5\n"), 10, "payments.providers[0].amount_min",
       "expected an amount (decimal minor units), got '1.5'"},
      {provider("      amount_min: 0x10\n"), 10, "payments.providers[0].amount_min",
       "expected an amount (decimal minor units), got '0x10'"},
      {provider("      amount_max: 010\n"), 10, "payments.providers[0].amount_max",
       "expected an amount without leading zeros (YAML 1.1 reads them as octal), got '010'"},
      {provider("      amount_max: 340282366920938463463374607431768211456\n"), 10,
       "payments.providers[0].amount_max",
       "does not fit in 128 bits, got '340282366920938463463374607431768211456'"},
      {provider("      amount_min: 10\n      amount_max: 5\n"), 11, "payments.providers[0].amount_max",
       "must be 0 (no maximum) or at least amount_min = 10"},
      {provider("      amount_max: 5\n      amount_min: 10\n"), 11, "payments.providers[0].amount_min",
       "must be at most amount_max = 5"},
      {provider("      inflight_max: 0\n"), 10, "payments.providers[0].inflight_max",
       "must be between 1 and 100000, got '0'"},
      {provider("      inflight_max: 100001\n"), 10, "payments.providers[0].inflight_max",
       "must be between 1 and 100000, got '100001'"},
      {provider("      connections_max: 1025\n"), 10, "payments.providers[0].connections_max",
       "must be between 1 and 1024, got '1025'"},
      {provider("      timeout_ms: 0\n"), 10, "payments.providers[0].timeout_ms",
       "must be between 1 and 600000, got '0'"},
      {provider("      retries_max: 101\n"), 10, "payments.providers[0].retries_max",
       "must be between 0 and 100, got '101'"},
      {provider("      backoff_ms_min: 0\n"), 10, "payments.providers[0].backoff_ms_min",
       "must be between 1 and 600000, got '0'"},
      {provider("      backoff_ms_max: 3600001\n"), 10, "payments.providers[0].backoff_ms_max",
       "must be between 1 and 3600000, got '3600001'"},
      {provider("      backoff_ms_min: 3000\n"), 10, "payments.providers[0].backoff_ms_min",
       "must be at most backoff_ms_max = 2000"},
      {provider("      backoff_ms_min: 100\n      backoff_ms_max: 99\n"), 11,
       "payments.providers[0].backoff_ms_max", "must be at least backoff_ms_min = 100"},
      {provider("      breaker: {failures_min: 0}\n"), 10, "payments.providers[0].breaker.failures_min",
       "must be between 1 and 1000000, got '0'"},
      {provider("      breaker: {window_ms: 3600001}\n"), 10, "payments.providers[0].breaker.window_ms",
       "must be between 1 and 3600000, got '3600001'"},
      {provider("      breaker: {open_ms: 0}\n"), 10, "payments.providers[0].breaker.open_ms",
       "must be between 1 and 3600000, got '0'"},
      {provider("      credentials: maybe\n"), 10, "payments.providers[0].credentials",
       "expected true or false, got 'maybe'"},
      {provider("      credential_ttl_ms: 86400001\n"), 10, "payments.providers[0].credential_ttl_ms",
       "must be between 1 and 86400000, got '86400001'"},
      {provider("      events_poll_ms: 600001\n"), 10, "payments.providers[0].events_poll_ms",
       "must be between 0 and 600000, got '600001'"},
      {provider("      status_query: {interval_ms: 0}\n"), 10,
       "payments.providers[0].status_query.interval_ms", "must be between 1 and 3600000, got '0'"},
      {provider("      status_query: {queries_max: 1000001}\n"), 10,
       "payments.providers[0].status_query.queries_max", "must be between 1 and 1000000, got '1000001'"},
      {provider("      statement_poll_ms: 3600001\n"), 10, "payments.providers[0].statement_poll_ms",
       "must be between 0 and 3600000, got '3600001'"},
      {provider("      retry_max: 3\n"), 10, "payments.providers[0].retry_max",
       "unknown key, did you mean retries_max?"},
      {provider("    - {name: alpha, url: 'http://x:1', ledgers: [840]}\n"), 10,
       "payments.providers[1].name", "duplicate provider name (first at payments.providers[0].name, line 7)"},
      {store + "payments:\n  providers:\n    - {name: a, ledgers: [840]}\n", 6, "payments.providers[0].url",
       "missing required key"},
  });
}

TEST_CASE("a bad fee or limit is refused at its key, by list index and line", "[config]") {
  // Lines: 4 payments, 5 ledgers, 6 fees/limits, 7 type, 8 ledger, 9 the extra lines.
  auto entry = [](const std::string& list, const std::string& extra, const std::string& type = "topup",
                  const std::string& ledger = "840") {
    return store + "payments:\n  ledgers: [{ledger: 840, currency: USD}]\n  " + list + ":\n    - type: " +
           type + "\n      ledger: " + ledger + "\n" + extra;
  };
  check_errors({
      {entry("fees", "", "refund"), 7, "payments.fees[0].type",
       "'refund' is not one of: topup, withdrawal, transfer, pay"},
      {entry("fees", "", "topup", "978"), 8, "payments.fees[0].ledger",
       "ledger 978 is not listed under payments.ledgers"},
      {entry("fees", "      rate_ppm: 1000001\n"), 9, "payments.fees[0].rate_ppm",
       "must be between 0 and 1000000, got '1000001'"},
      {entry("fees", "      rounding: nearest\n"), 9, "payments.fees[0].rounding",
       "'nearest' is not one of: up, down, half_even"},
      {entry("fees", "      fixed: -1\n"), 9, "payments.fees[0].fixed",
       "expected an amount (decimal minor units), got '-1'"},
      {entry("fees", "      min: 10\n      max: 5\n"), 10, "payments.fees[0].max",
       "must be 0 (no maximum) or at least min = 10"},
      {entry("fees", "      max: 5\n      min: 10\n"), 10, "payments.fees[0].min", "must be at most max = 5"},
      {entry("fees", "    - {type: topup, ledger: 840}\n"), 9, "payments.fees[1].ledger",
       "duplicate entry for type topup, ledger 840 (first at payments.fees[0].type, line 7)"},
      {store + "payments:\n  fees:\n    - {ledger: 840}\n", 6, "payments.fees[0].type", "missing required key"},
      {entry("limits", "", "pay", "978"), 8, "payments.limits[0].ledger",
       "ledger 978 is not listed under payments.ledgers"},
      {entry("limits", "      account_day_count_max: 4294967296\n"), 9,
       "payments.limits[0].account_day_count_max", "must be between 0 and 4294967295, got '4294967296'"},
      {entry("limits", "      payment_max: abc\n"), 9, "payments.limits[0].payment_max",
       "expected an amount (decimal minor units), got 'abc'"},
      {entry("limits", "      account_day_max: [1]\n"), 9, "payments.limits[0].account_day_max",
       "expected an amount (decimal minor units), got a list"},
      {entry("limits", "    - {type: topup, ledger: 840}\n"), 9, "payments.limits[1].ledger",
       "duplicate entry for type topup, ledger 840 (first at payments.limits[0].type, line 7)"},
      {entry("limits", "      fee: 1\n"), 9, "payments.limits[0].fee", "unknown key"},
  });
}

TEST_CASE("a bad flow or step is refused at its key, by list index and line", "[config]") {
  // Lines: 4 payments, 5 flows, 6 topup, 7 the first step, 8 its next key.
  auto flow = [](const std::string& steps) { return store + "payments:\n  flows:\n    topup:\n" + steps; };
  std::string too_many;
  for (int i = 0; i < 33; ++i) too_many += "      - step: s" + std::to_string(i) + "\n";
  check_errors({
      {flow("      - step: Check\n"), 7, "payments.flows.topup[0].step",
       "must be 1 to 32 of a-z, 0-9, _, got 'Check'"},
      {flow("      - step: " + std::string(33, 'a') + "\n"), 7, "payments.flows.topup[0].step",
       "must be 1 to 32 of a-z, 0-9, _, got '" + std::string(33, 'a') + "'"},
      {flow("      - step: a\n        timeout_ms: 0\n"), 8, "payments.flows.topup[0].timeout_ms",
       "must be between 1 and 600000, got '0'"},
      {flow("      - step: a\n        timeout_ms: 600001\n"), 8, "payments.flows.topup[0].timeout_ms",
       "must be between 1 and 600000, got '600001'"},
      {flow("      - step: a\n        compensate: undo-it\n"), 8, "payments.flows.topup[0].compensate",
       "must be 1 to 32 of a-z, 0-9, _, got 'undo-it'"},
      {flow("      - step: a\n        group: 256\n"), 8, "payments.flows.topup[0].group",
       "must be between 0 and 255, got '256'"},
      {flow("      - {timeout_ms: 5}\n"), 7, "payments.flows.topup[0].step", "missing required key"},
      {flow("      - check_limits\n"), 7, "payments.flows.topup[0]",
       "expected a map of keys, got 'check_limits'"},
      {flow("      - {step: a, group: 1}\n      - {step: b}\n      - {step: c, group: 1}\n"), 9,
       "payments.flows.topup[2].group",
       "group 1 is used again after other steps (first at payments.flows.topup[0].group, line 7); "
       "the steps of a group must be adjacent"},
      {flow(too_many), 6, "payments.flows.topup", "must have at most 32 steps"},
      {store + "payments:\n  flows:\n    topup: []\n", 6, "payments.flows.topup", "must list at least one step"},
      {store + "payments:\n  flows:\n    topup:\n", 6, "payments.flows.topup", "must list at least one step"},
      {store + "payments:\n  flows:\n    capture: [{step: a}]\n", 6, "payments.flows.capture", "unknown key"},
      {store + "payments:\n  flows:\n    topups: [{step: a}]\n", 6, "payments.flows.topups",
       "unknown key, did you mean topup?"},
      {store + "payments:\n  flows: [topup]\n", 5, "payments.flows", "expected a map of keys, got a list"},
  });
}

TEST_CASE("an enabled payment core needs ledgers and providers", "[config]") {
  check_errors({
      {store + "payments:\n  enabled: true\n", 5, "payments.enabled",
       "is true but payments.ledgers is empty; list the currencies the payment core serves"},
      {store + "payments:\n  ledgers: [{ledger: 1, currency: X}]\n  enabled: true\n", 6, "payments.enabled",
       "is true but payments.providers is empty; list at least one provider"},
  });
  // Switched off, the lists may be empty; references must still hold.
  CHECK_NOTHROW(load_string(store + "payments:\n  enabled: false\n"));
}
