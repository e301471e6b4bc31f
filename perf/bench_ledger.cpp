// In-memory ledger apply rate: create_transfers on one core, no I/O.
// Usage: bench_ledger [accounts=10000] [seconds=3] [batch=8190] [resident=1000000]
// The clock starts once the resident transfer cache is full, as in a server that has run a
// while: every batch then also pays for eviction.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "ledger/state_machine.hpp"
#include "perf/machine.hpp"

using namespace kassa;
using namespace kassa::ledger;

int main(int argc, char** argv) {
  const size_t accounts = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const size_t batch = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 8190;
  const size_t resident = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1'000'000;
  if (accounts < 2 || batch == 0 || seconds <= 0) {
    std::fprintf(stderr, "usage: bench_ledger [accounts>=2] [seconds>0] [batch>0]\n");
    return 2;
  }
  std::printf("%s\n", kassa::perf::machine_description().c_str());

  state_machine sm;
  std::vector<account> as(accounts);
  for (size_t i = 0; i < accounts; ++i) {
    as[i] = account{};
    as[i].id = i + 1;
    as[i].ledger = 1;
    as[i].code = 1;
  }
  sm.create_accounts(as.data(), as.size(), 1);
  sm.changes_take();

  std::mt19937_64 rng(42);
  std::vector<transfer> events(batch);
  u128 next_id = 1;
  uint64_t now_ns = 1'000'000'000;
  auto fill = [&] {
    for (auto& t : events) {
      t = transfer{};
      t.id = next_id++;
      t.debit_account_id = 1 + rng() % accounts;
      t.credit_account_id = 1 + (t.debit_account_id + rng() % (accounts - 1)) % accounts;
      t.amount = 1 + rng() % 1000;
      t.ledger = 1;
      t.code = 1;
    }
  };
  while (sm.transfer_resident_count() + batch <= resident) { // warm-up, not timed
    fill();
    sm.create_transfers(events.data(), events.size(), now_ns);
    sm.changes_take();
    now_ns += 1'000'000;
  }
  uint64_t applied = 0, failed = 0, batches = 0;
  using clock = std::chrono::steady_clock;
  auto cpu_seconds = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
  };
  const double cpu_start = cpu_seconds();
  const auto start = clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (clock::now() < deadline && batches < 1'000'000) {
    fill();
    auto results = sm.create_transfers(events.data(), events.size(), now_ns);
    for (auto r : results) failed += r != transfer_result::ok;
    applied += results.size();
    sm.changes_take();
    sm.transfers_evict(resident, sm.timestamp_last());
    now_ns += 1'000'000;
    ++batches;
  }
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  // Per CPU second as well as per wall second: on a shared machine the thread does not get a
  // whole core, and the CPU figure is what one core sustains.
  std::printf("bench=ledger_apply accounts=%zu resident=%zu batch=%zu transfers=%llu failed=%llu seconds=%.2f "
              "cpu_seconds=%.2f transfers_per_s=%.0f transfers_per_cpu_s=%.0f\n",
              accounts, resident, batch, (unsigned long long)applied, (unsigned long long)failed, elapsed,
              cpu, applied / elapsed, applied / cpu);
  return failed == 0 ? 0 : 1;
}
