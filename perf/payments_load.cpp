// kassa-payments-load: keeps a fixed number of top-ups in flight against a kassad running the
// payment core (closed loop) and prints throughput, latency and the count of each result code.
// Bounded in time and count; loopback only.
//
// usage: kassa-payments-load --address 127.0.0.1:3190 [--inflight 1000] [--per-request 10]
//                            [--connections 4] [--seconds 10] [--warmup 2] [--count M]
//                            [--accounts 1000] [--ledger 840] [--amount 100] [--seed 1]
//                            [--provider NAME[,NAME...]] [--request-timeout-ms 60000] [--no-setup]
// --inflight top-ups are in flight in total: --inflight / --per-request submit_payments
// requests, spread over the connections; each answered request is replaced by a new one at once.
// Top-ups answered during the first --warmup seconds are not measured; the run stops sending
// after --seconds (or once --count top-ups are sent) and waits for what is in flight.
// Top-up i (from 1) has key and order id (seed << 64) | i and credits account
// 1 + (i mod --accounts); the accounts 1..--accounts (ledger --ledger, code 1) are created first.
// Without --provider kassad's routing rules pick the channel; with a list, top-up i names
// provider i mod (list length), spreading the load over several channels.
// Latency is per request (one request = --per-request top-ups), from send to reply, counted
// once per top-up it carries; percentiles come from a log-bucketed histogram (~3% wide).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ledger/assert.hpp"
#include "ledger/payments/records.hpp"
#include "perf/machine.hpp"
#include "runtime/client/client.hpp"

using namespace kassa;
namespace lp = kassa::ledger::payments;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  std::string host = "127.0.0.1";
  uint16_t port = 3100;
  uint32_t inflight = 1000;
  uint32_t per_request = 10;
  uint32_t connections = 4;
  double seconds = 10;
  double warmup = 2;
  uint64_t count = 0; // 0: no bound but --seconds
  uint64_t accounts = 1000;
  uint32_t ledger = 840;
  uint64_t amount = 100;
  uint64_t seed = 1;
  std::vector<std::string> providers;
  uint32_t request_timeout_ms = 60000;
  bool setup = true;
};
constexpr uint64_t count_max = uint64_t{1} << 40; // a bound on the loop whatever the clock says
constexpr double drain_s_max = 120;              // waiting for the last replies

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "kassa-payments-load: %s\nsee the comment at the top of perf/payments_load.cpp\n", why.c_str());
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
    } else if (a == "--inflight") s.inflight = std::stoul(value());
    else if (a == "--per-request") s.per_request = std::stoul(value());
    else if (a == "--connections") s.connections = std::stoul(value());
    else if (a == "--seconds") s.seconds = std::stod(value());
    else if (a == "--warmup") s.warmup = std::stod(value());
    else if (a == "--count") s.count = std::stoull(value());
    else if (a == "--accounts") s.accounts = std::stoull(value());
    else if (a == "--ledger") s.ledger = std::stoul(value());
    else if (a == "--amount") s.amount = std::stoull(value());
    else if (a == "--seed") s.seed = std::stoull(value());
    else if (a == "--provider") {
      const std::string v = value() + ",";
      for (size_t from = 0, comma; (comma = v.find(',', from)) != std::string::npos; from = comma + 1)
        s.providers.push_back(v.substr(from, comma - from));
    }
    else if (a == "--request-timeout-ms") s.request_timeout_ms = std::stoul(value());
    else if (a == "--no-setup") s.setup = false;
    else usage("unknown argument " + a);
  }
  if (s.host != "127.0.0.1" && s.host != "localhost" && s.host != "::1") usage("load goes to loopback only");
  if (s.inflight == 0 || s.inflight > 1'000'000 || s.per_request == 0 || s.per_request > 8190 ||
      s.inflight % s.per_request != 0 || s.connections == 0 || s.connections > 256 ||
      s.connections > s.inflight / s.per_request || s.seconds <= 0 || s.seconds > 3600 || s.warmup < 0 ||
      s.warmup >= s.seconds || s.count > count_max || s.accounts == 0 || s.accounts > 10'000'000 ||
      s.ledger == 0 || s.amount == 0 ||
      std::any_of(s.providers.begin(), s.providers.end(),
                  [](const std::string& p) { return p.empty() || p.size() > lp::provider_name_bytes; }) ||
      s.request_timeout_ms == 0 || s.request_timeout_ms > 600'000) {
    usage("a setting is out of range (--inflight must be a multiple of --per-request, with at least "
          "one request a connection)");
  }
  return s;
}

// Latency in microseconds: exact below 64, then 32 buckets per power of two.
class histogram {
public:
  static constexpr int sub_bits = 5;
  static constexpr size_t buckets = 64 + (64 - 6) * 32;

  void add(uint64_t us, uint64_t weight) {
    counts_[bucket(us)] += weight;
    total_ += weight;
    max_ = std::max(max_, us);
  }
  void merge(const histogram& o) {
    for (size_t i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }
  // The upper bound of the bucket holding the p-th percentile, in microseconds.
  uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(p / 100.0 * double(total_) + 0.5));
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }
  uint64_t max() const { return max_; }
  uint64_t total() const { return total_; }

private:
  static size_t bucket(uint64_t v) {
    if (v < 64) return v;
    const int e = 63 - __builtin_clzll(v); // >= 6
    const uint64_t sub = (v >> (e - sub_bits)) & 31;
    return 64 + size_t(e - 6) * 32 + sub;
  }
  static uint64_t upper(size_t b) {
    if (b < 64) return b;
    const int e = int((b - 64) / 32) + 6;
    const uint64_t sub = (b - 64) % 32;
    return ((32 + sub + 1) << (e - sub_bits)) - 1;
  }
  std::array<uint64_t, buckets> counts_{};
  uint64_t total_ = 0, max_ = 0;
};

// What one connection saw. Touched only by that connection's io thread while the run lasts.
struct tally {
  histogram latency;
  uint64_t topups = 0;      // answered (with a reply, not an error) in the measured window
  uint64_t requests = 0;
  uint64_t warmup = 0;      // answered before it
  uint64_t drained = 0;     // answered after it
  uint64_t request_errors = 0;
  std::map<std::string, uint64_t> results;         // in the window, by result name
  std::map<std::string, uint64_t> drained_results; // after the window, not ok
};

struct run {
  settings s;
  clock_type::time_point start, measure_from, stop_at;
  std::atomic<uint64_t> next_counter{1};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> outstanding{0}; // requests sent and not answered
  std::mutex mutex;
  std::condition_variable idle;
  std::vector<std::unique_ptr<client::connection>> conns;
  std::vector<tally> tallies;
};

lp::payment_command topup(const settings& s, uint64_t i) {
  lp::payment_command c{};
  c.key = (u128{s.seed} << 64) | i;
  c.order_id = c.key;
  c.account_id = 1 + i % s.accounts;
  c.amount = s.amount;
  c.ledger = s.ledger;
  c.kind = uint16_t(lp::kind::topup);
  if (!s.providers.empty()) {
    const std::string& p = s.providers[i % s.providers.size()];
    std::memcpy(c.provider, p.data(), p.size());
  }
  return c;
}

void send_next(run& r, size_t conn);

// Runs on connection `conn`'s io thread.
void on_reply(run& r, size_t conn, clock_type::time_point sent, std::exception_ptr err, client::reply rep) {
  tally& t = r.tallies[conn];
  const auto now = clock_type::now();
  const bool before = now < r.measure_from;
  const bool after = now > r.stop_at || r.stopping.load();
  const uint32_t k = r.s.per_request;
  if (err) {
    ++t.request_errors;
    std::string why = "request:lost or timed out";
    try {
      std::rethrow_exception(err);
    } catch (const client::error& e) {
      if (e.kind == client::error_kind::status) why = "request:" + std::string(wire::name(e.status));
      else if (e.kind == client::error_kind::timeout) why = "request:timeout";
      else if (e.kind == client::error_kind::protocol) why = "request:protocol";
    } catch (...) {
    }
    if (!before) (after ? t.drained_results : t.results)[why] += k;
  } else {
    auto replies = wire::records<lp::payment_reply>(rep.body.data(), rep.body.size());
    if (replies.size() != k) ++t.request_errors;
    for (const auto& x : replies) {
      const std::string n(lp::name(static_cast<lp::payment_result>(x.result)));
      if (before) continue;
      if (after) {
        if (x.result != uint32_t(lp::payment_result::ok)) t.drained_results[n]++;
      } else {
        t.results[n]++;
      }
    }
  }
  if (before) {
    t.warmup += k;
  } else if (after) {
    t.drained += k;
  } else if (!err) {
    t.topups += k;
    ++t.requests;
    t.latency.add(uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count()), k);
  }
  // A refused or lost request ends its slot (the client already retried `busy`): a kassad
  // that is shutting down would otherwise be asked again in a tight loop.
  if (!err) send_next(r, conn);
  if (--r.outstanding == 0) {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.idle.notify_all();
  }
}

// One more request of --per-request top-ups on `conn`, unless the run is over.
void send_next(run& r, size_t conn) {
  const settings& s = r.s;
  if (r.stopping.load() || clock_type::now() >= r.stop_at) return;
  const uint64_t first = r.next_counter.fetch_add(s.per_request);
  const uint64_t bound = s.count != 0 ? s.count : count_max;
  if (first + s.per_request - 1 > bound) return;
  std::vector<uint8_t> body(sizeof(lp::payment_command) * s.per_request);
  for (uint32_t j = 0; j < s.per_request; ++j) {
    const lp::payment_command c = topup(s, first + j);
    std::memcpy(body.data() + j * sizeof c, &c, sizeof c);
  }
  ++r.outstanding;
  const auto sent = clock_type::now();
  wire::context ctx;
  ctx.trace_id = (u128{s.seed} << 64) | first;
  r.conns[conn]->send(wire::operation::submit_payments, std::move(body), s.per_request, ctx,
                      [&r, conn, sent](std::exception_ptr err, client::reply rep) {
                        on_reply(r, conn, sent, err, std::move(rep));
                      });
}

void setup(const settings& s) {
  client::blocking_client c;
  c.connect(s.host, s.port);
  std::vector<ledger::account> as;
  for (uint64_t id = 1; id <= s.accounts; ++id) {
    ledger::account a{};
    a.id = id;
    a.ledger = s.ledger;
    a.code = 1;
    as.push_back(a);
  }
  for (const auto& f : c.create_accounts(as)) {
    if (f.result != ledger::account_result::exists)
      usage("creating accounts failed: " + std::string(ledger::name(f.result)));
  }
  std::printf("setup: %llu accounts in ledger %u\n", (unsigned long long)s.accounts, s.ledger);
}

double ms(uint64_t us) { return double(us) / 1000.0; }

} // namespace

int main(int argc, char** argv) {
  run r;
  r.s = parse(argc, argv);
  const settings& s = r.s;
  std::printf("%s\n", kassa::perf::machine_description().c_str());
  try {
    if (s.setup) setup(s);
    client::options o;
    o.request_timeout = std::chrono::milliseconds(s.request_timeout_ms);
    for (uint32_t i = 0; i < s.connections; ++i) r.conns.push_back(client::connection::connect(s.host, s.port, o));
    r.tallies.resize(s.connections);
    const uint32_t requests = s.inflight / s.per_request;
    const uint32_t per_conn = (requests + s.connections - 1) / s.connections;
    if (per_conn > r.conns[0]->server_limits().requests_inflight_max)
      std::fprintf(stderr, "kassa-payments-load: %u requests a connection but kassad takes %u: the rest wait in the client\n",
                   per_conn, r.conns[0]->server_limits().requests_inflight_max);
    std::printf("keys: (%llu << 64) | 1 .. at most %llu\n", (unsigned long long)s.seed,
                (unsigned long long)(s.count != 0 ? s.count : count_max));
    std::fflush(stdout);
    r.start = clock_type::now();
    r.measure_from = r.start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s.warmup));
    r.stop_at = r.start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s.seconds));
    for (uint32_t q = 0; q < requests; ++q) send_next(r, q % s.connections);
    {
      // Wake at the deadline, or earlier once --count is done and answered.
      std::unique_lock<std::mutex> lock(r.mutex);
      r.idle.wait_until(lock, r.stop_at, [&] { return r.outstanding.load() == 0; });
    }
    r.stopping = true;
    const auto stopped = clock_type::now();
    {
      std::unique_lock<std::mutex> lock(r.mutex);
      const auto drain_until = stopped + std::chrono::milliseconds(s.request_timeout_ms) +
                               std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(5));
      const auto bound = std::min(drain_until, stopped + std::chrono::duration_cast<clock_type::duration>(
                                                             std::chrono::duration<double>(drain_s_max)));
      r.idle.wait_until(lock, bound, [&] { return r.outstanding.load() == 0; });
    }
    const uint64_t unanswered = r.outstanding.load();
    for (auto& c : r.conns) c->close(); // the io threads stop: the tallies are ours now
    const auto end = std::min(stopped, r.stop_at);
    const double window = std::max(0.0, std::chrono::duration<double>(end - r.measure_from).count());
    tally all;
    for (auto& t : r.tallies) {
      all.latency.merge(t.latency);
      all.topups += t.topups;
      all.requests += t.requests;
      all.warmup += t.warmup;
      all.drained += t.drained;
      all.request_errors += t.request_errors;
      for (auto& [k, v] : t.results) all.results[k] += v;
      for (auto& [k, v] : t.drained_results) all.drained_results[k] += v;
    }
    const uint64_t ok = all.results.count("ok") ? all.results["ok"] : 0;
    const uint64_t in_progress = all.results.count("in_progress") ? all.results["in_progress"] : 0;
    const uint64_t others = all.topups - std::min(all.topups, ok + in_progress);
    std::printf("payments inflight=%u per_request=%u connections=%u accounts=%llu seconds=%.2f warmup=%.1f "
                "topups=%llu ok=%llu in_progress=%llu other=%llu request_errors=%llu topups_per_s=%.0f "
                "ok_per_s=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
                s.inflight, s.per_request, s.connections, (unsigned long long)s.accounts, window, s.warmup,
                (unsigned long long)all.topups, (unsigned long long)ok, (unsigned long long)in_progress,
                (unsigned long long)others, (unsigned long long)all.request_errors,
                window > 0 ? double(all.topups) / window : 0.0, window > 0 ? double(ok) / window : 0.0,
                ms(all.latency.percentile(50)), ms(all.latency.percentile(90)), ms(all.latency.percentile(99)),
                ms(all.latency.percentile(99.9)), ms(all.latency.max()));
    for (auto& [k, v] : all.results) std::printf("  result %s: %llu\n", k.c_str(), (unsigned long long)v);
    std::printf("  outside the window: %llu answered in the warm-up, %llu after it, %llu unanswered\n",
                (unsigned long long)all.warmup, (unsigned long long)all.drained, (unsigned long long)unanswered);
    for (auto& [k, v] : all.drained_results)
      std::printf("  after the window, result %s: %llu\n", k.c_str(), (unsigned long long)v);
    return all.request_errors == 0 && unanswered == 0 ? 0 : 1;
  } catch (const client::error& e) {
    std::fprintf(stderr, "kassa-payments-load: %s\n", e.what());
    return 3;
  }
}
