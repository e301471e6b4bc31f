#include "runtime/metrics_endpoint.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "runtime/io_thread.hpp"

namespace kassa::runtime {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
struct scrape;
constexpr size_t read_chunk_bytes = 4096;
} // namespace

struct metrics_endpoint::impl : std::enable_shared_from_this<metrics_endpoint::impl> {
  explicit impl(metrics_endpoint_options o) : opts(std::move(o)) {}

  metrics_endpoint_options opts;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::atomic<bool> io_done{false};
  std::unordered_set<std::shared_ptr<scrape>> scrapes; // I/O thread only

  void accept();
};

namespace {

std::string response(std::string_view status, std::string_view content_type, const std::string& body,
                     std::string_view extra_header = {}) {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
  out += extra_header;
  out += "\r\n";
  out += body;
  return out;
}

std::string plain(std::string_view status, const std::string& message) {
  return response(status, "text/plain; charset=utf-8", message + "\n");
}

// One connection: reads one request (bounded in bytes and time), answers it, closes.
struct scrape : std::enable_shared_from_this<scrape> {
  scrape(std::shared_ptr<metrics_endpoint::impl> e, tcp::socket s)
      : endpoint(std::move(e)), socket(std::move(s)), timer(endpoint->io) {}

  std::shared_ptr<metrics_endpoint::impl> endpoint;
  tcp::socket socket;
  asio::steady_timer timer;
  std::string in;
  char chunk[read_chunk_bytes];
  std::string out;
  bool closed = false;

  void start() {
    arm_timer();
    read();
  }

  // A client must send its request, and take the reply, each within read_timeout.
  void arm_timer() {
    timer.expires_after(endpoint->opts.read_timeout);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->close();
    });
  }

  void read() {
    const size_t room = std::min(sizeof chunk, size_t{endpoint->opts.request_bytes_max} + 1 - in.size());
    socket.async_read_some(asio::buffer(chunk, room),
                           [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                             if (ec || self->closed) {
                               self->close();
                               return;
                             }
                             self->in.append(self->chunk, n);
                             self->received();
                           });
  }

  void received() {
    const size_t end = in.find("\r\n\r\n");
    const size_t limit = endpoint->opts.request_bytes_max;
    if (end == std::string::npos ? in.size() > limit : end + 4 > limit) {
      answer(plain("431 Request Header Fields Too Large",
                   "request larger than " + std::to_string(limit) + " bytes"));
      return;
    }
    if (end == std::string::npos) {
      read();
      return;
    }
    const std::string_view head(in.data(), in.find("\r\n"));
    const size_t sp1 = head.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : head.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || head.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
      answer(plain("400 Bad Request", "expected: GET /metrics HTTP/1.1"));
      return;
    }
    const std::string_view method = head.substr(0, sp1);
    std::string_view target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?')); // a query string changes nothing
    if (target != "/metrics") {
      answer(plain("404 Not Found", "only /metrics is served here"));
    } else if (method != "GET") {
      answer(response("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET\n", "Allow: GET\r\n"));
    } else {
      answer(response("200 OK", "text/plain; version=0.0.4; charset=utf-8", endpoint->opts.registry->text()));
    }
  }

  void answer(std::string bytes) {
    out = std::move(bytes);
    arm_timer();
    asio::async_write(socket, asio::buffer(out), [self = shared_from_this()](const boost::system::error_code&, size_t) {
      self->close();
    });
  }

  void close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    timer.cancel();
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    endpoint->scrapes.erase(shared_from_this());
  }
};

} // namespace

void metrics_endpoint::impl::accept() {
  acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec != asio::error::operation_aborted) self->accept();
      return;
    }
    if (self->scrapes.size() >= self->opts.connections_max) {
      // Refused with a 503 so that the scraper knows why; the reply fits the socket buffer.
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      auto bytes = std::make_shared<std::string>(plain("503 Service Unavailable", "too many scrapes at once"));
      asio::async_write(*s, asio::buffer(*bytes), [s, bytes](const boost::system::error_code&, size_t) {
        boost::system::error_code ignored;
        s->shutdown(tcp::socket::shutdown_both, ignored);
        s->close(ignored);
      });
    } else {
      auto c = std::make_shared<scrape>(self, std::move(sock));
      self->scrapes.insert(c);
      c->start();
    }
    self->accept();
  });
}

metrics_endpoint::metrics_endpoint(metrics_endpoint_options opts)
    : impl_(std::make_shared<impl>(std::move(opts))) {}

metrics_endpoint::~metrics_endpoint() {
  if (!impl_->thread.joinable()) return;
  // As ~server: close everything on the I/O thread so that no handler holds the state alive.
  asio::post(impl_->io, [self = impl_.get()] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    auto scrapes = self->scrapes;
    for (const auto& s : scrapes) s->close();
  });
  join_io_thread(impl_->io, impl_->io_done, impl_->thread);
}

bool metrics_endpoint::start(std::string& error) {
  if (!listen_on(impl_->acceptor, impl_->opts.address, impl_->opts.port, "metrics.address", error)) return false;
  impl_->accept();
  impl_->thread = std::thread([self = impl_.get()] {
    self->io.run();
    self->io_done = true;
  });
  return true;
}

uint16_t metrics_endpoint::port() const { return impl_->acceptor.local_endpoint().port(); }

} // namespace kassa::runtime
