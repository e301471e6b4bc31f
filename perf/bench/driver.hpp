#pragma once
// The load driver: one or two Boost.Asio event loops drive every connection with non-blocking
// sockets, keeping up to `depth` requests in flight on each (closed loop), or sending on a
// schedule at rate_per_s (open loop: latency from the scheduled send time, so a server that
// falls behind shows its queueing). Frames are encoded once per request with runtime/wire.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "perf/bench/scenario.hpp"
#include "perf/bench/workload.hpp"

namespace kassa::bench {

struct driver_options {
  boost::asio::ip::tcp::endpoint endpoint;
  uint32_t threads = 1;
  bool shadow = false;
  uint64_t client_id = 0;
  std::vector<uint8_t> key; // 32 bytes, or empty: do not authenticate
};

// host:port of a loopback address (127.0.0.0/8, ::1, or a name resolving only to those);
// throws std::invalid_argument saying why not.
boost::asio::ip::tcp::endpoint loopback_endpoint(const std::string& host_port);

struct load_result {
  tally total;          // the replies after the warm-up
  double seconds = 0;   // from the end of the warm-up to the last reply
  uint64_t unanswered = 0;
};

// The tick callback gets the seconds since the start and the tally of that stretch (one
// second, the last one shorter); it runs on the calling thread.
using tick_fn = std::function<void(double t_s, double window_s, const tally& window)>;

// Connects (hello, and authenticate with a key), runs the load for the scenario's duration
// or requests_max, waits for the replies in flight (request_timeout_ms at most) and returns.
// Throws std::runtime_error when a connection cannot be set up.
load_result run_load(const scenario& s, workload& w, const driver_options& o, const tick_fn& tick);

} // namespace kassa::bench
