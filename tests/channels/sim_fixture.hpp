#pragma once
// Starts a real kassa-channel-sim on 127.0.0.1 (an OS-chosen port) with a given provider
// YAML, and talks to its admin endpoints with the channels HTTP client.
#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "channels/http_client.hpp"
#include "tests/process.hpp"

namespace kassa::test {

class channel_sim {
public:
  // `providers` is the YAML under `providers:` (indented by two spaces); `server` the keys
  // under `server:`.
  channel_sim(const std::string& providers, uint64_t seed, const std::string& server = "  connections_max: 4096\n")
      : config_(dir_.path() + "/channel-sim.yaml") {
    std::ofstream(config_) << "server:\n" << server << "providers:\n" << providers;
    proc_ = std::make_unique<process>(std::vector<std::string>{KASSA_CHANNEL_SIM, "--config", config_, "--port", "0",
                                                               "--seed", std::to_string(seed)});
    if (!proc_->wait_for_output("listening on 127.0.0.1:", std::chrono::seconds(20)) ||
        !proc_->wait_for_output("\n", std::chrono::seconds(1))) {
      throw std::runtime_error("kassa-channel-sim did not start:\n" + proc_->output());
    }
    std::smatch m;
    const std::string out = proc_->output();
    if (!std::regex_search(out, m, std::regex("listening on 127\\.0\\.0\\.1:([0-9]+)\n"))) {
      throw std::runtime_error("no port in kassa-channel-sim's output:\n" + out);
    }
    port_ = static_cast<uint16_t>(std::stoi(m[1]));
    channels::http_client_options o;
    o.port = port_;
    o.connections_max = 2;
    admin_ = std::make_unique<channels::http_client>(o);
  }

  uint16_t port() const { return port_; }
  const std::string& output() const { return proc_->output(); }

  // A blocking HTTP call (tests only).
  channels::http_result call(bool post, const std::string& target, const std::string& body = {}) {
    std::promise<channels::http_result> p;
    auto f = p.get_future();
    admin_->request(post, target, body, 10'000, [&p](channels::http_result r) { p.set_value(std::move(r)); });
    return f.get();
  }

  nlohmann::json json(bool post, const std::string& target, const std::string& body = {}) {
    auto r = call(post, target, body);
    if (r.error != channels::http_error::none || r.status != 200) {
      throw std::runtime_error(target + ": " + r.detail + " HTTP " + std::to_string(r.status) + " " + r.body);
    }
    return nlohmann::json::parse(r.body);
  }

  void force(const std::string& provider, const std::vector<std::string>& outcomes) {
    json(true, "/p/" + provider + "/v1/admin/force", nlohmann::json{{"outcomes", outcomes}}.dump());
  }
  nlohmann::json stats(const std::string& provider) { return json(false, "/p/" + provider + "/v1/admin/stats"); }

private:
  temp_dir dir_;
  std::string config_;
  std::unique_ptr<process> proc_;
  std::unique_ptr<channels::http_client> admin_;
  uint16_t port_ = 0;
};

} // namespace kassa::test
