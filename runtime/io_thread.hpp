#pragma once
// What kassad's two listeners (the binary protocol's server, the metrics endpoint) share: an
// acceptor opened on a configured address, and one thread running its io_context.
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace kassa::runtime {

// Opens `acceptor` on address:port (reuse_address, the system's backlog). false with `error`
// saying why; `key` names the address's config key in that message ("server.address").
inline bool listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address, uint16_t port,
                      const char* key, std::string& error) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    error = std::string(key) + " '" + address + "' is not an IP address";
    return false;
  }
  asio::ip::tcp::endpoint endpoint(ip, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message();
    return false;
  }
  return true;
}

// Waits up to 5 s for the io thread's run() to return by itself (`done`: every handler
// finished), stops the context if it has not, and joins the thread.
inline void join_io_thread(boost::asio::io_context& io, const std::atomic<bool>& done, std::thread& thread) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  io.stop(); // only matters when a handler did not finish in time
  thread.join();
}

} // namespace kassa::runtime
