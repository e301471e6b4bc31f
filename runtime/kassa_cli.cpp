// kassa: the command-line client and operator tool. Client commands talk to kassad over the
// binary protocol (docs/protocol.md); `verify` checks a stopped store offline.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ledger/store/saga_log.hpp"
#include "ledger/store/verify.hpp"
#include "runtime/cli_backup.hpp"
#include "runtime/cli_client.hpp"
#include "runtime/cli_payments.hpp"
#include "runtime/data_dir.hpp"
#include "runtime/version.hpp"

using namespace kassa;

namespace {

// Exit statuses, documented in docs/cli.md.
constexpr int exit_ok = 0;
constexpr int exit_inconsistent = 1;
constexpr int exit_usage = 2;
constexpr int exit_unavailable = 3; // the store cannot be read: missing, locked, unreadable

const char* usage_main =
    "usage: kassa <command> [options]\n"
    "\n"
    "Client commands (talk to kassad at --address HOST:PORT, default $KASSA_ADDRESS or\n"
    "127.0.0.1:3100; --json prints JSON):\n"
    "  create-account    create an account\n"
    "  transfer          move money between two accounts (also --pending)\n"
    "  post              post a pending transfer, whole or in part\n"
    "  void              void a pending transfer\n"
    "  lookup-account    print accounts by id\n"
    "  lookup-transfer   print transfers by id\n"
    "  history           the transfers of an account, oldest first, paged\n"
    "  balances          the balance history of an account with the history flag\n"
    "  order             payments: create, pay, topup, withdraw, refund, transfer; show orders\n"
    "  cases             reconciliation cases: list, show, resolve (accept or book)\n"
    "\n"
    "Operator commands:\n"
    "  verify --data DIR [--json]   check a stopped store (and its shadow store): balances, totals\n"
    "  trace ID [--data DIR]        the payment journal of a trace, order or payment row\n"
    "  recon [--data DIR] [--all]   reconciliation cases and statement cursors\n"
    "  gl [--data DIR]              general-ledger totals and the accounting lag\n"
    "  backup --data DIR --to OUT   copy a data directory while kassad runs\n"
    "  restore --data DIR [--from BACKUP]  a new generation of provider ids after a restore\n"
    "  version                      print the version\n"
    "  help [command]               print help for a command\n"
    "\n"
    "Authentication: --client-id N with --client-key-file PATH (or $KASSA_CLIENT_ID,\n"
    "$KASSA_CLIENT_KEY_FILE, $KASSA_CLIENT_KEY) when kassad asks for it; see docs/security.md.\n"
    "\n"
    "Exit status: 0 success; 1 the ledger refused an event, an id was not found, or verify\n"
    "found a problem; 2 bad usage; 3 kassad or the store cannot be reached; 4 kassad refused\n"
    "the request as a whole (busy, shutting down, store unavailable, payments disabled) or did\n"
    "not answer in time; 5 kassad refused access (authentication failed, unauthenticated,\n"
    "forbidden).\n";

const char* usage_verify =
    "usage: kassa verify --data DIR [--shadow] [--json]\n"
    "\n"
    "Checks a stopped store offline, read-only. DIR is kassad's data directory (every shard-NNN\n"
    "below it is checked) or one shard directory. For every ledger, debits posted must equal\n"
    "credits posted and debits pending must equal credits pending; every account's totals must\n"
    "equal what its transfers add up to; every index must agree with the rows. Across shards,\n"
    "the clearing account of shard A for shard B must mirror B's for A (A's credits are B's\n"
    "debits and the other way round); while the saga log in DIR/sagas holds sagas, which the\n"
    "next start of kassad finishes, the pairs are not compared.\n"
    "\n"
    "The shadow store of stress tests (DIR/shadow, when it holds shards) is checked the same\n"
    "way after the real one; --shadow checks only the shadow store.\n"
    "\n"
    "Prints one summary line per shard and one for the cross-shard check (and each problem\n"
    "found); --json prints one JSON object per line instead. Exit status: 0 consistent,\n"
    "1 inconsistent or unreadable, 2 bad usage, 3 no store in DIR, or DIR in use by a running\n"
    "kassad.\n";

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// The sagas the log in `path` still holds; 0 when there is no log. False with `problem` set
// when the log exists but cannot be read.
bool sagas_open(const std::string& path, uint64_t& count, std::string& problem) {
  count = 0;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(path) / "data.mdb", ec)) return true;
  ledger::store::error err;
  // The data directory is locked, so nothing else writes the log; durability none because
  // verify changes nothing in it.
  auto log = ledger::store::saga_log::open(path, ledger::store::durability::none, uint64_t{64} << 20, err);
  std::vector<ledger::store::saga> sagas;
  if (log) err = log->load(sagas);
  if (!log || !err.ok()) {
    problem = "cannot read the saga log " + path + ": " + err.message;
    return false;
  }
  count = sagas.size();
  return true;
}

// The shard number of a `shard-NNN` directory, or false.
bool shard_number(const std::string& path, uint32_t& out) {
  const std::string name = std::filesystem::path(path).filename().string();
  if (name.rfind("shard-", 0) != 0 || name.size() == 6 || name.size() > 11) return false;
  uint64_t n = 0;
  for (char c : name.substr(6)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + uint64_t(c - '0');
  }
  if (n > UINT32_MAX) return false;
  out = static_cast<uint32_t>(n);
  return true;
}

// Checks the shards `shards` of the store in `data_dir` (a whole data directory, or one shard
// directory) and, for a whole store, the clearing accounts across them. Returns the exit status.
int verify_store(const std::string& data_dir, const std::vector<std::string>& shards, bool whole_store,
                 bool json) {
  int status = exit_ok;
  std::map<uint32_t, std::vector<ledger::account>> clearing;
  std::vector<std::string> unnumbered;
  for (const std::string& path : shards) {
    ledger::store::verify_report r = ledger::store::verify(path);
    if (!r.consistent) status = exit_inconsistent;
    uint32_t number = 0;
    if (shard_number(path, number)) clearing[number] = std::move(r.clearing);
    else if (whole_store) unnumbered.push_back(path);
    if (json) {
      std::printf("{\"shard\":\"%s\",\"consistent\":%s,\"ledgers\":%llu,\"accounts\":%llu,"
                  "\"transfers\":%llu,\"pending\":%llu,\"commits\":%llu,\"problems_total\":%llu,"
                  "\"problems\":[",
                  json_escape(path).c_str(), r.consistent ? "true" : "false",
                  (unsigned long long)r.ledgers, (unsigned long long)r.accounts,
                  (unsigned long long)r.transfers, (unsigned long long)r.pending,
                  (unsigned long long)r.commits, (unsigned long long)r.problems_total);
      for (size_t i = 0; i < r.problems.size(); ++i) {
        std::printf("%s\"%s\"", i ? "," : "", json_escape(r.problems[i]).c_str());
      }
      std::printf("]}\n");
    } else {
      std::printf("%s: %s\n", path.c_str(), r.summary.c_str());
      for (const std::string& p : r.problems) std::printf("  %s\n", p.c_str());
    }
  }
  if (!whole_store) return status; // one shard directory: its pairs are in other shards

  // Across shards: each clearing account against its counterpart in the other shard.
  uint64_t open_sagas = 0;
  std::string saga_problem;
  const bool sagas_read = sagas_open(runtime::saga_log_path(data_dir), open_sagas, saga_problem);
  ledger::store::cross_shard_report x = ledger::store::verify_clearing(clearing, open_sagas);
  std::vector<std::string> problems;
  if (!sagas_read) problems.push_back(saga_problem);
  for (const std::string& path : unnumbered)
    problems.push_back(path + " is not named shard-NNN; its clearing accounts are not checked");
  const uint64_t problems_total = x.problems_total + problems.size();
  problems.insert(problems.end(), x.problems.begin(), x.problems.end());
  if (!sagas_read || !unnumbered.empty()) {
    x.consistent = false;
    x.summary = "cross-shard: INCONSISTENT: " + std::to_string(problems_total) + " problem" +
                (problems_total == 1 ? "" : "s");
  }
  if (!x.consistent) status = exit_inconsistent;
  if (json) {
    std::printf("{\"cross_shard\":true,\"consistent\":%s,\"shards\":%llu,\"pairs\":%llu,"
                "\"sagas_open\":%llu,\"problems_total\":%llu,\"problems\":[",
                x.consistent ? "true" : "false", (unsigned long long)x.shards,
                (unsigned long long)x.pairs, (unsigned long long)x.sagas_open,
                (unsigned long long)problems_total);
    for (size_t i = 0; i < problems.size(); ++i) {
      std::printf("%s\"%s\"", i ? "," : "", json_escape(problems[i]).c_str());
    }
    std::printf("]}\n");
  } else {
    std::printf("%s: %s\n", data_dir.c_str(), x.summary.c_str());
    for (const std::string& p : problems) std::printf("  %s\n", p.c_str());
  }
  return status;
}

int cmd_verify(const std::vector<std::string>& args) {
  std::string data_dir;
  bool json = false;
  bool shadow_only = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data" && i + 1 < args.size()) {
      data_dir = args[++i];
    } else if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--shadow") {
      shadow_only = true;
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(usage_verify, stdout);
      return exit_ok;
    } else {
      std::fprintf(stderr, "kassa verify: unknown or incomplete argument '%s'\n\n%s", args[i].c_str(),
                   usage_verify);
      return exit_usage;
    }
  }
  if (data_dir.empty()) {
    std::fprintf(stderr, "kassa verify: --data DIR is required\n\n%s", usage_verify);
    return exit_usage;
  }
  // The shadow store of stress tests, in DIR/shadow, has the layout of the real one.
  const std::string shadow_dir = (std::filesystem::path(data_dir) / "shadow").string();
  const std::vector<std::string> shards = runtime::shard_paths_found(shadow_only ? shadow_dir : data_dir);
  if (shards.empty()) {
    std::fprintf(stderr, "kassa verify: no store in %s (expected data.mdb or shard-NNN/)\n",
                 (shadow_only ? shadow_dir : data_dir).c_str());
    return exit_unavailable;
  }
  // A running kassad holds the lock (of both stores): checking a store that is being written
  // would report phantom problems.
  std::string error;
  runtime::data_lock lock;
  const bool whole_store = shadow_only || shards.size() > 1 || shards[0] != data_dir;
  if (whole_store) {
    if (!lock.acquire(data_dir, error)) {
      std::fprintf(stderr, "kassa verify: %s\n", error.c_str());
      return exit_unavailable;
    }
  }
  if (shadow_only) return verify_store(shadow_dir, shards, true, json);
  int status = verify_store(data_dir, shards, whole_store, json);
  const std::vector<std::string> shadow_shards = whole_store ? runtime::shard_paths_found(shadow_dir)
                                                             : std::vector<std::string>{};
  if (!shadow_shards.empty()) {
    const int shadow_status = verify_store(shadow_dir, shadow_shards, true, json);
    if (status == exit_ok) status = shadow_status;
  }
  return status;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Options given before the command (`kassa --address H:P transfer ...`) apply to it.
  std::vector<std::string> global;
  while (!args.empty() && args[0].rfind("--", 0) == 0 && args[0] != "--help" && args[0] != "--version") {
    global.push_back(args[0]);
    args.erase(args.begin());
    const bool has_value = global.back().find('=') == std::string::npos && global.back() != "--json" &&
                           global.back() != "--shadow";
    if (has_value && !args.empty()) {
      global.push_back(args[0]);
      args.erase(args.begin());
    }
  }
  if (!args.empty()) args.insert(args.end(), global.begin(), global.end());
  if (args.empty()) {
    std::fputs(usage_main, stderr);
    return exit_usage;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "verify") return cmd_verify(args);
  if (runtime::is_client_command(cmd)) return runtime::run_client_command(cmd, args);
  if (cmd == "version" || cmd == "--version") {
    std::printf("kassa %s\n", kassa_version);
    return exit_ok;
  }
  // Offline readers of the payment core's stores: trace, recon, gl (runtime/cli_payments.hpp).
  if (runtime::is_payments_reader_command(cmd)) return runtime::run_payments_reader_command(cmd, args);
  if (runtime::is_backup_command(cmd)) return runtime::run_backup_command(cmd, args);
  if (cmd == "help" && !args.empty() && runtime::is_backup_command(args[0])) {
    std::fputs(runtime::backup_usage(args[0]).c_str(), stdout);
    return exit_ok;
  }
  if (cmd == "help" && !args.empty() && runtime::is_payments_reader_command(args[0])) {
    std::fputs(runtime::payments_reader_usage(args[0]).c_str(), stdout);
    return exit_ok;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (!args.empty() && args[0] == "verify") {
      std::fputs(usage_verify, stdout);
    } else if (!args.empty() && runtime::is_client_command(args[0])) {
      std::fputs(runtime::client_command_usage(args[0]).c_str(), stdout);
    } else {
      std::fputs(usage_main, stdout);
    }
    return exit_ok;
  }
  std::fprintf(stderr, "kassa: unknown command '%s'\n\n%s", cmd.c_str(), usage_main);
  return exit_usage;
}
