#pragma once
// Offline readers of the payment core's data directory for the `kassa` CLI: `trace` (the
// journal of one trace, order or payment row as a timeline), `recon` (reconciliation cases) and
// `gl` (general-ledger totals and the accounting lag). They open the LMDB environments
// read-only, so they also work while kassad runs. docs/cli.md describes them.
#include <cstdint>
#include <string>
#include <vector>

#include "ledger/store/recon_store.hpp"

namespace kassa::runtime {

bool is_payments_reader_command(const std::string& cmd);
// Runs `cmd` with the arguments after it; returns the process exit status.
int run_payments_reader_command(const std::string& cmd, const std::vector<std::string>& args);
std::string payments_reader_usage(const std::string& cmd);

// The table of cases `kassa recon` and `kassa cases list` print, one line a case.
void print_case_table(const std::vector<ledger::store::recon_case>& cases);
// A unix epoch time in ns as UTC text (ISO 8601); "-" for 0.
std::string utc_text(uint64_t ns);

} // namespace kassa::runtime
