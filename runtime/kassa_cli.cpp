// kassa: the command-line client and operator tool. Client commands talk to kassad over the
// binary protocol (docs/protocol.md); `verify` checks a stopped store offline.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ledger/store/verify.hpp"
#include "runtime/cli_client.hpp"
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
    "\n"
    "Operator commands:\n"
    "  verify --data DIR [--json]   check a stopped store: balances, totals, indexes\n"
    "  version                      print the version\n"
    "  help [command]               print help for a command\n"
    "\n"
    "Exit status: 0 success; 1 the ledger refused an event, an id was not found, or verify\n"
    "found a problem; 2 bad usage; 3 kassad or the store cannot be reached; 4 kassad refused\n"
    "the request as a whole (busy, shutting down, store unavailable) or did not answer in time.\n";

const char* usage_verify =
    "usage: kassa verify --data DIR [--json]\n"
    "\n"
    "Checks a stopped store offline, read-only. DIR is kassad's data directory (every shard-NNN\n"
    "below it is checked) or one shard directory. For every ledger, debits posted must equal\n"
    "credits posted and debits pending must equal credits pending; every account's totals must\n"
    "equal what its transfers add up to; every index must agree with the rows.\n"
    "\n"
    "Prints one summary line per shard (and each problem found); --json prints one JSON object\n"
    "per shard instead. Exit status: 0 consistent, 1 inconsistent or unreadable, 2 bad usage,\n"
    "3 no store in DIR, or DIR in use by a running kassad.\n";

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

int cmd_verify(const std::vector<std::string>& args) {
  std::string data_dir;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data" && i + 1 < args.size()) {
      data_dir = args[++i];
    } else if (args[i] == "--json") {
      json = true;
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
  const std::vector<std::string> shards = runtime::shard_paths_found(data_dir);
  if (shards.empty()) {
    std::fprintf(stderr, "kassa verify: no store in %s (expected data.mdb or shard-NNN/)\n", data_dir.c_str());
    return exit_unavailable;
  }
  // A running kassad holds the lock: checking a store that is being written would report
  // phantom problems.
  std::string error;
  runtime::data_lock lock;
  if (shards.size() > 1 || shards[0] != data_dir) {
    if (!lock.acquire(data_dir, error)) {
      std::fprintf(stderr, "kassa verify: %s\n", error.c_str());
      return exit_unavailable;
    }
  }
  int status = exit_ok;
  for (const std::string& path : shards) {
    const ledger::store::verify_report r = ledger::store::verify(path);
    if (!r.consistent) status = exit_inconsistent;
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
    const bool has_value = global.back().find('=') == std::string::npos && global.back() != "--json";
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
