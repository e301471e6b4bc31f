#include "runtime/cli_backup.hpp"

#include <lmdb.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "ledger/store/payments_store.hpp"
#include "primitives/lmdb.hpp"
#include "runtime/data_dir.hpp"

namespace kassa::runtime {

namespace {

namespace fs = std::filesystem;
namespace ks = ledger::store;

// As in docs/cli.md.
constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_unavailable = 3;
constexpr uint64_t map_size_bytes = uint64_t{64} << 20; // grown to the file's size by LMDB
constexpr size_t environments_max = 4096;

const char* usage_backup =
    "usage: kassa backup --data DIR --to OUT\n"
    "\n"
    "Copies every LMDB environment below DIR (shard-NNN, sagas, payments, accounting, recon,\n"
    "and the same below DIR/shadow) into the new directory OUT, compacted, while kassad runs:\n"
    "each copy is a committed snapshot (the shards' snapshots are of different instants). The\n"
    "copies of the payments stores are marked restore_pending: kassad started on OUT (or on a\n"
    "copy of it) begins a new generation of provider ids, so that it sends no id that DIR sent\n"
    "after the backup. Exit status: 0 copied, 1 a copy failed, 2 bad usage, 3 no store in DIR\n"
    "or OUT not empty.\n";

const char* usage_restore =
    "usage: kassa restore --data DIR [--from BACKUP]\n"
    "\n"
    "Makes DIR safe to start after a restore: begins a new generation of provider ids in\n"
    "DIR/payments (and DIR/shadow/payments): new payments get a fresh random nonce in their\n"
    "ids and row sequences 2^40 past the backup's last, so that no provider is sent an id, nor\n"
    "the ledger a transfer id, that the backup's original, or an earlier restore of the same\n"
    "backup, may have used. Payments in the backup keep their ids.\n"
    "With --from, BACKUP (a directory `kassa backup` wrote) is first copied into DIR, which must\n"
    "not exist or be empty. kassad must not run on DIR. Prints each payments store's\n"
    "installation id and new generation (a DIR without a payments store needs none: done).\n"
    "Exit status: 0 done, 1 a store could not be changed, 2 bad usage, 3 DIR in use, or DIR not\n"
    "empty for --from.\n";

bool empty_or_missing(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

// The directories below `root` holding an LMDB environment (a data.mdb), two levels deep at
// most (DIR/shadow/shard-000): the payments stores first, then the others sorted. The shards'
// copies are then no older than the payments store's: they hold every booking of the rows it
// holds (and maybe of rows made after it, whose sequences a restore skips).
std::vector<fs::path> environments(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() >= 1) it.disable_recursion_pending();
    if (it->is_directory(ec) && fs::exists(it->path() / "data.mdb", ec)) out.push_back(it->path());
    if (out.size() >= environments_max) break;
  }
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    const bool pa = a.filename() == "payments", pb = b.filename() == "payments";
    return pa != pb ? pa : a < b;
  });
  return out;
}

// The payments stores of a data directory: the real one and the shadow one, when present.
std::vector<std::string> payments_stores(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const fs::path& p : {dir / "payments", dir / "shadow" / "payments"})
    if (fs::exists(p / "data.mdb", ec)) out.push_back(p.string());
  return out;
}

bool copy_environment(const fs::path& from, const fs::path& to, std::string& error) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) {
    error = "cannot create " + to.string() + ": " + ec.message();
    return false;
  }
  MDB_env* env = nullptr;
  int rc = lmdb::env_open(env, from.string(), MDB_RDONLY | MDB_NOTLS, 32);
  if (rc == 0) rc = mdb_env_copy2(env, to.c_str(), MDB_CP_COMPACT);
  if (env) mdb_env_close(env);
  if (rc != 0) error = "copying " + from.string() + " to " + to.string() + ": " + mdb_strerror(rc);
  return rc == 0;
}

// Whether `inner` is `outer` or lies below it.
bool within(const std::string& inner, const std::string& outer) {
  std::error_code ec;
  const fs::path i = fs::weakly_canonical(inner, ec), o = fs::weakly_canonical(outer, ec);
  const auto [end, _] = std::mismatch(o.begin(), o.end(), i.begin(), i.end());
  return end == o.end();
}

int cmd_backup(const std::string& data_dir, const std::string& out) {
  if (within(out, data_dir)) {
    std::fprintf(stderr, "kassa backup: %s lies within %s; name a directory outside it\n", out.c_str(),
                 data_dir.c_str());
    return exit_usage;
  }
  if (!empty_or_missing(out)) {
    std::fprintf(stderr, "kassa backup: %s is not empty; name a new directory\n", out.c_str());
    return exit_unavailable;
  }
  const std::vector<fs::path> envs = environments(data_dir);
  if (envs.empty()) {
    std::fprintf(stderr, "kassa backup: no store in %s (expected shard-NNN/ and the like)\n", data_dir.c_str());
    return exit_unavailable;
  }
  for (const fs::path& env : envs) {
    const fs::path to = fs::path(out) / fs::relative(env, data_dir);
    std::string error;
    if (!copy_environment(env, to, error)) {
      std::fprintf(stderr, "kassa backup: %s\n", error.c_str());
      return exit_failed;
    }
    std::printf("copied %s\n", to.c_str());
  }
  for (const std::string& path : payments_stores(out)) {
    ks::error err;
    auto store = ks::payments_store::open(path, ks::durability::fsync, map_size_bytes, err);
    if (store) err = store->mark_restore_pending();
    if (!err.ok()) {
      std::fprintf(stderr, "kassa backup: %s\n", err.message.c_str());
      return exit_failed;
    }
    std::printf("marked %s restore_pending: a start from it begins a new generation of provider ids\n",
                path.c_str());
  }
  return exit_ok;
}

int cmd_restore(const std::string& data_dir, const std::string& from) {
  if (!from.empty()) {
    if (!empty_or_missing(data_dir)) {
      std::fprintf(stderr, "kassa restore: %s is not empty; restore into a new directory\n", data_dir.c_str());
      return exit_unavailable;
    }
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (!ec) fs::copy(from, data_dir, fs::copy_options::recursive, ec);
    if (ec) {
      std::fprintf(stderr, "kassa restore: copying %s to %s: %s\n", from.c_str(), data_dir.c_str(),
                   ec.message().c_str());
      return exit_failed;
    }
  }
  const std::vector<std::string> stores = payments_stores(data_dir);
  if (stores.empty()) {
    // A ledger without the payment core sends providers nothing: there is no id to renew.
    std::printf("kassa restore: %s has no payments store (payments/data.mdb): no provider ids to renew\n",
                data_dir.c_str());
    return 0;
  }
  std::string error;
  data_lock lock;
  if (!lock.acquire(data_dir, error)) {
    std::fprintf(stderr, "kassa restore: %s\n", error.c_str());
    return exit_unavailable;
  }
  for (const std::string& path : stores) {
    ks::error err;
    auto store = ks::payments_store::open(path, ks::durability::fsync, map_size_bytes, err);
    // a copy `kassa backup` marked began its generation as it opened
    uint32_t number = store ? store->ids().generations().back().number : 0;
    if (store && !store->generation_begun_at_open()) err = store->begin_generation(number);
    if (!err.ok()) {
      std::fprintf(stderr, "kassa restore: %s\n", err.message.c_str());
      return exit_failed;
    }
    const auto& g = store->ids().generations().back();
    std::printf("%s: installation 0x%016" PRIx64 ", generation %u (issuer 0x%016" PRIx64
                ") from row sequence %" PRIu64 "\n",
                path.c_str(), store->ids().installation_id(), number, store->ids().issuer(), g.sequence_first);
  }
  return exit_ok;
}

} // namespace

bool is_backup_command(const std::string& cmd) { return cmd == "backup" || cmd == "restore"; }

std::string backup_usage(const std::string& cmd) { return cmd == "backup" ? usage_backup : usage_restore; }

int run_backup_command(const std::string& cmd, const std::vector<std::string>& args) {
  const char* usage = cmd == "backup" ? usage_backup : usage_restore;
  std::string data_dir, other;
  const std::string other_flag = cmd == "backup" ? "--to" : "--from";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(usage, stdout);
      return exit_ok;
    } else if (args[i] == "--data" && i + 1 < args.size()) {
      data_dir = args[++i];
    } else if (args[i] == other_flag && i + 1 < args.size()) {
      other = args[++i];
    } else {
      std::fprintf(stderr, "kassa %s: unknown or incomplete argument '%s'\n\n%s", cmd.c_str(), args[i].c_str(), usage);
      return exit_usage;
    }
  }
  if (data_dir.empty() || (cmd == "backup" && other.empty())) {
    std::fprintf(stderr, "kassa %s: --data DIR%s required\n\n%s", cmd.c_str(), cmd == "backup" ? " and --to OUT are" : " is",
                 usage);
    return exit_usage;
  }
  return cmd == "backup" ? cmd_backup(data_dir, other) : cmd_restore(data_dir, other);
}

} // namespace kassa::runtime
