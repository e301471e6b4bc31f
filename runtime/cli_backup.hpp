#pragma once
// `kassa backup` and `kassa restore`: copies of a data directory that never send a provider an
// id their original may have sent. A backup marks its payments stores restore_pending, so the
// first start from it begins a new generation of provider ids; `restore` begins one on a data
// directory put back by any other means. docs/operations.md ("Backups and restores").
#include <string>
#include <vector>

namespace kassa::runtime {

bool is_backup_command(const std::string& cmd);
// Runs `cmd` with the arguments after it; returns the process exit status.
int run_backup_command(const std::string& cmd, const std::vector<std::string>& args);
std::string backup_usage(const std::string& cmd);

} // namespace kassa::runtime
