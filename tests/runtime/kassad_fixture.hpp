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
  // `extra` is appended to the YAML (e.g. a batching section).
  explicit kassad_instance(const std::string& extra = "", const std::string& durability = "fsync")
      : config_(dir_.path() + "/kassa.yaml") {
    std::ofstream(config_) << "server:\n  address: 127.0.0.1\n  port: 0\nstore:\n  data_dir: " << data_dir()
                           << "\n  durability: " << durability << "\n  map_size_mib: 256\n" << extra;
    start();
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
  }

  int stop(int sig = SIGTERM) {
    proc_->signal(sig);
    return proc_->wait(60s);
  }

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string data_dir() const { return dir_.path() + "/data"; }
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
  std::unique_ptr<process> proc_;
  uint16_t port_ = 0;
};

} // namespace kassa::test
