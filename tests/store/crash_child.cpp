// The child of the store crash test: applies seeded random transfer batches through a state
// machine and the store, and after each successful commit prints
//   durable <commit sequence> <first transfer id> <last transfer id>
// The parent kills it with SIGKILL at a random moment and checks what was reported durable.
// Usage: store_crash_child DIR CYCLE SEED SECONDS_MAX
#include <sys/prctl.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <random>
#include <vector>

#include "tests/store/store_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;

namespace {

uint64_t wall_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

[[noreturn]] void die(const char* what, const std::string& message) {
  std::fprintf(stderr, "store_crash_child: %s: %s\n", what, message.c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: store_crash_child DIR CYCLE SEED SECONDS_MAX\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test
  const std::string dir = argv[1];
  const uint64_t cycle = std::strtoull(argv[2], nullptr, 10);
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  const double seconds_max = std::strtod(argv[4], nullptr);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(int64_t(seconds_max * 1e6));
  std::mt19937_64 rng(seed ^ (cycle * 0x9E3779B97F4A7C15ull));

  store::error err;
  // Checkpoints and bulk indexes every few commits, so that kills land between them and the
  // next open recovers by replaying the journal.
  store::options o = store_options(dir, store::durability::fsync);
  o.checkpoint_commits_max = 1 + uint32_t(rng() % 24);
  o.index_commits_max = 1 + uint32_t(rng() % 24);
  auto s = store::store::open(o, err);
  if (!s) die("open", err.message);
  state_machine sm;
  if (err = s->load(sm); !err.ok()) die("load", err.message);

  if (sm.account_count() == 0) {
    std::vector<account> accounts;
    for (uint32_t i = 1; i <= crash::accounts_count; ++i)
      accounts.push_back(make_account(i, 1, i <= 8 ? account_history : 0));
    for (auto r : sm.create_accounts(accounts.data(), accounts.size(), wall_ns()))
      if (r != account_result::ok) die("create_accounts", std::string(name(r)));
    if (err = s->commit(sm.changes_take()); !err.ok()) die("commit accounts", err.message);
  }

  std::vector<u128> open_pending; // this process's pending transfers without a timeout
  std::vector<transfer> batch;
  uint64_t index = 0; // transfer ids of this cycle: make_u128(cycle, ++index)
  const int commits_max = 100'000;
  for (int commit = 0; commit < commits_max && std::chrono::steady_clock::now() < deadline; ++commit) {
    const u128 first = make_u128(cycle, index + 1);
    const int batches = 1 + int(rng() % 3); // a group commit of 1..3 batches
    for (int b = 0; b < batches; ++b) {
      const uint64_t now = wall_ns();
      sm.expire_pending(now);
      batch.clear();
      const size_t size = 1 + rng() % 300;
      for (size_t i = 0; i < size; ++i) {
        const u128 id = make_u128(cycle, ++index);
        const uint64_t kind = rng() % 10;
        transfer t;
        if (kind >= 8 && !open_pending.empty()) {
          const size_t pick = rng() % open_pending.size();
          t = make_resolve(id, open_pending[pick], kind == 8 ? transfer_post_pending : transfer_void_pending);
          open_pending[pick] = open_pending.back();
          open_pending.pop_back();
        } else {
          t = make_transfer(id, crash::debit_of(id), crash::credit_of(id), crash::amount_of(id));
          if (kind == 6 || kind == 7) {
            t.flags = transfer_pending;
            if (kind == 6) t.timeout = 1; // left to expire
            else open_pending.push_back(id);
          }
        }
        t.user_data_64 = crash::mix(id);
        batch.push_back(t);
      }
      if (err = s->prefetch(sm, batch.data(), batch.size()); !err.ok()) die("prefetch", err.message);
      auto results = sm.create_transfers(batch.data(), batch.size(), now);
      for (size_t i = 0; i < results.size(); ++i)
        if (results[i] != transfer_result::ok) die("create_transfers", std::string(name(results[i])));
    }
    const u128 last = make_u128(cycle, index);
    if (err = s->commit(sm.changes_take()); !err.ok()) die("commit", err.message);
    std::printf("durable %llu %s %s\n", (unsigned long long)s->commit_sequence(),
                to_string_u128(first).c_str(), to_string_u128(last).c_str());
    std::fflush(stdout);
    sm.transfers_evict(s->opts().transfers_resident_max, sm.timestamp_last());
  }
  return 0;
}
