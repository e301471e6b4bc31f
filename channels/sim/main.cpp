// kassa-channel-sim: stand-in payment providers over HTTP/JSON on 127.0.0.1, for tests and
// load runs. One thread, one io_context: latency is a timer per answer, so a thousand slow
// requests in flight cost sockets and timers, not threads. docs/channels.md has the API.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include "channels/backoff.hpp"
#include "channels/protocol.hpp"
#include "channels/sim/provider.hpp"
#include "channels/sim/sim_config.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace kassa::channels;
using namespace kassa::channels::sim;

namespace {

constexpr uint64_t feed_limit_max = 10'000;
constexpr uint32_t header_bytes_max = 16 * 1024;

struct server {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  sim_config cfg;
  std::map<std::string, std::unique_ptr<provider>, std::less<>> providers;
  uint64_t connections = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  uint64_t now_ms() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
  }
  reply route(const http::request<http::string_body>& req);
  void accept();
};

reply error_reply(unsigned status, std::string_view message) {
  reply r;
  r.status = status;
  r.body = encode_error(message);
  return r;
}

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

// after=SEQ&limit=N; both optional. False on anything else.
bool parse_feed_query(std::string_view q, uint64_t& after, uint64_t& limit) {
  after = 0;
  limit = 1000;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view key = part.substr(0, eq), value = part.substr(eq + 1);
    uint64_t* field = key == "after" ? &after : key == "limit" ? &limit : nullptr;
    if (!field || !parse_u64(value, *field)) return false;
  }
  return limit >= 1 && limit <= feed_limit_max;
}

reply server::route(const http::request<http::string_body>& req) {
  const std::string_view target(req.target().data(), req.target().size());
  const size_t qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  const std::string_view query = qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
  if (path.substr(0, 3) != "/p/") return error_reply(404, "no such path: paths start with /p/<provider>/v1/");
  const std::string_view rest = path.substr(3);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return error_reply(404, "no such path");
  auto it = providers.find(rest.substr(0, slash));
  if (it == providers.end()) return error_reply(404, "no such provider");
  provider& p = *it->second;
  const std::string_view op = rest.substr(slash);
  const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
  const uint64_t now = now_ms();
  auto method = [&](bool ok) { return ok ? reply{} : error_reply(405, "method not allowed"); };

  if (op == "/v1/credentials") return post ? p.credentials(now) : method(false);
  if (op == "/v1/payments") return post ? p.payment(req.body(), now) : method(false);
  if (op.substr(0, 13) == "/v1/payments/") return get ? p.status(op.substr(13), now) : method(false);
  if (op == "/v1/events" || op == "/v1/statement") {
    if (!get) return method(false);
    uint64_t after = 0, limit = 0;
    if (!parse_feed_query(query, after, limit)) return error_reply(400, "query: after=SEQ&limit=N (1..10000)");
    return op == "/v1/events" ? p.events(after, limit, now) : p.statement(after, limit, now);
  }
  if (op == "/v1/admin/behaviour") return post ? p.admin_behaviour(req.body()) : method(false);
  if (op == "/v1/admin/force") return post ? p.admin_force(req.body()) : method(false);
  if (op == "/v1/admin/injected") return get ? p.admin_injected() : method(false);
  if (op == "/v1/admin/stats") return get ? p.admin_stats(now, connections) : method(false);
  return error_reply(404, "no such path");
}

struct session : std::enable_shared_from_this<session> {
  session(server& s, tcp::socket sock) : srv(s), stream(std::move(sock)), timer(s.io) { ++srv.connections; }
  ~session() { --srv.connections; }

  server& srv;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;
  http::response<http::string_body> res;
  asio::steady_timer timer;

  void read() {
    parser.emplace();
    parser->body_limit(srv.cfg.server.body_bytes_max);
    parser->header_limit(header_bytes_max);
    stream.expires_after(std::chrono::milliseconds(srv.cfg.server.idle_ms));
    http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      // Not valid HTTP (or too large): say so once, then close, since framing is lost.
      const std::string why = ec == http::error::body_limit
                                  ? "body larger than " + std::to_string(srv.cfg.server.body_bytes_max) + " bytes"
                                  : "bad request: " + ec.message();
      write(error_reply(400, why), false);
      return;
    }
    http::request<http::string_body> req = parser->release();
    const bool keep_alive = req.keep_alive();
    reply r = srv.route(req);
    stream.expires_never();
    if (r.delay_ms == 0 && r.how == delivery::answer) {
      write(std::move(r), keep_alive);
      return;
    }
    timer.expires_after(std::chrono::milliseconds(r.delay_ms));
    timer.async_wait([self = shared_from_this(), r = std::move(r), keep_alive](beast::error_code) mutable {
      if (r.how == delivery::answer) self->write(std::move(r), keep_alive);
      else self->close(); // hold: the client gave up long ago; close: an unknown outcome
    });
  }

  void write(reply r, bool keep_alive) {
    res = {};
    res.version(11);
    res.result(r.status);
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    http::async_write(stream, res, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      if (ec || !keep_alive) {
        self->close();
        return;
      }
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
  }
};

void server::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (connections >= cfg.server.connections_max) {
        beast::error_code ignored;
        sock.close(ignored); // over the limit: refuse rather than queue without bound
      } else {
        std::make_shared<session>(*this, std::move(sock))->read();
      }
    }
    accept();
  });
}

int usage() {
  std::fprintf(stderr, "usage: kassa-channel-sim --config FILE [--port N] [--seed N]\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::string config_path;
  uint64_t port = 0, seed = 0;
  bool seed_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string v = argv[++i];
    if (a == "--config") config_path = v;
    else if (a == "--port" && parse_u64(v, port) && port <= 65535) {
    } else if (a == "--seed" && parse_u64(v, seed)) seed_set = true;
    else return usage();
  }
  if (config_path.empty()) return usage();

  auto srv = std::make_unique<server>();
  std::string error;
  if (!load_config(config_path, srv->cfg, error)) {
    std::fprintf(stderr, "kassa-channel-sim: %s\n", error.c_str());
    return 2;
  }
  if (!seed_set) seed = srv->cfg.seed_set ? srv->cfg.seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  for (const auto& [name, b] : srv->cfg.providers) {
    uint64_t h = 1469598103934665603ull; // FNV-1a of the name: each provider draws its own numbers
    for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    srv->providers[name] = std::make_unique<provider>(name, b, mix64(seed ^ h));
  }

  beast::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
  srv->acceptor.open(ep.protocol(), ec);
  if (!ec) srv->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) srv->acceptor.bind(ep, ec);
  if (!ec) srv->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "kassa-channel-sim: cannot listen on 127.0.0.1:%llu: %s\n", (unsigned long long)port,
                 ec.message().c_str());
    return 1;
  }
  asio::signal_set signals(srv->io, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { srv->io.stop(); });
  srv->accept();

  std::printf("seed %llu\n", (unsigned long long)seed);
  std::printf("providers");
  for (const auto& [name, p] : srv->providers) std::printf(" %s", name.c_str());
  std::printf("\nlistening on 127.0.0.1:%u\n", srv->acceptor.local_endpoint().port());
  std::fflush(stdout);
  srv->io.run();
  std::printf("stopped\n");
  std::fflush(stdout);
  return 0;
}
