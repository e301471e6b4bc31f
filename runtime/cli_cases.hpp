#pragma once
// `kassa cases list|show|resolve`: reconciliation cases through a running kassad (get_cases
// and resolve_case, docs/protocol.md). docs/cli.md and docs/accounting.md describe them.
#include <cstdint>
#include <string>

#include "primitives/u128.hpp"
#include "runtime/client/client.hpp"

namespace kassa::runtime {

struct case_resolution_args {
  uint64_t id = 0;
  std::string action;    // accept | book
  std::string direction; // from_suspense | to_suspense | empty
  u128 amount = 0;       // 0: not given
  std::string by, note;
};

// Each returns the process exit status: 0 done, 1 refused (or not found). A malformed request
// throws std::invalid_argument (a usage error) before anything is sent.
int cases_list(client::blocking_client& c, bool open_only, bool json);
int cases_show(client::blocking_client& c, uint64_t id, bool json);
int cases_resolve(client::blocking_client& c, const case_resolution_args& a, bool json);

} // namespace kassa::runtime
