// Kill -9 at a random moment: everything a commit reported durable is still there, and the
// store verifies. The child program (crash_child.cpp) does the writing.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "ledger/store/verify.hpp"
#include "tests/seed.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
namespace ks = kassa::ledger::store;

namespace {

struct durable_line {
  uint64_t sequence;
  u128 first, last;
};

struct child_run {
  std::vector<durable_line> durable;
  bool killed = false;
  int status = 0;
};

// Starts the child, reads its lines, SIGKILLs it `kill_after` after start (unless it ended
// before) and collects every complete line it wrote.
child_run run_child(const std::string& dir, uint64_t cycle, uint64_t seed,
                    std::chrono::milliseconds kill_after) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const std::string cycle_text = std::to_string(cycle), seed_text = std::to_string(seed);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(KASSA_STORE_CRASH_CHILD, KASSA_STORE_CRASH_CHILD, dir.c_str(), cycle_text.c_str(),
          seed_text.c_str(), "10", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  child_run run;
  std::string buffer;
  const auto kill_at = std::chrono::steady_clock::now() + kill_after;
  bool open = true;
  char chunk[4096];
  while (open) {
    const auto now = std::chrono::steady_clock::now();
    if (!run.killed && now >= kill_at) {
      kill(pid, SIGKILL);
      run.killed = true;
    }
    int wait_ms = run.killed ? 1000 : int(std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - now).count()) + 1;
    pollfd p{fds[0], POLLIN, 0};
    int ready = poll(&p, 1, wait_ms);
    if (ready <= 0) continue; // timeout: the kill check above runs again
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) {
      open = false;
      break;
    }
    buffer.append(chunk, size_t(n));
  }
  close(fds[0]);
  REQUIRE(waitpid(pid, &run.status, 0) == pid);
  // Only complete lines count: the child may die in the middle of printing one.
  std::istringstream lines(buffer.substr(0, buffer.rfind('\n') + 1));
  std::string word, seq, first, last;
  while (lines >> word >> seq >> first >> last) {
    REQUIRE(word == "durable");
    durable_line d{std::stoull(seq), 0, 0};
    REQUIRE(parse_u128(first, d.first));
    REQUIRE(parse_u128(last, d.last));
    run.durable.push_back(d);
  }
  return run;
}

void require_present(const ks::store& s, const durable_line& d) {
  std::vector<u128> ids;
  for (u128 id = d.first; id <= d.last; ++id) ids.push_back(id);
  std::vector<transfer> found;
  REQUIRE(s.lookup_transfers(ids.data(), ids.size(), found).ok());
  INFO("commit " << d.sequence << " reported durable");
  REQUIRE(found.size() == ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const transfer& t = found[i];
    REQUIRE(t.id == ids[i]);
    REQUIRE(t.user_data_64 == crash::mix(t.id));
    if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
      std::vector<transfer> pending;
      REQUIRE(s.lookup_transfers(&t.pending_id, 1, pending).ok());
      REQUIRE(pending.size() == 1);
      REQUIRE(has(pending[0].flags, transfer_pending));
      REQUIRE(t.debit_account_id == pending[0].debit_account_id);
      REQUIRE(t.credit_account_id == pending[0].credit_account_id);
    } else {
      REQUIRE(t.debit_account_id == crash::debit_of(t.id));
      REQUIRE(t.credit_account_id == crash::credit_of(t.id));
      REQUIRE(t.amount == crash::amount_of(t.id));
    }
  }
}

} // namespace

TEST_CASE("every commit reported durable survives kill -9, and the store verifies", "[store][crash]") {
  const uint64_t seed = kassa::test::seed("store crash");
  std::mt19937_64 rng(seed);
  temp_dir dir;
  std::vector<durable_line> durable;
  uint64_t killed_runs = 0;
  const uint64_t cycles = 6;
  for (uint64_t cycle = 1; cycle <= cycles; ++cycle) {
    const auto kill_after = std::chrono::milliseconds(20 + rng() % 400);
    child_run run = run_child(dir.path, cycle, rng(), kill_after);
    INFO("cycle " << cycle << ", kill after " << kill_after.count() << " ms, seed " << seed);
    if (run.killed) {
      ++killed_runs;
      // Killed, or finished on its own just before the signal.
      REQUIRE(((WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL) ||
               (WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0)));
    } else {
      REQUIRE((WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0));
    }
    durable.insert(durable.end(), run.durable.begin(), run.durable.end());
    std::printf("store crash: cycle %llu: %s after %lld ms, %zu commits reported durable\n",
                (unsigned long long)cycle, run.killed ? "killed" : "exited",
                (long long)kill_after.count(), run.durable.size());

    ks::verify_report report = ks::verify(dir.path);
    INFO(report.summary);
    for (const auto& p : report.problems) UNSCOPED_INFO(p);
    REQUIRE(report.consistent);
    std::printf("store crash: cycle %llu: %llu transfers after the account checkpoint\n",
                (unsigned long long)cycle, (unsigned long long)report.replayed);

    // Recovery replays the journal after the last checkpoint. On odd cycles a checkpoint then
    // writes the replayed rows and a second recovery must load the same state; on even ones
    // the next child starts from the replay.
    ks::options o = store_options(dir.path);
    o.checkpoint_on_close = false;
    ks::error err;
    auto s = ks::store::open(o, err);
    INFO(err.message);
    REQUIRE(s);
    if (!run.durable.empty()) REQUIRE(s->commit_sequence() >= run.durable.back().sequence);
    for (const durable_line& d : durable) require_present(*s, d);
    state_machine sm;
    REQUIRE(s->load(sm).ok());
    std::vector<u128> ids;
    for (uint32_t i = 1; i <= crash::accounts_count; ++i) ids.push_back(i);
    std::vector<account> found;
    REQUIRE(s->lookup_accounts(ids.data(), ids.size(), found).ok());
    REQUIRE(found.size() == sm.account_count());
    for (const account& a : found) REQUIRE(std::memcmp(&a, sm.account_find(a.id), sizeof a) == 0);
    if (cycle % 2 == 1) {
      REQUIRE(s->checkpoint().ok());
      s.reset();
      s = ks::store::open(o, err);
      REQUIRE(s);
      state_machine again;
      REQUIRE(s->load(again).ok());
      REQUIRE(again.account_count() == sm.account_count());
      sm.accounts_for_each([&](const account& a) {
        REQUIRE(std::memcmp(&a, again.account_find(a.id), sizeof a) == 0);
      });
      s.reset();
      report = ks::verify(dir.path);
      INFO(report.summary);
      REQUIRE(report.consistent);
    }
  }
  CHECK(killed_runs > 0);
  CHECK(!durable.empty());
}
