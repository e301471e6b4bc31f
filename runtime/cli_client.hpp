#pragma once
// The client commands of the kassa CLI (create-account, transfer, post, void, lookups,
// history, balances, order): argument parsing, one request through the client library, and human
// or JSON output. Exit statuses are documented in docs/cli.md.
#include <string>
#include <vector>

namespace kassa::runtime {

bool is_client_command(const std::string& cmd);
std::string client_command_usage(const std::string& cmd);
int run_client_command(const std::string& cmd, const std::vector<std::string>& args);

} // namespace kassa::runtime
