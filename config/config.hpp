#pragma once
// kassa's configuration: one YAML file -> validated, typed structs. Links nothing of kassa
// but primitives/: ids are u128 (primitives/u128.hpp), and the ids kassa reserves have one
// definition (primitives/reserved_ids.hpp) that the ledger uses too.
// Every key, default and range is listed in docs/configuration.md and config/kassa.yaml.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "primitives/u128.hpp"

namespace kassa::config {

enum class durability { fsync, none };
enum class log_level { debug, info, warn, error };

// The TCP front end.
struct server_config {
  std::string address = "127.0.0.1";
  uint16_t port = 3100;                    // 0 lets the OS pick (tests)
  uint32_t connections_max = 1024;         // 1 .. 65536
  uint32_t frame_bytes_max = 1u << 20;     // 256 .. 64 MiB, >= 128 * batch_events_max + 256
  uint32_t requests_inflight_max = 64;     // per connection, 1 .. 4096
};

struct store_config {
  std::string data_dir;                    // required
  config::durability durability = config::durability::fsync; // required in the file: fsync | none
  uint64_t map_size_mib = 65536;           // LMDB map size per shard, 1 .. 1 << 24
  uint32_t shards = 1;                     // 1 .. 256
  uint64_t transfers_resident_max = 100000; // recent transfers cached in memory, 1000 .. 1 << 32
};

struct batching_config {
  uint32_t batch_events_max = 8190;        // events per request, 1 .. 65535
  uint32_t commit_delay_us_max = 0;        // a group waits at most this long for more work, 0 .. 1000000
  uint32_t commit_events_max = 65536;      // events per group commit, batch_events_max .. 1 << 20
  // Events waiting in the directory while a round is in flight, batch_events_max .. 1 << 26;
  // beyond it requests are answered busy.
  uint32_t queue_events_max = 1u << 20;
};

// An account split into sub-accounts from the start (hot_accounts.static).
struct hot_account_static {
  u128 id = 0;                             // non-zero, not u128 max, not a reserved id
  uint32_t sub_accounts = 8;               // 2 .. 256
};

// Accounts split when they receive at least credits_min credits within window_ms.
struct hot_accounts_adaptive {
  bool enabled = false;
  uint32_t window_ms = 1000;               // 1 .. 600000
  uint32_t credits_min = 10000;            // 1 .. 1000000000
  uint32_t sub_accounts = 8;               // 2 .. 256
};

struct hot_accounts_config {
  std::vector<hot_account_static> static_accounts; // the YAML key `static`; ids unique
  hot_accounts_adaptive adaptive;
  uint32_t sweep_interval_ms = 1000;       // 0 .. 3600000; 0: never sweep
};

// kassad's Prometheus metrics over HTTP (GET /metrics); docs/operations.md lists them.
struct metrics_config {
  bool enabled = true;
  std::string address = "127.0.0.1";       // an IPv4 or IPv6 address
  uint16_t port = 9464;                    // 0 lets the OS pick (tests)
  uint32_t connections_max = 8;            // scrapes at once, 1 .. 1024; more are refused
  uint32_t request_bytes_max = 8192;       // request line and headers, 256 .. 65536
  uint32_t read_timeout_ms = 2000;         // to receive a whole request, 1 .. 60000
};

struct log_config {
  log_level level = log_level::info;
};

// --- payments: the payment core (orders, flows, channels); docs/configuration.md#payments ---

// What a fee or a limit applies to.
enum class payment_type { topup, withdrawal, transfer, pay };
// The pipelines of steps, one per kind of payment command that runs a flow.
enum class flow_name { topup, withdrawal, transfer, pay, refund };
constexpr size_t flow_count = 5;
// How amount * rate_ppm / 1000000 is rounded to minor units.
enum class fee_rounding { up, down, half_even };
enum class partial_payment_policy { accept, refund, hold };
enum class duplicate_payment_policy { refund, keep };
enum class late_success_policy { accept, refund };

// A currency the payment core serves (payments.ledgers[i]).
struct payment_ledger {
  uint32_t ledger = 0;                     // non-zero, unique
  std::string currency;                    // 1 .. 8 of [A-Z0-9]
};

struct breaker_config {
  uint32_t failures_min = 5;               // failures within the window that open it, 1 .. 1000000
  uint32_t window_ms = 10000;              // 1 .. 3600000
  uint32_t open_ms = 5000;                 // open this long before probing, 1 .. 3600000
};

struct status_query_config {
  uint32_t interval_ms = 500;              // between queries of an unknown outcome, 1 .. 3600000
  uint32_t queries_max = 20;               // then the payment goes to review, 1 .. 1000000
};

// One provider: a channel (payments.providers[i]).
struct provider_config {
  std::string name;                        // required, unique, [a-z0-9_-]{1,16}
  std::string url;                         // required, as written: http://HOST:PORT[/PATH]
  std::string host;                        // from url
  uint16_t port = 0;                       // from url, 1 .. 65535
  std::string path_prefix;                 // from url: "" or "/..." without a trailing '/'
  std::vector<uint32_t> ledgers;           // required, non-empty, each under payments.ledgers
  uint32_t priority = 1;                   // 0 .. 1000, lower is tried first
  u128 amount_min = 1;                     // >= 1
  u128 amount_max = 0;                     // 0: no maximum; else >= amount_min
  uint32_t inflight_max = 256;             // 1 .. 100000
  uint32_t connections_max = 16;           // 1 .. 1024
  uint32_t timeout_ms = 2000;              // per attempt, 1 .. 600000
  uint32_t retries_max = 3;                // 0 .. 100
  uint32_t backoff_ms_min = 50;            // 1 .. 600000
  uint32_t backoff_ms_max = 2000;          // backoff_ms_min .. 3600000
  breaker_config breaker;
  bool credentials = false;                // the provider wants a pre-payment credential
  uint32_t credential_ttl_ms = 60000;      // 1 .. 86400000
  uint32_t events_poll_ms = 200;           // 0 .. 600000; 0: never
  status_query_config status_query;
  uint32_t statement_poll_ms = 1000;       // 0 .. 3600000; 0: never
};

// A fee for one (type, ledger): fixed + amount * rate_ppm / 1e6 (rounded), clamped to
// [min, max]. No entry: no fee.
struct fee_config {
  payment_type type = payment_type::topup; // required
  uint32_t ledger = 0;                     // required, under payments.ledgers
  u128 fixed = 0;                          // minor units
  uint32_t rate_ppm = 0;                   // 0 .. 1000000
  fee_rounding rounding = fee_rounding::up;
  u128 min = 0;
  u128 max = 0;                            // 0: none; else >= min
};

// Limits for one (type, ledger); 0 is no limit.
struct limit_config {
  payment_type type = payment_type::topup; // required
  uint32_t ledger = 0;                     // required, under payments.ledgers
  u128 payment_max = 0;                    // one payment's amount
  u128 account_day_max = 0;                // sum per account per UTC day
  uint32_t account_day_count_max = 0;      // payments per account per UTC day
};

struct exceptions_config {
  partial_payment_policy partial_payment = partial_payment_policy::refund;
  uint32_t partial_hold_ms = 60000;        // hold: wait this long for the rest, 1 .. 86400000
  duplicate_payment_policy duplicate_payment = duplicate_payment_policy::refund;
  late_success_policy late_success = late_success_policy::accept;
};

// General-ledger vouchers derived from the journal, off the core link.
struct accounting_config {
  bool enabled = true;
  uint32_t interval_ms = 200;              // 1 .. 3600000
  uint32_t batch_events_max = 8190;        // journal events per voucher batch, 1 .. 1000000
};

struct reconciliation_config {
  bool enabled = true;
  uint32_t interval_ms = 1000;             // 1 .. 3600000
  uint32_t grace_ms = 5000;                // unmatched this long becomes a case, 0 .. 86400000
  uint32_t inflight_grace_ms = 3600000;    // a line whose row is still in flight waits this long, 0 .. 86400000
  uint32_t refund_timeout_ms = 10000;      // a case refund's provider call, 1 .. 600000
};

// One step of a flow. The step names are checked at boot against the steps kassa registers,
// and each flow's money invariants by the flow checker (ledger/payments/flow_check.hpp); an
// unknown step or a broken invariant is reported with step_error(), at the step's line.
struct flow_step {
  std::string step;                        // required, [a-z0-9_]{1,32}
  uint32_t timeout_ms = 5000;              // 1 .. 600000
  std::string compensate;                  // "" or a step name: undoes this step on failure
  uint8_t group = 0;                       // 0 .. 255; adjacent steps of one non-zero group
                                           // run in parallel
  std::string source;                      // the file, as config::source
  std::string key_path;                    // e.g. "payments.flows.topup[2]"
  int line = 0;                            // of `step`; 0 for a default flow
  int compensate_line = 0;                 // of `compensate`; 0 when not written
};
constexpr size_t flow_steps_max = 32;

// Each flow is 1 .. 32 steps; a flow not written in the file keeps its default (default_flow).
struct flows_config {
  std::vector<flow_step> topup, withdrawal, transfer, pay, refund;
  flows_config();
  const std::vector<flow_step>& of(flow_name flow) const;
  std::vector<flow_step>& of(flow_name flow);
};

struct payments_config {
  bool enabled = false;                    // the payment core runs
  uint32_t orders_inflight_max = 100000;   // unfinished flows, 1 .. 10000000; beyond: busy
  uint32_t flow_wait_ms = 5000;            // submit_payments waits this long, 0 .. 600000
  std::vector<payment_ledger> ledgers;     // non-empty when enabled
  std::vector<provider_config> providers;  // non-empty when enabled; names unique
  std::vector<fee_config> fees;            // one per (type, ledger)
  std::vector<limit_config> limits;        // one per (type, ledger)
  exceptions_config exceptions;
  accounting_config accounting;
  reconciliation_config reconciliation;
  flows_config flows;
};

// --- access: client authentication and permissions; docs/configuration.md#access ----------

// The operations a client may be limited to, by their wire numbers (docs/protocol.md):
// create_accounts 2 .. lookup_orders 9, get_cases 11, resolve_case 12, lookup_order_items 21.
// Bit n of access_client::operations is operation n; hello and authenticate are always
// allowed. The default is every operation but the case desk's: a client lists get_cases and
// resolve_case to read or resolve reconciliation cases.
constexpr uint32_t access_operations_all = 0x3FCu | (1u << 21); // bits 2 .. 9 and 21
constexpr size_t access_key_bytes = 32;

// The stores a client may use (access_client::stores): the real one, and the shadow store that
// requests with the shadow flag go to (docs/security.md).
constexpr uint32_t access_store_real = 1u << 0;
constexpr uint32_t access_store_shadow = 1u << 1;

struct access_client {
  uint64_t id = 0;                         // required, 1 .. 2^64 - 1, unique: the frames' client_id
  uint8_t key[access_key_bytes] = {};      // `key` (64 hex digits) or the file `key_file` holds
  std::string key_file;                    // "" when the key is written in the YAML
  std::vector<uint32_t> ledgers;           // empty: every ledger
  uint32_t operations = access_operations_all;
  uint32_t stores = access_store_real;     // `stores: [real, shadow]`; by default the real one only
};

struct access_config {
  bool required = false;                   // every connection authenticates first
  uint32_t authentication_failures_max = 3; // then the connection is closed, 1 .. 100
  std::vector<access_client> clients;
};

// --- shadow: the shadow store of stress tests; docs/configuration.md#shadow ----------------

// Requests with the shadow flag run through the same code into a second, separate store under
// <data_dir>/shadow/ (same shard count and durability as the real one).
struct shadow_config {
  bool enabled = true;                     // false: shadow requests are answered shadow_disabled
  uint64_t map_size_mib = 0;               // per shadow shard, 1 .. 1 << 24; not written: store.map_size_mib
  // The channels of the shadow payment core (the schema of payments.providers; never the real
  // providers' urls). Empty: shadow payment requests are answered payments_disabled.
  std::vector<provider_config> providers;
};

// The names of the operations access_client::operations may list, with their numbers.
const std::vector<std::pair<std::string_view, uint16_t>>& access_operation_names();

struct config {
  server_config server;
  store_config store;
  batching_config batching;
  hot_accounts_config hot_accounts;
  log_config log;
  metrics_config metrics;
  payments_config payments;
  access_config access;
  shadow_config shadow;
  std::string source; // file path, or "<string>"
};

// An invalid configuration. what() is "<source>:<line>: <key.path>: <message>"; the key path
// part is left out when the error is about the whole file (unreadable, syntax, empty).
struct config_error : std::runtime_error {
  config_error(std::string source, int line, std::string key_path, std::string message);

  std::string source;
  int line;             // 1-based; 0 if unknown
  std::string key_path; // e.g. "store.durability"; empty for whole-file errors
  std::string message;
};

// Both throw config_error for anything that is not a complete, valid configuration, including
// an unreadable file and YAML syntax errors. The result is meant to be held as `const config`.
config load_file(const std::string& path);
config load_string(const std::string& yaml, const std::string& source = "<string>");

std::string_view to_string(durability value);
std::string_view to_string(log_level value);
std::string_view to_string(payment_type value);
std::string_view to_string(flow_name value);
std::string_view to_string(fee_rounding value);
std::string_view to_string(partial_payment_policy value);
std::string_view to_string(duplicate_payment_policy value);
std::string_view to_string(late_success_policy value);

// The steps of a flow when the file does not list them (one table in config.cpp).
std::vector<flow_step> default_flow(flow_name flow);

// An error about a step found after loading, such as a step name no plugin registered:
// `field` is "step" or "compensate", e.g. step_error(s, "step", "unknown step \"x\"") is
// "kassa.yaml:40: payments.flows.topup[2].step: unknown step "x"".
config_error step_error(const flow_step& s, std::string_view field, const std::string& message);

// A daemon that cannot load its configuration exits with this status; it never starts
// half-configured.
constexpr int exit_config_error = 2;

} // namespace kassa::config
