// bench_store: durable commit throughput of ledger/store on this machine.
// For each batch size: create_transfers through the state machine, then one store commit per
// batch (fsync on), among `--accounts` accounts with random debit/credit pairs.
// Usage: bench_store [--seconds S] [--accounts N] [--sizes 1,100,1000,8000] [--dir DIR] [--random-ids]
//                    [--index-transfers N] [--checkpoint-transfers N] (store options, see store.hpp)
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ledger/state_machine.hpp"
#include "ledger/store/store.hpp"

using namespace kassa;
using namespace kassa::ledger;
namespace ks = kassa::ledger::store;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  double seconds = 3.0;
  uint32_t accounts = 10'000;
  std::vector<size_t> sizes{1, 100, 1000, 8000};
  std::string dir;
  bool random_ids = false;
  uint32_t index_transfers_max = 0;      // 0: the store's default
  uint32_t checkpoint_transfers_max = 0;
};

uint64_t ns_since(clock_type::time_point t) {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t).count());
}

uint64_t wall_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

struct result {
  size_t events = 0, commits = 0;
  double seconds = 0, commit_seconds = 0;
  uint64_t p50_us = 0, p99_us = 0;
  double write_ms_mean = 0, sync_ms_mean = 0, apply_ms_mean = 0;
  // Commit latency by kind: plain (journal only), with a checkpoint of account rows, with a
  // bulk account_transfers index (a commit may do both; it then counts as checkpoint).
  size_t plain = 0, checkpoints = 0, indexes = 0;
  double plain_ms = 0, checkpoint_ms = 0, index_ms = 0;
  // account_transfers(limit 10, newest first) at the end, and how many transfers it had to
  // scan in the journal because they were not indexed yet.
  double query_ms = 0;
  size_t query_unindexed = 0;
  double open_ms = 0, load_ms = 0; // recovery after the run: open (replay) and load
  size_t replayed = 0;             // transfers after the checkpoint at that point
};

[[noreturn]] void fail(const char* what, const ks::error& e) {
  std::fprintf(stderr, "bench_store: %s: %s\n", what, e.message.c_str());
  std::exit(1);
}

result run(const settings& cfg, size_t batch_size, ks::durability durability, uint64_t seed) {
  const std::string path = cfg.dir + "/bench-" + std::to_string(batch_size) +
                           (durability == ks::durability::fsync ? "-fsync" : "-none");
  std::filesystem::remove_all(path);
  ks::options o;
  o.path = path;
  o.durability = durability;
  o.map_size_bytes = 32ull << 30;
  o.transfers_resident_max = 100'000;
  if (cfg.index_transfers_max != 0) o.index_transfers_max = cfg.index_transfers_max;
  if (cfg.checkpoint_transfers_max != 0) o.checkpoint_transfers_max = cfg.checkpoint_transfers_max;
  o.checkpoint_on_close = false; // the reopen below measures recovery by replay
  ks::error err;
  auto s = ks::store::open(o, err);
  if (!s) fail("open", err);
  state_machine sm;
  {
    std::vector<account> accounts(cfg.accounts);
    for (uint32_t i = 0; i < cfg.accounts; ++i) {
      accounts[i] = account{};
      accounts[i].id = i + 1;
      accounts[i].ledger = 1;
      accounts[i].code = 1;
    }
    sm.create_accounts(accounts.data(), accounts.size(), wall_ns());
    if (err = s->commit(sm.changes_take()); !err.ok()) fail("commit accounts", err);
  }

  std::mt19937_64 rng(seed);
  std::vector<transfer> batch(batch_size);
  std::vector<uint64_t> latencies_ns;
  result r;
  std::vector<uint8_t> unindexed_after; // per commit: did it leave transfers unindexed
  std::vector<uint8_t> checkpointed;    // per commit: did it checkpoint the account rows
  uint64_t next_id = 1, write_ns = 0, sync_ns = 0, apply_ns = 0, commit_ns = 0;
  const auto start = clock_type::now();
  const uint64_t budget_ns = uint64_t(cfg.seconds * 1e9);
  const size_t commits_max = 10'000'000;
  while (ns_since(start) < budget_ns && r.commits < commits_max) {
    for (transfer& t : batch) {
      t = transfer{};
      t.id = cfg.random_ids ? make_u128(rng(), rng()) : make_u128(1, next_id++);
      const uint64_t x = rng();
      t.debit_account_id = 1 + (x % cfg.accounts);
      t.credit_account_id = 1 + ((x >> 32) % (cfg.accounts - 1));
      if (t.credit_account_id >= t.debit_account_id) t.credit_account_id += 1;
      t.amount = 1 + (x >> 48);
      t.ledger = 1;
      t.code = 1;
    }
    const auto t0 = clock_type::now();
    if (err = s->prefetch(sm, batch.data(), batch.size()); !err.ok()) fail("prefetch", err);
    sm.create_transfers(batch.data(), batch.size(), wall_ns());
    change_set changes = sm.changes_take();
    apply_ns += ns_since(t0);
    const auto t1 = clock_type::now();
    if (err = s->commit(changes); !err.ok()) fail("commit", err);
    const uint64_t latency = ns_since(t1);
    sm.transfers_evict(o.transfers_resident_max, sm.timestamp_last());
    commit_ns += latency;
    latencies_ns.push_back(latency);
    const ks::commit_stats& st = s->last_commit();
    unindexed_after.push_back(s->account_transfers_indexed() < sm.timestamp_last() ? 1 : 0);
    checkpointed.push_back(st.checkpoint ? 1 : 0);
    if (st.checkpoint) {
      ++r.checkpoints;
      r.checkpoint_ms += double(latency) / 1e6;
    } else if (st.transfers_indexed != 0) {
      ++r.indexes;
      r.index_ms += double(latency) / 1e6;
    } else {
      ++r.plain;
      r.plain_ms += double(latency) / 1e6;
    }
    write_ns += s->last_commit().write_ns;
    sync_ns += s->last_commit().sync_ns;
    r.events += changes.transfers_created.size();
    ++r.commits;
  }
  r.seconds = double(ns_since(start)) / 1e9;
  {
    size_t unindexed = 0;
    for (size_t i = r.commits; i-- > 0 && unindexed_after[i]; ) unindexed += batch_size;
    r.query_unindexed = unindexed;
    ks::account_filter f;
    f.limit = 10;
    f.reversed = true;
    std::vector<transfer> found;
    const auto q0 = clock_type::now();
    const int queries = 5;
    for (int q = 0; q < queries; ++q) {
      f.account_id = 1 + rng() % cfg.accounts;
      if (err = s->account_transfers(f, found); !err.ok()) fail("account_transfers", err);
    }
    r.query_ms = double(ns_since(q0)) / 1e6 / queries;
  }
  r.commit_seconds = double(commit_ns) / 1e9;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  r.p50_us = latencies_ns[latencies_ns.size() / 2] / 1000;
  r.p99_us = latencies_ns[std::min(latencies_ns.size() - 1, latencies_ns.size() * 99 / 100)] / 1000;
  r.write_ms_mean = double(write_ns) / 1e6 / double(r.commits);
  r.sync_ms_mean = double(sync_ns) / 1e6 / double(r.commits);
  r.apply_ms_mean = double(apply_ns) / 1e6 / double(r.commits);
  {
    size_t after_checkpoint = 0;
    for (size_t i = r.commits; i-- > 0 && !checkpointed[i];) after_checkpoint += batch_size;
    r.replayed = after_checkpoint;
  }
  s.reset(); // no checkpoint at close: as after kill -9
  {
    const auto o0 = clock_type::now();
    auto reopened = ks::store::open(o, err);
    if (!reopened) fail("reopen", err);
    r.open_ms = double(ns_since(o0)) / 1e6;
    state_machine loaded;
    const auto l0 = clock_type::now();
    if (err = reopened->load(loaded); !err.ok()) fail("load", err);
    r.load_ms = double(ns_since(l0)) / 1e6;
  }
  std::filesystem::remove_all(path);
  return r;
}

void print(size_t batch_size, const char* durability, const result& r) {
  std::printf("%6zu %-6s %12.0f %12.0f %10.0f %9llu %9llu %9.3f %9.3f %9.3f\n", batch_size,
              durability, double(r.events) / r.seconds, double(r.events) / r.commit_seconds,
              double(r.commits) / r.seconds, (unsigned long long)r.p50_us,
              (unsigned long long)r.p99_us, r.apply_ms_mean, r.write_ms_mean, r.sync_ms_mean);
  std::printf("       commits: %zu plain %.2f ms, %zu with bulk index %.2f ms, %zu with checkpoint "
              "%.2f ms (mean latency); account_transfers %.2f ms with %zu unindexed\n",
              r.plain, r.plain ? r.plain_ms / double(r.plain) : 0.0, r.indexes,
              r.indexes ? r.index_ms / double(r.indexes) : 0.0, r.checkpoints,
              r.checkpoints ? r.checkpoint_ms / double(r.checkpoints) : 0.0, r.query_ms,
              r.query_unindexed);
  std::printf("       recovery: open %.1f ms (replays %zu transfers), load %.1f ms\n", r.open_ms,
              r.replayed, r.load_ms);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  settings cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_store: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seconds") cfg.seconds = std::stod(value());
    else if (arg == "--accounts") cfg.accounts = uint32_t(std::stoul(value()));
    else if (arg == "--dir") cfg.dir = value();
    else if (arg == "--random-ids") cfg.random_ids = true;
    else if (arg == "--index-transfers") cfg.index_transfers_max = uint32_t(std::stoul(value()));
    else if (arg == "--checkpoint-transfers") cfg.checkpoint_transfers_max = uint32_t(std::stoul(value()));
    else if (arg == "--sizes") {
      cfg.sizes.clear();
      std::string list = value();
      for (size_t pos = 0; pos < list.size();) {
        size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        cfg.sizes.push_back(std::stoul(list.substr(pos, comma - pos)));
        pos = comma + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_store [--seconds S] [--accounts N] [--sizes 1,100,1000,8000] "
                   "[--dir DIR] [--random-ids] [--index-transfers N] [--checkpoint-transfers N]\n");
      return 2;
    }
  }
  if (cfg.accounts < 2 || cfg.seconds <= 0 || cfg.seconds > 600) {
    std::fprintf(stderr, "bench_store: need --accounts >= 2 and 0 < --seconds <= 600\n");
    return 2;
  }
  bool own_dir = cfg.dir.empty();
  if (own_dir) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/kassa-bench-store-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("bench_store: mkdtemp");
      return 1;
    }
    cfg.dir = pattern;
  }

  utsname u{};
  uname(&u);
  std::printf("bench_store: cpu %s, %u cores, kernel %s %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), u.sysname, u.release);
  std::printf("bench_store: %u accounts, random debit/credit pairs, %s transfer ids, %.1f s per "
              "size, dir %s\n",
              cfg.accounts, cfg.random_ids ? "random" : "sequential", cfg.seconds, cfg.dir.c_str());
  std::printf("%6s %-6s %12s %12s %10s %9s %9s %9s %9s %9s\n", "batch", "sync", "events/s",
              "commit_ev/s", "commits/s", "p50_us", "p99_us", "apply_ms", "write_ms", "sync_ms");
  uint64_t seed = 42;
  for (size_t size : cfg.sizes) print(size, "fsync", run(cfg, size, ks::durability::fsync, seed++));
  const size_t largest = *std::max_element(cfg.sizes.begin(), cfg.sizes.end());
  print(largest, "none", run(cfg, largest, ks::durability::none, seed++));
  std::printf("events/s: whole loop (generate, prefetch, apply, commit); commit_ev/s: commit time "
              "only; latency: one commit; apply/write/sync: mean ms per commit\n");
  if (own_dir) std::filesystem::remove_all(cfg.dir);
  return 0;
}
