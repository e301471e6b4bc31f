// kassa_load: drives kassad with batched transfers over several pipelined connections and
// prints throughput and request latency. Bounded in time and count; loopback only.
//
// usage: kassa_load --address 127.0.0.1:3100 [--mix uniform|hot] [--hot-percent 90]
//                   [--connections 4] [--depth 4] [--batch 2000] [--accounts 100000]
//                   [--seconds 10] [--setup] [--seed 1]
// --setup creates the accounts 1..N with debits_must_not_exceed_credits and funds each from
// a bank account (id N+1), as the PostgreSQL peer starts every account with a balance.
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
  uint64_t requests_max = 10'000'000; // a bound on the loop whatever the clock says
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "kassa_load: %s\nsee the comment at the top of perf/kassa_load.cpp\n", why.c_str());
  std::exit(2);
}

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
    else usage("unknown argument " + a);
  }
  if (s.host != "127.0.0.1" && s.host != "localhost" && s.host != "::1") usage("load goes to loopback only");
  if (s.connections == 0 || s.connections > 256 || s.depth == 0 || s.batch == 0 || s.accounts < 2 ||
      s.seconds <= 0 || s.seconds > 3600 || s.hot_percent > 100) {
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
    t.amount = 1'000'000'000'000ull;
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

void work(const settings& s, uint32_t index, clock_type::time_point deadline, worker_result& out) {
  std::mt19937_64 rng(s.seed * 1000003 + index);
  auto conn = client::connection::connect(s.host, s.port);
  // Ids: run seed and connection in the high bits, a counter below: unique across runs that
  // use different seeds, and across connections.
  u128 next_id = (u128{s.seed} << 80) | (u128{index} << 56) | 1;
  struct inflight {
    std::future<std::vector<create_transfer_outcome>> result;
    clock_type::time_point sent;
    size_t events;
  };
  std::deque<inflight> window;
  auto send = [&] {
    std::vector<transfer> ts(s.batch);
    for (auto& t : ts) {
      t = transfer{};
      t.id = next_id++;
      const bool hot = s.mix == "hot" && rng() % 100 < s.hot_percent;
      t.credit_account_id = hot ? 1 : 1 + rng() % s.accounts;
      do {
        t.debit_account_id = 1 + rng() % s.accounts;
      } while (t.debit_account_id == t.credit_account_id);
      t.amount = 1;
      t.ledger = 1;
      t.code = 1;
    }
    window.push_back({conn->create_transfers(std::move(ts)), clock_type::now(), s.batch});
  };
  while (clock_type::now() < deadline && out.requests < s.requests_max) {
    while (window.size() < s.depth) send();
    inflight f = std::move(window.front());
    window.pop_front();
    try {
      auto failures = f.result.get();
      out.transfers += f.events - failures.size();
      out.failed += failures.size();
      for (const auto& x : failures) out.failures[std::string(name(x.result))]++;
    } catch (const client::error& e) {
      out.errors++;
      out.failures[std::string("request:") + std::string(wire::name(e.status))]++;
    }
    out.requests++;
    out.latency_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - f.sent).count());
  }
  for (auto& f : window) { // drain what is in flight; not counted
    try {
      f.result.get();
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
    std::vector<worker_result> results(s.connections);
    std::vector<std::thread> threads;
    const auto start = clock_type::now();
    const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s.seconds));
    for (uint32_t i = 0; i < s.connections; ++i) {
      threads.emplace_back([&, i] { work(s, i, deadline, results[i]); });
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
