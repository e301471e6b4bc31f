// End-to-end: kassad's metrics endpoint, scraped with a plain socket while transfers run.
// Tagged [e2e][metrics].
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cmath>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "tests/ledger/ledger_fixture.hpp"
#include "tests/runtime/kassad_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
using namespace std::chrono_literals;

namespace {

// A TCP connection to 127.0.0.1:port with blocking reads bounded by a timeout.
class plain_socket {
public:
  explicit plain_socket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
  }
  ~plain_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  plain_socket(const plain_socket&) = delete;
  plain_socket& operator=(const plain_socket&) = delete;

  void send_all(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return; // the server closed: what it answered is still readable
      done += size_t(n);
    }
  }

  // Everything until the server closes, or what came before `timeout`.
  std::string read_all(std::chrono::milliseconds timeout = 10s) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, size_t(n));
    }
    return out;
  }
  bool closed() const { return closed_; }

private:
  int fd_ = -1;
  bool closed_ = false;
};

struct http_reply {
  int status = 0;
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;
};

http_reply parse_http(const std::string& raw) {
  http_reply r;
  const size_t end = raw.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  REQUIRE(raw.rfind("HTTP/1.1 ", 0) == 0);
  r.status = std::stoi(raw.substr(9, 3));
  size_t at = raw.find("\r\n") + 2;
  while (at < end) {
    const size_t eol = raw.find("\r\n", at);
    const std::string line = raw.substr(at, eol - at);
    const size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    at = eol + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

http_reply request(uint16_t port, const std::string& bytes) {
  plain_socket s(port);
  s.send_all(bytes);
  return parse_http(s.read_all());
}

http_reply scrape(uint16_t port) { return request(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); }

// One sample of the exposition: name{labels} value.
struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict reader of the Prometheus text format 0.0.4 as kassad writes it: every line is a
// HELP, a TYPE or a sample `name{label="value",...} value`; every metric has HELP and TYPE
// before its samples; histogram samples are name_bucket (with le), name_sum and name_count.
// Fails the test at the first line that breaks a rule.
struct exposition {
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::vector<sample> samples;

  explicit exposition(const std::string& text) {
    REQUIRE(!text.empty());
    REQUIRE(text.back() == '\n');
    size_t at = 0;
    while (at < text.size()) {
      const size_t eol = text.find('\n', at);
      const std::string line = text.substr(at, eol - at);
      at = eol + 1;
      INFO("line: " << line);
      REQUIRE(!line.empty());
      if (line.rfind("# HELP ", 0) == 0) {
        const std::string rest = line.substr(7);
        const std::string name = rest.substr(0, rest.find(' '));
        REQUIRE(valid_name(name));
        REQUIRE(helped.insert(name).second);
        continue;
      }
      if (line.rfind("# TYPE ", 0) == 0) {
        const std::string rest = line.substr(7);
        const size_t sp = rest.find(' ');
        REQUIRE(sp != std::string::npos);
        const std::string name = rest.substr(0, sp), type = rest.substr(sp + 1);
        REQUIRE(helped.count(name) == 1);
        REQUIRE((type == "counter" || type == "gauge" || type == "histogram"));
        REQUIRE(types.emplace(name, type).second);
        continue;
      }
      REQUIRE(line[0] != '#');
      samples.push_back(parse_sample(line));
      const sample& s = samples.back();
      REQUIRE(types.count(family_of(s.name)) == 1);
      if (types[family_of(s.name)] == "histogram") {
        REQUIRE(s.name != family_of(s.name));
        REQUIRE((s.name.size() > 7 && s.name.compare(s.name.size() - 7, 7, "_bucket") == 0) == (s.labels.count("le") == 1));
      }
    }
  }

  static bool valid_name(const std::string& n) {
    if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
    for (char c : n) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
    }
    return true;
  }

  // The metric a sample belongs to: a histogram's _bucket, _sum and _count are its own.
  std::string family_of(const std::string& name) const {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        const std::string base = name.substr(0, name.size() - s.size());
        auto it = types.find(base);
        if (it != types.end() && it->second == "histogram") return base;
      }
    }
    return name;
  }

  static sample parse_sample(const std::string& line) {
    sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    REQUIRE(valid_name(s.name));
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const size_t eq = line.find('=', i);
        REQUIRE(eq != std::string::npos);
        const std::string key = line.substr(i, eq - i);
        REQUIRE(valid_name(key));
        REQUIRE(line[eq + 1] == '"');
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            ++j;
            REQUIRE(j < line.size());
            REQUIRE((line[j] == '\\' || line[j] == '"' || line[j] == 'n'));
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        REQUIRE(j < line.size());
        REQUIRE(s.labels.emplace(key, value).second);
        i = j + 1;
        if (line[i] == ',') ++i;
        else REQUIRE(line[i] == '}');
      }
      ++i;
    }
    REQUIRE(line[i] == ' ');
    const std::string value = line.substr(i + 1);
    REQUIRE(!value.empty());
    if (value == "+Inf") s.value = INFINITY;
    else if (value == "-Inf") s.value = -INFINITY;
    else if (value == "NaN") s.value = NAN;
    else {
      size_t used = 0;
      s.value = std::stod(value, &used);
      REQUIRE(used == value.size());
    }
    return s;
  }

  // The value of the sample `name` with exactly these labels; -1 when there is none.
  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return -1;
  }

  // A histogram child's buckets in order, as (le, cumulative count).
  std::vector<std::pair<std::string, double>> buckets(const std::string& name, const std::string& key,
                                                      const std::string& v) const {
    std::vector<std::pair<std::string, double>> out;
    for (const sample& s : samples) {
      auto it = s.labels.find(key);
      if (s.name == name + "_bucket" && it != s.labels.end() && it->second == v) out.emplace_back(s.labels.at("le"), s.value);
    }
    return out;
  }
};

const char* const stages[] = {"decode", "routing", "accounts", "commit_wait", "encode"};

// Accounts 1..8 and `batches` requests of 100 transfers between them.
void transfer_some(kassad_instance& k, u128 first_id, int batches) {
  auto c = k.connect();
  std::vector<account> accounts;
  for (u128 id = 1; id <= 8; ++id) accounts.push_back(make_account(id));
  c.create_accounts(accounts); // exists, after the first time
  for (int b = 0; b < batches; ++b) {
    std::vector<transfer> ts;
    for (u128 i = 0; i < 100; ++i) {
      const u128 id = first_id + u128(b) * 100 + i;
      ts.push_back(make_transfer(id, 1 + id % 8, 1 + (id + 3) % 8, 1 + i));
    }
    REQUIRE(c.create_transfers(ts).empty());
  }
  c.close();
}

} // namespace

TEST_CASE("kassad serves its metrics as Prometheus text: requests, results and every stage", "[e2e][metrics]") {
  kassad_instance k;
  REQUIRE(k.metrics_port() != 0);
  transfer_some(k, 1000, 5);
  {
    // A repeat of a transfer: its result code is counted by name.
    auto c = k.connect();
    auto outcomes = c.create_transfers({make_transfer(1000, 1, 4, 1)});
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].result == transfer_result::exists);
  }

  http_reply r = scrape(k.metrics_port());
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"].rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(r.headers["content-length"] == std::to_string(r.body.size()));
  const exposition e(r.body);

  CHECK(e.value("kassa_requests_total", {{"operation", "create_transfers"}}) >= 6);
  CHECK(e.value("kassa_requests_total", {{"operation", "create_accounts"}}) >= 1);
  CHECK(e.value("kassa_replies_total", {{"operation", "create_transfers"}, {"status", "ok"}}) >= 6);
  CHECK(e.value("kassa_results_total", {{"operation", "create_transfers"}, {"code", "ok"}}) == 500);
  CHECK(e.value("kassa_results_total", {{"operation", "create_transfers"}, {"code", "exists"}}) == 1);
  CHECK(e.value("kassa_results_total", {{"operation", "create_accounts"}, {"code", "ok"}}) == 8);
  CHECK(e.value("kassa_request_seconds_count", {{"operation", "create_transfers"}}) >= 6);
  CHECK(e.value("kassa_commits_total", {{"shard", "0"}}) >= 1);
  CHECK(e.value("kassa_commit_seconds_count", {{"shard", "0"}}) >= 1);
  CHECK(e.value("kassa_commit_batch_events_sum", {{"shard", "0"}}) >= 508);
  CHECK(e.value("kassa_connections_open", {}) >= 0);
  CHECK(e.value("kassa_mailbox_depth", {{"actor", "shard0"}}) >= 0);
  CHECK(e.value("kassa_mailbox_depth", {{"actor", "directory"}}) >= 0);
  CHECK(e.value("kassa_mailbox_depth", {{"actor", "writer0"}}) >= 0);
  CHECK(e.value("kassa_hot_accounts", {}) == 0);
  CHECK(e.types.at("kassa_stage_seconds") == "histogram");

  // The stage histogram exactly as the contract has it.
  std::vector<std::string> les;
  for (unsigned k2 = 0; k2 <= 24; ++k2) {
    const uint64_t ns = uint64_t{1000} << k2;
    std::string s = std::to_string(ns / 1'000'000'000) + "." + std::to_string(1'000'000'000 + ns % 1'000'000'000).substr(1);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    les.push_back(s);
  }
  les.push_back("+Inf");
  CHECK(les[0] == "0.000001");
  CHECK(les[24] == "16.777216");
  for (const char* stage : stages) {
    INFO("stage " << stage);
    const auto b = e.buckets("kassa_stage_seconds", "stage", stage);
    REQUIRE(b.size() == les.size());
    double last = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      CHECK(b[i].first == les[i]);
      CHECK(b[i].second >= last);
      last = b[i].second;
    }
    const double count = e.value("kassa_stage_seconds_count", {{"stage", stage}});
    CHECK(count > 0);
    CHECK(b.back().second == count);
    CHECK(e.value("kassa_stage_seconds_sum", {{"stage", stage}}) >= 0);
  }
  CHECK(k.stop() == 0);
}

TEST_CASE("the metrics endpoint answers only GET /metrics and refuses what it cannot take", "[e2e][metrics]") {
  kassad_instance k("metrics:\n  port: 0\n  request_bytes_max: 1024\n  connections_max: 2\n  read_timeout_ms: 500\n");
  REQUIRE(k.metrics_port() != 0);
  const uint16_t port = k.metrics_port();
  CHECK(request(port, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
  CHECK(request(port, "GET / HTTP/1.1\r\n\r\n").status == 404);
  http_reply post = request(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.headers["allow"] == "GET");
  CHECK(request(port, "DELETE /metrics HTTP/1.1\r\n\r\n").status == 405);
  CHECK(request(port, "nonsense\r\n\r\n").status == 400);
  CHECK(request(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").status == 200);
  // A request beyond request_bytes_max, with or without its end, is refused.
  CHECK(request(port, "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(2000, 'a') + "\r\n\r\n").status == 431);
  CHECK(request(port, "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(2000, 'a')).status == 431);

  // Two slow clients hold both connections: a third is refused with 503; once the read
  // timeout closes them, scrapes work again.
  plain_socket slow1(port), slow2(port);
  slow1.send_all("GET /metr");
  slow2.send_all("GET /metr");
  std::this_thread::sleep_for(100ms);
  CHECK(request(port, "GET /metrics HTTP/1.1\r\n\r\n").status == 503);
  CHECK(slow1.read_all(5s).empty());
  CHECK(slow1.closed());
  slow2.read_all(5s);
  CHECK(slow2.closed());
  CHECK(scrape(port).status == 200);
  CHECK(k.stop() == 0);
}

TEST_CASE("kassad serves transfers while a slow client holds a metrics connection", "[e2e][metrics]") {
  kassad_instance k("metrics:\n  port: 0\n  connections_max: 1\n  read_timeout_ms: 60000\n");
  REQUIRE(k.metrics_port() != 0);
  plain_socket slow(k.metrics_port());
  slow.send_all("GET /metrics HTTP/1.1\r\n"); // and never the end of it
  const auto started = std::chrono::steady_clock::now();
  transfer_some(k, 5000, 20);
  CHECK(std::chrono::steady_clock::now() - started < 30s);
  CHECK(slow.read_all(100ms).empty());
  CHECK_FALSE(slow.closed());
  CHECK(k.stop() == 0);
}

TEST_CASE("kassad reports where it serves metrics, or that it does not", "[e2e][metrics]") {
  kassad_instance off("metrics:\n  enabled: false\n");
  CHECK(off.metrics_port() == 0);
  CHECK(off.output().find("metrics=off") != std::string::npos);
  // Another kassad already holds the port: this one serves its clients without metrics.
  kassad_instance first;
  kassad_instance second("metrics:\n  port: " + std::to_string(first.metrics_port()) + "\n");
  CHECK(second.output().find("metrics=unavailable") != std::string::npos);
  CHECK(second.output().find("cannot serve metrics") != std::string::npos);
  auto c = second.connect();
  CHECK(c.create_accounts({make_account(1)}).empty());
  c.close();
  CHECK(second.stop() == 0);
  CHECK(first.stop() == 0);
  CHECK(off.stop() == 0);
}
