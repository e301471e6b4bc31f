// The sections of the daemon's own endpoints and output: server, metrics, log.
#include <arpa/inet.h>

#include "config/sections.hpp"

namespace kassa::config {
namespace {

using namespace detail;

const names<log_level> log_level_names = {
    {"debug", log_level::debug},
    {"info", log_level::info},
    {"warn", log_level::warn},
    {"error", log_level::error},
};

// An IPv4 or IPv6 address in numeric form (a host name would need a resolver at boot).
parse_fn ip_address(std::string& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = read_scalar(r, value, at, "an IP address");
    unsigned char bytes[sizeof(in6_addr)];
    if (inet_pton(AF_INET, out.c_str(), bytes) != 1 && inet_pton(AF_INET6, out.c_str(), bytes) != 1) {
      r.fail(at, "'" + out + "' is not an IPv4 or IPv6 address");
    }
  };
}

} // namespace

namespace detail {

parse_fn server_section(server_config& c) {
  return section({
      {"address", optional, text(c.address)},
      {"port", optional, integer(c.port, 0, 65535)},
      {"connections_max", optional, integer(c.connections_max, 1, 65536)},
      {"frame_bytes_max", optional, integer(c.frame_bytes_max, 256, 64u << 20)},
      {"requests_inflight_max", optional, integer(c.requests_inflight_max, 1, 4096)},
  });
}

parse_fn metrics_section(metrics_config& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"address", optional, ip_address(c.address)},
      {"port", optional, integer(c.port, 0, 65535)},
      {"connections_max", optional, integer(c.connections_max, 1, 1024)},
      {"request_bytes_max", optional, integer(c.request_bytes_max, 256, 65536)},
      {"read_timeout_ms", optional, integer(c.read_timeout_ms, 1, 60000)},
  });
}

parse_fn log_section(log_config& c) {
  return section({
      {"level", optional, one_of(c.level, log_level_names)},
  });
}

} // namespace detail

std::string_view to_string(log_level value) { return name_of(value, log_level_names); }

} // namespace kassa::config
