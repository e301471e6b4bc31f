#pragma once
// kassa's configuration: one YAML file -> validated, typed structs. Links nothing else of
// kassa; it reads ids with the ledger's header-only id helpers (ledger/u128.hpp,
// ledger/system_ids.hpp) so that the reserved id space has one definition.
// Every key, default and range is listed in docs/configuration.md and config/kassa.yaml.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/u128.hpp"

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

struct log_config {
  log_level level = log_level::info;
};

struct config {
  server_config server;
  store_config store;
  batching_config batching;
  hot_accounts_config hot_accounts;
  log_config log;
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

// A daemon that cannot load its configuration exits with this status; it never starts
// half-configured.
constexpr int exit_config_error = 2;

} // namespace kassa::config
