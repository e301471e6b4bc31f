// kassa-bench: kassa's load generator. Runs the scenarios of YAML files (perf/scenarios/)
// against a kassad on loopback and writes JSON lines of results; docs/performance.md says how
// to run it, what a scenario holds and what the results mean.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "perf/bench/acked_log.hpp"
#include "perf/bench/driver.hpp"
#include "perf/bench/metrics.hpp"
#include "perf/bench/results.hpp"
#include "perf/bench/scenario.hpp"
#include "perf/bench/setup.hpp"
#include "perf/bench/workload.hpp"
#include "perf/machine.hpp"
#include "runtime/client/client.hpp"

using namespace kassa;
using namespace kassa::bench;

namespace {

const char* const usage_text =
    "usage: kassa-bench --address HOST:PORT [options] SCENARIOS.yaml...\n"
    "Runs every scenario of the files (or those named by --scenario) against kassad, one after\n"
    "another. Loopback only. Options:\n"
    "  --scenario NAME        run only this scenario (repeatable)\n"
    "  --set KEY=VALUE        override a knob of every scenario (repeatable; docs/performance.md)\n"
    "  --connections N, --events N, --depth N, --duration-s N, --requests-max N, --accounts N,\n"
    "  --seed N               the same as --set KEY=N\n"
    "  --rate N               open loop at N requests/s (--set loop=open --set rate_per_s=N)\n"
    "  --no-setup             do not create and fund the accounts (--set setup=false)\n"
    "  --threads N            event loop threads driving the connections (default 1, at most 8)\n"
    "  --out FILE             JSON lines of results (default perf/results/bench-<UTC time>.jsonl)\n"
    "  --acked-log FILE       every acknowledged transfer request (for tests/reliability/acked_check)\n"
    "                         or payment command (for tests/reliability/payments_check)\n"
    "  --shadow               set the shadow flag in every request: kassad uses its shadow store\n"
    "  --metrics HOST:PORT    scrape kassad's /metrics before and after each scenario\n"
    "  --client-id N --key-file PATH   authenticate (when kassad's access.required is set);\n"
    "                         --client-key-file is the same; default $KASSA_CLIENT_ID and\n"
    "                         $KASSA_CLIENT_KEY_FILE, as for kassa\n"
    "  --quiet                no progress line on stderr\n"
    "Exit status: 0 every request answered ok, 1 some request failed or went unanswered,\n"
    "2 bad usage or scenario, 3 kassad could not be set up or reached, or a result not written.\n";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "kassa-bench: %s\n%s", why.c_str(), usage_text);
  std::exit(2);
}

struct options {
  std::string address, out, acked_log_path, metrics;
  std::vector<std::string> files, only, overrides;
  uint32_t threads = 1;
  bool shadow = false, quiet = false;
  uint64_t client_id = 0;
  std::string key_file;
  std::string command;
};

uint64_t number(const std::string& flag, const std::string& text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos)
    usage(flag + " needs a whole number, got '" + text + "'");
  return std::stoull(text);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 0; i < argc; ++i) o.command += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    auto knob = [&](const char* key) { o.overrides.push_back(std::string(key) + "=" + std::to_string(number(a, value()))); };
    if (a == "--help" || a == "-h") {
      std::printf("%s", usage_text);
      std::exit(0);
    } else if (a == "--address") o.address = value();
    else if (a == "--scenario") o.only.push_back(value());
    else if (a == "--set") o.overrides.push_back(value());
    else if (a == "--connections") knob("connections");
    else if (a == "--events") knob("events");
    else if (a == "--depth") knob("depth");
    else if (a == "--duration-s") knob("duration_s");
    else if (a == "--requests-max") knob("requests_max");
    else if (a == "--accounts") knob("accounts");
    else if (a == "--seed") knob("seed");
    else if (a == "--rate") {
      o.overrides.push_back("loop=open");
      knob("rate_per_s");
    } else if (a == "--no-setup") o.overrides.push_back("setup=false");
    else if (a == "--threads") {
      o.threads = uint32_t(number(a, value()));
      if (o.threads < 1 || o.threads > 8) usage("--threads is 1 .. 8");
    } else if (a == "--out") o.out = value();
    else if (a == "--acked-log") o.acked_log_path = value();
    else if (a == "--shadow") o.shadow = true;
    else if (a == "--metrics") o.metrics = value();
    else if (a == "--client-id") o.client_id = number(a, value());
    else if (a == "--key-file" || a == "--client-key-file") o.key_file = value();
    else if (a == "--quiet") o.quiet = true;
    else if (!a.empty() && a[0] == '-') usage("unknown option " + a);
    else o.files.push_back(a);
  }
  if (o.client_id == 0) {
    if (const char* id = std::getenv("KASSA_CLIENT_ID"); id != nullptr && *id != '\0') o.client_id = number("$KASSA_CLIENT_ID", id);
  }
  if (o.key_file.empty()) {
    if (const char* f = std::getenv("KASSA_CLIENT_KEY_FILE"); f != nullptr && *f != '\0') o.key_file = f;
  }
  if (o.address.empty()) usage("--address HOST:PORT is required");
  if (o.files.empty()) usage("name at least one scenario file");
  if (!o.key_file.empty() && o.client_id == 0) usage("--key-file needs --client-id");
  return o;
}

std::string utc_now(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot read the scenario file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  std::vector<scenario> scenarios;
  try {
    for (const auto& f : o.files) {
      for (auto& s : load_scenarios(read_file(f), f, o.overrides, o.only)) scenarios.push_back(std::move(s));
    }
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "kassa-bench: %s\n", e.what());
    return 2;
  }
  for (const auto& n : o.only) {
    bool found = false;
    for (const auto& s : scenarios) found = found || s.name == n;
    if (!found) usage("no scenario named '" + n + "' in the files");
  }
  if (!o.acked_log_path.empty()) {
    for (const auto& s : scenarios) {
      if (s.kind == scenario_kind::payments) continue;
      if (s.kind != scenario_kind::transfers && s.kind != scenario_kind::hot)
        usage("--acked-log is for transfers, hot and payments scenarios; '" + s.name + "' is " + std::string(name(s.kind)));
      if (s.amount_min != s.amount_max || s.ledger != 1)
        usage("--acked-log needs one amount (amount_min = amount_max) and ledger 1 (scenario '" + s.name + "')");
    }
  }

  driver_options d;
  boost::asio::ip::tcp::endpoint metrics_at;
  try {
    d.endpoint = loopback_endpoint(o.address);
    if (!o.metrics.empty()) metrics_at = loopback_endpoint(o.metrics);
  } catch (const std::invalid_argument& e) {
    usage(e.what());
  }
  d.threads = o.threads;
  d.shadow = o.shadow;
  d.client_id = o.client_id;
  client::options copts;
  copts.client_id = o.client_id;
  if (!o.key_file.empty()) {
    try {
      copts.key = client::key_of_file(o.key_file);
    } catch (const std::invalid_argument& e) {
      usage(e.what());
    }
    d.key = copts.key;
  }

  const std::string out_path = o.out.empty() ? "perf/results/bench-" + utc_now("%Y%m%dT%H%M%SZ") + ".jsonl" : o.out;
  std::string machine = kassa::perf::machine_description();
  if (machine.rfind("machine: ", 0) == 0) machine = machine.substr(9);
  int status = 0;
  try {
    results_file results(out_path);
    std::unique_ptr<acked_log> acked;
    if (!o.acked_log_path.empty()) acked = std::make_unique<acked_log>(o.acked_log_path);
    for (const auto& s : scenarios) {
      if (s.setup) {
        setup_accounts(s, d.endpoint.address().to_string(), d.endpoint.port(), copts, o.shadow);
        std::fprintf(stderr, "kassa-bench %s: setup: %llu accounts%s\n", s.name.c_str(), (unsigned long long)s.accounts,
                     s.funding > 0 ? " funded" : "");
      }
      stage_histograms before;
      if (!o.metrics.empty()) before = parse_stage_histograms(scrape(metrics_at));
      if (acked) acked->begin(s);
      results.write({{"type", "run"},
                     {"scenario", s.name},
                     {"kind", std::string(name(s.kind))},
                     {"started_utc", utc_now("%Y-%m-%dT%H:%M:%SZ")},
                     {"machine", machine},
                     {"command", o.command},
                     {"settings", settings_json(s)},
                     {"shadow", o.shadow}});
      auto workload = s.kind == scenario_kind::payments ? make_payments_workload(s, acked.get()) : make_ledger_workload(s, acked.get());
      const load_result r = run_load(s, *workload, d, [&](double t_s, double window_s, const tally& t) {
        if (window_s <= 0) return;
        results.write(tick_line(s, t_s, window_s, t));
        if (!o.quiet) std::fprintf(stderr, "%s\n", progress_text(s, t_s, window_s, t).c_str());
      });
      results.write(summary_line(s, r.seconds, r.total, workload->result_names()));
      if (!o.metrics.empty()) {
        try {
          const auto after = parse_stage_histograms(scrape(metrics_at));
          results.write({{"type", "stages"},
                         {"scenario", s.name},
                         {"source", "http://" + o.metrics + "/metrics"},
                         {"stages", stage_differences(before, after)}});
        } catch (const std::runtime_error& e) {
          std::fprintf(stderr, "kassa-bench %s: no stages line: %s\n", s.name.c_str(), e.what());
          status = std::max(status, 1);
        }
      }
      std::printf("%s\n", summary_text(s, r.seconds, r.total, workload->result_names()).c_str());
      std::fflush(stdout);
      if (r.total.errors() != 0) status = std::max(status, 1);
      // A scenario that lost every connection is not followed by others: kassad is gone.
      if (r.total.request_errors[request_error_connection_lost] != 0 && r.total.requests == 0) break;
    }
    std::fprintf(stderr, "kassa-bench: results in %s\n", out_path.c_str());
  } catch (const client::error& e) {
    std::fprintf(stderr, "kassa-bench: %s\n", e.what());
    return 3;
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "kassa-bench: %s\n", e.what());
    return 3;
  }
  return status;
}
