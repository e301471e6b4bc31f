// kassa_load: drives kassad with batched transfers over several pipelined connections and
// prints throughput and request latency. Bounded in time and count; loopback only.
//
// usage: kassa_load --address 127.0.0.1:3100 [--mix uniform|hot] [--hot-percent 90]
//                   [--connections 4] [--depth 4] [--batch 2000] [--accounts 100000]
//                   [--seconds 10] [--setup] [--funding 1000000000000] [--seed 1]
//                   [--transfer-amount 1] [--acked-log FILE]
// --setup creates the accounts 1..N with debits_must_not_exceed_credits and funds each from
// a bank account (id N+1) with --funding, as the PostgreSQL peer starts every account with a
// balance.
// Transfer ids are (seed << 80) | (connection << 56) | counter, the counter counting from 1 on
// each connection, so one request holds consecutive ids and runs with different seeds never
// share an id. Each transfer carries its accounts in user_data_128 (debit << 64 | credit) and
// its amount in user_data_64, so a checker can tell a stored transfer from a damaged one.
// --acked-log FILE appends, after each acknowledged create_transfers request, one line
// `<first_id_hex> <count> <failed indexes, comma separated, or ->`, flushed at once: a line is
// there only if kassad acknowledged the request. The first line is a `#` header with the
// settings (tests/reliability/acked_check.cpp reads it).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ledger/assert.hpp"
#include "perf/machine.hpp"
#include "runtime/client/client.hpp"

using namespace kassa;
using namespace kassa::ledger;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  std::string host = "127.0.0.1";
  uint16_t port = 3100;
  std::string mix = "uniform";
  uint32_t hot_percent = 90;
  uint32_t connections = 4;
  uint32_t depth = 4;
  uint32_t batch = 2000;
  uint64_t accounts = 100000;
  double seconds = 10;
  bool setup = false;
  uint64_t seed = 1;
  uint64_t funding = 1'000'000'000'000ull;
  uint64_t transfer_amount = 1;
  std::string acked_log;
  uint64_t requests_max = 10'000'000; // a bound on the loop whatever the clock says
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "kassa_load: %s\nsee the comment at the top of perf/kassa_load.cpp\n", why.c_str());
  std::exit(2);
}

// Id layout (see the top): the seed must stay below the funding ids (1 << 100), the counter
// below the connection bits.
constexpr uint64_t seed_max = (uint64_t{1} << 20) - 1;
constexpr uint64_t connection_ids_max = uint64_t{1} << 56;

u128 first_transfer_id(uint64_t seed, uint32_t connection) {
  return (u128{seed} << 80) | (u128{connection} << 56) | 1;
}

std::string hex(u128 v) {
  char digits[33];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[static_cast<unsigned>(v & 0xf)];
    v >>= 4;
  } while (v != 0 && n < 32);
  std::string out = "0x";
  while (n > 0) out += digits[--n];
  return out;
}

// The acknowledged-requests log of --acked-log; shared by the connections' threads.
class acked_log {
public:
  explicit acked_log(const settings& s) {
    if (s.acked_log.empty()) return;
    file_ = std::fopen(s.acked_log.c_str(), "a");
    if (file_ == nullptr) usage("cannot open --acked-log " + s.acked_log);
    std::fprintf(file_, "# kassa_load acked-log seed=%llu accounts=%llu transfer_amount=%llu mix=%s\n",
                 (unsigned long long)s.seed, (unsigned long long)s.accounts,
                 (unsigned long long)s.transfer_amount, s.mix.c_str());
    std::fflush(file_);
  }
  ~acked_log() {
    if (file_ != nullptr) std::fclose(file_);
  }
  acked_log(const acked_log&) = delete;
  acked_log& operator=(const acked_log&) = delete;

  void record(u128 first_id, size_t count, const std::vector<create_transfer_outcome>& failures) {
    if (file_ == nullptr) return;
    std::string line = hex(first_id) + " " + std::to_string(count) + " ";
    if (failures.empty()) line += "-";
    for (size_t i = 0; i < failures.size(); ++i) {
      if (i > 0) line += ",";
      line += std::to_string(failures[i].index);
    }
    line += "\n";
    std::lock_guard<std::mutex> lock(mutex_);
    if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
      std::fprintf(stderr, "kassa_load: writing --acked-log failed\n");
      std::exit(3); // a log that misses acknowledged requests would mislead its checker
    }
  }

private:
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--address") {
      const std::string v = value();
      const size_t colon = v.rfind(':');
      if (colon == std::string::npos) usage("--address is HOST:PORT");
      s.host = v.substr(0, colon);
      s.port = static_cast<uint16_t>(std::stoul(v.substr(colon + 1)));
    } else if (a == "--mix") {
      s.mix = value();
      if (s.mix != "uniform" && s.mix != "hot") usage("--mix is uniform or hot");
    } else if (a == "--hot-percent") s.hot_percent = std::stoul(value());
    else if (a == "--connections") s.connections = std::stoul(value());
    else if (a == "--depth") s.depth = std::stoul(value());
    else if (a == "--batch") s.batch = std::stoul(value());
    else if (a == "--accounts") s.accounts = std::stoull(value());
    else if (a == "--seconds") s.seconds = std::stod(value());
    else if (a == "--seed") s.seed = std::stoull(value());
    else if (a == "--setup") s.setup = true;
    else if (a == "--funding") s.funding = std::stoull(value());
    else if (a == "--transfer-amount") s.transfer_amount = std::stoull(value());
    else if (a == "--acked-log") s.acked_log = value();
    else usage("unknown argument " + a);
  }
  if (s.host != "127.0.0.1" && s.host != "localhost" && s.host != "::1") usage("load goes to loopback only");
  if (s.connections == 0 || s.connections > 256 || s.depth == 0 || s.depth > 4096 || s.batch == 0 ||
      s.batch > (1u << 20) || s.accounts < 2 ||
      s.seconds <= 0 || s.seconds > 3600 || s.hot_percent > 100 || s.seed > seed_max || s.transfer_amount == 0 ||
      (s.requests_max + s.depth) * s.batch >= connection_ids_max) {
    usage("a setting is out of range");
  }
  return s;
}

void setup(const settings& s) {
  client::blocking_client c;
  c.connect(s.host, s.port);
  const u128 bank = s.accounts + 1;
  std::vector<account> as;
  for (u128 id = 1; id <= bank; ++id) {
    account a{};
    a.id = id;
    a.ledger = 1;
    a.code = 1;
    a.flags = id == bank ? 0 : account_debits_must_not_exceed_credits;
    as.push_back(a);
  }
  auto failed = c.create_accounts(as);
  for (const auto& f : failed) {
    if (f.result != account_result::exists) usage("creating accounts failed: " + std::string(name(f.result)));
  }
  std::vector<transfer> funding;
  for (u128 id = 1; id <= s.accounts; ++id) {
    transfer t{};
    t.id = (u128{1} << 100) + id; // funding ids stay clear of the load's
    t.debit_account_id = bank;
    t.credit_account_id = id;
    t.amount = s.funding;
    t.ledger = 1;
    t.code = 1;
    funding.push_back(t);
  }
  auto ffailed = c.create_transfers(funding);
  for (const auto& f : ffailed) {
    if (f.result != transfer_result::exists) usage("funding failed: " + std::string(name(f.result)));
  }
  std::printf("setup: %llu accounts funded\n", (unsigned long long)s.accounts);
}

struct worker_result {
  uint64_t transfers = 0, failed = 0, requests = 0, errors = 0;
  std::vector<double> latency_ms;
  std::map<std::string, uint64_t> failures;
};

void work(const settings& s, uint32_t index, clock_type::time_point deadline, acked_log& log, worker_result& out) {
  std::mt19937_64 rng(s.seed * 1000003 + index);
  auto conn = client::connection::connect(s.host, s.port);
  const u128 id_min = first_transfer_id(s.seed, index);
  u128 next_id = id_min; // consecutive within a request: --acked-log relies on it
  struct inflight {
    std::future<std::vector<create_transfer_outcome>> result;
    clock_type::time_point sent;
    u128 first_id;
    size_t events;
  };
  std::deque<inflight> window;
  auto send = [&] {
    std::vector<transfer> ts(s.batch);
    const u128 first_id = next_id;
    for (auto& t : ts) {
      t = transfer{};
      t.id = next_id++;
      const bool hot = s.mix == "hot" && rng() % 100 < s.hot_percent;
      t.credit_account_id = hot ? 1 : 1 + rng() % s.accounts;
      // Any account but the credit one, in one draw.
      t.debit_account_id = 1 + rng() % (s.accounts - 1);
      if (t.debit_account_id >= t.credit_account_id) t.debit_account_id++;
      t.amount = s.transfer_amount;
      t.ledger = 1;
      t.code = 1;
      t.user_data_128 = make_u128(static_cast<uint64_t>(t.debit_account_id), static_cast<uint64_t>(t.credit_account_id));
      t.user_data_64 = s.transfer_amount;
    }
    KASSA_ASSERT(next_id - id_min < connection_ids_max);
    window.push_back({conn->create_transfers(std::move(ts)), clock_type::now(), first_id, s.batch});
  };
  while (clock_type::now() < deadline && out.requests < s.requests_max) {
    while (window.size() < s.depth) send();
    inflight f = std::move(window.front());
    window.pop_front();
    try {
      auto failures = f.result.get();
      log.record(f.first_id, f.events, failures);
      out.transfers += f.events - failures.size();
      out.failed += failures.size();
      for (const auto& x : failures) out.failures[std::string(name(x.result))]++;
    } catch (const client::error& e) {
      out.errors++;
      out.failures[std::string("request:") +
                   (e.kind == client::error_kind::status ? std::string(wire::name(e.status)) : "lost or timed out")]++;
      if (e.kind == client::error_kind::connection) break; // kassad is gone; the rest fail alike
    }
    out.requests++;
    out.latency_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - f.sent).count());
  }
  for (auto& f : window) { // drain what is in flight; logged when acknowledged, not counted
    try {
      log.record(f.first_id, f.events, f.result.get());
    } catch (const client::error&) {
    }
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()))];
}

} // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  std::printf("%s\n", kassa::perf::machine_description().c_str());
  try {
    if (s.setup) setup(s);
    acked_log log(s);
    for (uint32_t i = 0; i < s.connections; ++i) {
      const u128 first = first_transfer_id(s.seed, i);
      std::printf("ids: connection %u from %s to at most %s\n", i, hex(first).c_str(),
                  hex(first + (s.requests_max + s.depth) * s.batch - 1).c_str());
    }
    std::fflush(stdout);
    std::vector<worker_result> results(s.connections);
    std::vector<std::thread> threads;
    const auto start = clock_type::now();
    const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s.seconds));
    for (uint32_t i = 0; i < s.connections; ++i) {
      threads.emplace_back([&, i] {
        try {
          work(s, i, deadline, log, results[i]);
        } catch (const client::error& e) { // connect failed
          std::fprintf(stderr, "kassa_load: connection %u: %s\n", i, e.what());
          results[i].errors++;
          results[i].failures["connect"]++;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    worker_result all;
    for (auto& r : results) {
      all.transfers += r.transfers;
      all.failed += r.failed;
      all.requests += r.requests;
      all.errors += r.errors;
      all.latency_ms.insert(all.latency_ms.end(), r.latency_ms.begin(), r.latency_ms.end());
      for (auto& [k, v] : r.failures) all.failures[k] += v;
    }
    std::printf("kassa mix=%s hot_percent=%u connections=%u depth=%u batch=%u accounts=%llu seconds=%.1f "
                "transfers=%llu failed=%llu request_errors=%llu transfers_per_s=%.0f request_p50_ms=%.2f "
                "request_p99_ms=%.2f request_max_ms=%.2f\n",
                s.mix.c_str(), s.mix == "hot" ? s.hot_percent : 0, s.connections, s.depth, s.batch,
                (unsigned long long)s.accounts, elapsed, (unsigned long long)all.transfers,
                (unsigned long long)all.failed, (unsigned long long)all.errors, all.transfers / elapsed,
                percentile(all.latency_ms, 50), percentile(all.latency_ms, 99), percentile(all.latency_ms, 100));
    for (auto& [k, v] : all.failures) std::printf("  failures %s: %llu\n", k.c_str(), (unsigned long long)v);
    return all.errors == 0 ? 0 : 1;
  } catch (const client::error& e) {
    std::fprintf(stderr, "kassa_load: %s\n", e.what());
    return 3;
  }
}
