#pragma once
// The HTTP endpoint of kassad's metrics: `GET /metrics` answers the registry's Prometheus text
// (format 0.0.4); any other path is 404 and any other method 405. It runs on its own thread
// and io_context, never on an actor's or the client front end's thread. A scrape's cost is
// bounded: connections at once, bytes of a request (line and headers), and the time a client
// has to send it; each connection answers one request and closes.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "metrics/registry.hpp"

namespace kassa::runtime {

struct metrics_endpoint_options {
  std::string address = "127.0.0.1";
  uint16_t port = 9464; // 0: the OS picks one (see port())
  uint32_t connections_max = 8;
  uint32_t request_bytes_max = 8192;
  std::chrono::milliseconds read_timeout{2000};
  metrics::registry* registry = &metrics::process_registry();
};

class metrics_endpoint {
public:
  explicit metrics_endpoint(metrics_endpoint_options opts);
  ~metrics_endpoint(); // closes every connection and joins the thread
  metrics_endpoint(const metrics_endpoint&) = delete;
  metrics_endpoint& operator=(const metrics_endpoint&) = delete;

  // Binds, listens and starts the thread. False with `error` set when it cannot bind.
  bool start(std::string& error);
  uint16_t port() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace kassa::runtime
