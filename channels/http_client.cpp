#include "channels/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <vector>

#include "primitives/assert.hpp"

namespace kassa::channels {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

const char* name(http_error e) {
  switch (e) {
    case http_error::none: return "none";
    case http_error::timeout: return "timeout";
    case http_error::connect_failed: return "connect_failed";
    case http_error::connection_lost: return "connection_lost";
    case http_error::protocol: return "protocol";
    case http_error::too_large: return "too_large";
    case http_error::queue_full: return "queue_full";
  }
  return "?";
}

namespace {

struct job {
  bool post = false;
  std::string target;
  std::string body;
  clock_type::time_point deadline;
  uint32_t timeout_ms = 0;
  http_client::callback done;
  bool resent = false;     // already resent once after a stale keep-alive connection broke
  bool maybe_sent = false; // an earlier try may have reached the server
};

struct connection;

} // namespace

struct http_client::impl {
  explicit impl(http_client_options o) : opts(std::move(o)) {
    endpoint = tcp::endpoint(asio::ip::make_address(opts.host), opts.port);
    host_header = opts.host + ":" + std::to_string(opts.port);
  }
  ~impl() {
    idle.clear();
    queue.clear();
  }

  asio::io_context io; // first member: destroyed last, after every socket
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  http_client_options opts;
  tcp::endpoint endpoint;
  std::string host_header;
  std::vector<std::shared_ptr<connection>> idle;
  size_t connections_open = 0; // idle + busy + connecting
  std::deque<job> queue;       // waiting for a connection
  asio::steady_timer sweep{io};
  bool sweep_armed = false;

  void submit(job j);
  void dispatch();
  void release(std::shared_ptr<connection> c, bool reusable);
  void arm_sweep();
};

namespace {

struct connection : std::enable_shared_from_this<connection> {
  explicit connection(http_client::impl* o) : owner(o), stream(o->io) {}

  http_client::impl* owner;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  bool connected = false;
  bool reused = false; // has answered a request before this one
  job current;

  void run(job j) {
    current = std::move(j);
    parser.reset();
    req = {};
    req.method(current.post ? http::verb::post : http::verb::get);
    req.target(current.target);
    req.version(11);
    req.set(http::field::host, owner->host_header);
    req.keep_alive(true);
    if (current.post) {
      req.set(http::field::content_type, "application/json");
      req.body() = current.body;
    }
    req.prepare_payload();
    stream.expires_at(current.deadline);
    if (connected) {
      write();
      return;
    }
    stream.async_connect(owner->endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        const bool timed_out = ec == beast::error::timeout;
        self->fail(timed_out ? http_error::timeout : http_error::connect_failed, false,
                   "connect: " + ec.message());
        return;
      }
      self->connected = true;
      self->write();
    });
  }

  void write() {
    current.maybe_sent = true;
    http::async_write(stream, req, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->broke(ec, "send");
        return;
      }
      self->read();
    });
  }

  void read() {
    parser.emplace();
    parser->body_limit(owner->opts.body_bytes_max);
    buffer.clear();
    http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->broke(ec, "read");
        return;
      }
      auto& res = self->parser->get();
      http_result r;
      r.maybe_sent = true;
      r.status = res.result_int();
      r.body = std::move(res.body());
      const bool reusable = res.keep_alive();
      self->reused = true;
      self->stream.expires_never();
      job j = std::move(self->current);
      self->owner->release(self, reusable);
      j.done(std::move(r));
    });
  }

  void broke(beast::error_code ec, const char* stage) {
    const bool stale = ec == http::error::end_of_stream || ec == asio::error::eof ||
                       ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
    if (stale && reused && !current.resent && (!parser || !parser->got_some())) {
      // A keep-alive connection the server had already closed: send once more on a new one.
      job j = std::move(current);
      j.resent = true;
      close();
      owner->connections_open--;
      owner->queue.push_front(std::move(j));
      owner->dispatch();
      return;
    }
    http_error e = http_error::connection_lost;
    if (ec == beast::error::timeout) e = http_error::timeout;
    else if (ec == http::error::body_limit) e = http_error::too_large;
    else if (ec.category() == beast::error_code(http::error::bad_target).category() && !stale) e = http_error::protocol;
    fail(e, true, std::string(stage) + ": " + ec.message());
  }

  void fail(http_error e, bool sent, std::string detail) {
    http_result r;
    r.error = e;
    r.maybe_sent = sent || current.maybe_sent;
    r.detail = e == http_error::timeout
                   ? "timeout after " + std::to_string(current.timeout_ms) + " ms (" + detail + ")"
                   : std::move(detail);
    job j = std::move(current);
    close();
    owner->release(shared_from_this(), false);
    j.done(std::move(r));
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    connected = false;
  }
};

} // namespace

void http_client::impl::submit(job j) {
  if (queue.size() >= opts.queue_max) {
    http_result r;
    r.error = http_error::queue_full;
    r.detail = "more than " + std::to_string(opts.queue_max) + " requests wait for a connection";
    j.done(std::move(r));
    return;
  }
  queue.push_back(std::move(j));
  dispatch();
}

void http_client::impl::dispatch() {
  const auto now = clock_type::now();
  while (!queue.empty()) {
    if (queue.front().deadline <= now) {
      job j = std::move(queue.front());
      queue.pop_front();
      http_result r;
      r.error = http_error::timeout;
      r.maybe_sent = j.maybe_sent;
      r.detail = "timeout after " + std::to_string(j.timeout_ms) + " ms waiting for a connection";
      j.done(std::move(r));
      continue;
    }
    std::shared_ptr<connection> c;
    if (!idle.empty()) {
      c = std::move(idle.back());
      idle.pop_back();
    } else if (connections_open < opts.connections_max) {
      c = std::make_shared<connection>(this);
      ++connections_open;
    } else {
      break;
    }
    job j = std::move(queue.front());
    queue.pop_front();
    c->run(std::move(j));
  }
  if (!queue.empty()) arm_sweep();
}

void http_client::impl::release(std::shared_ptr<connection> c, bool reusable) {
  if (reusable) {
    idle.push_back(std::move(c));
  } else {
    c->close();
    KASSA_ASSERT(connections_open > 0);
    --connections_open;
  }
  // Hand the connection on after the caller's callback has run (posted, not nested).
  asio::post(io, [this] { dispatch(); });
}

// Requests waiting for a connection still time out on time.
void http_client::impl::arm_sweep() {
  if (sweep_armed) return;
  sweep_armed = true;
  sweep.expires_after(std::chrono::milliseconds(10));
  sweep.async_wait([this](beast::error_code ec) {
    sweep_armed = false;
    if (!ec) dispatch();
  });
}

http_client::http_client(http_client_options opts) : impl_(std::make_shared<impl>(std::move(opts))) {
  KASSA_ASSERT(impl_->opts.connections_max >= 1);
  thread_ = std::thread([p = impl_] { p->io.run(); });
}

http_client::~http_client() {
  impl_->work.reset();
  impl_->io.stop();
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach(); // destroyed from one of its own callbacks: the thread holds impl_
  } else {
    thread_.join();
  }
}

void http_client::request(bool post, std::string target, std::string body, uint32_t timeout_ms, callback done) {
  job j;
  j.post = post;
  j.target = std::move(target);
  j.body = std::move(body);
  j.timeout_ms = timeout_ms;
  j.deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
  j.done = std::move(done);
  impl* p = impl_.get();
  asio::post(p->io, [p, j = std::move(j)]() mutable { p->submit(std::move(j)); });
}

} // namespace kassa::channels
