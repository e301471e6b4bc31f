#pragma once
// Starts a real kassad on 127.0.0.1 (an OS-chosen port) with a temporary data directory.
#include <fstream>
#include <regex>

#include "runtime/client/client.hpp"
#include "tests/process.hpp"

namespace kassa::test {

using namespace std::chrono_literals;

class kassad_instance {
public:
  // `extra` is appended to the YAML (store keys, then e.g. a batching section);
  // `server_extra` goes into the server section (e.g. "  connections_max: 2\n"). `data_dir`
  // empty: one in the test's temporary directory. Metrics are served on an OS-chosen port
  // unless `extra` has a metrics section of its own.
  explicit kassad_instance(const std::string& extra = "", const std::string& durability = "fsync",
                           uint64_t map_size_mib = 256, const std::string& data_dir = "",
                           const std::string& server_extra = "")
      : config_(dir_.path() + "/kassa.yaml"), extra_(extra), server_extra_(server_extra), durability_(durability),
        data_dir_(data_dir.empty() ? dir_.path() + "/data" : data_dir) {
    write_config(map_size_mib);
    start();
  }

  // Rewrites the YAML with another store.map_size_mib; it takes effect at the next start().
  void write_config(uint64_t map_size_mib) {
    std::ofstream(config_) << "server:\n  address: 127.0.0.1\n  port: 0\n" << server_extra_ << "store:\n  data_dir: " << data_dir_
                           << "\n  durability: " << durability_ << "\n  map_size_mib: " << map_size_mib << "\n"
                           << extra_;
    const bool metrics = extra_.rfind("metrics:", 0) == 0 || extra_.find("\nmetrics:") != std::string::npos;
    if (!metrics) {
      std::ofstream(config_, std::ios::app) << (extra_.empty() || extra_.back() == '\n' ? "" : "\n")
                                            << "metrics:\n  port: 0\n";
    }
  }

  void start() {
    proc_ = std::make_unique<process>(std::vector<std::string>{KASSA_KASSAD, "--config", config_});
    if (!proc_->wait_for_output("msg=ready", 30s)) throw std::runtime_error("kassad did not start:\n" + proc_->output());
    std::smatch m;
    const std::string out = proc_->output();
    if (!std::regex_search(out, m, std::regex("msg=ready address=127\\.0\\.0\\.1:([0-9]+)"))) {
      throw std::runtime_error("no address in kassad's ready line:\n" + out);
    }
    port_ = static_cast<uint16_t>(std::stoi(m[1]));
    if (std::regex_search(out, m, std::regex("msg=ready address=[^ ]+ metrics=127\\.0\\.0\\.1:([0-9]+)"))) {
      metrics_port_ = static_cast<uint16_t>(std::stoi(m[1]));
    }
  }

  int stop(int sig = SIGTERM) {
    proc_->signal(sig);
    return proc_->wait(60s);
  }

  uint16_t port() const { return port_; }
  // The metrics endpoint's port; 0 when kassad does not serve metrics.
  uint16_t metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return proc_->pid(); }
  const std::string& output() const { return proc_->output(); }
  // Reads kassad's output until `text` appears; false when it does not in time.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    return proc_->wait_for_output(text, timeout);
  }

  client::blocking_client connect(client::options o = {}) const {
    client::blocking_client c(o);
    c.connect("127.0.0.1", port_);
    return c;
  }

private:
  temp_dir dir_;
  std::string config_;
  std::string extra_;
  std::string server_extra_;
  std::string durability_;
  std::string data_dir_;
  std::unique_ptr<process> proc_;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
};

} // namespace kassa::test
