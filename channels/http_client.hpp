#pragma once
// An asynchronous HTTP/1.1 client for one provider: a pool of at most connections_max
// keep-alive connections, a deadline per request (queueing, connecting, sending and reading
// all count), and its own I/O thread. Callbacks run on that thread and must not block.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace kassa::channels {

enum class http_error : uint8_t {
  none = 0,
  timeout,         // the deadline passed
  connect_failed,  // no connection: nothing was sent
  connection_lost, // the connection broke (closed, reset) before a whole answer came
  protocol,        // the answer was not valid HTTP
  too_large,       // the answer's body exceeds body_bytes_max
  queue_full,      // more than queue_max requests waiting for a connection: nothing was sent
};
const char* name(http_error e);

struct http_result {
  http_error error = http_error::none;
  bool maybe_sent = false; // some of the request may have reached the server
  unsigned status = 0;     // HTTP status when error == none
  std::string body;
  std::string detail;      // what went wrong, for logs
};

struct http_client_options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint32_t connections_max = 16;
  uint32_t body_bytes_max = 4u << 20;
  uint32_t queue_max = 65'536;
};

class http_client {
public:
  using callback = std::function<void(http_result)>;

  explicit http_client(http_client_options opts);
  // Stops the I/O thread; callbacks of requests still open are dropped, never called.
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // Thread-safe. `done` is called exactly once on the I/O thread (unless the client is
  // destroyed first). `body` empty with post=false sends a GET.
  void request(bool post, std::string target, std::string body, uint32_t timeout_ms, callback done);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
  std::thread thread_;
};

} // namespace kassa::channels
