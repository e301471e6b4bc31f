#pragma once
// Scrapes kassad's metrics endpoint with a plain socket and reads the answer strictly: an HTTP
// reply, then the Prometheus text format 0.0.4 line by line (every sample `name{labels} value`,
// every metric with HELP and TYPE before its samples).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <cmath>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace kassa::test {

using namespace std::chrono_literals;

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

inline http_reply parse_http(const std::string& raw) {
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

inline http_reply request(uint16_t port, const std::string& bytes) {
  plain_socket s(port);
  s.send_all(bytes);
  return parse_http(s.read_all());
}

inline http_reply scrape(uint16_t port) { return request(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); }

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

} // namespace kassa::test
