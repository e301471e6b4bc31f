#include <catch2/catch.hpp>

#include <thread>

#include <boost/asio.hpp>

#include "config/config.hpp"
#include "perf/bench/metrics.hpp"
#include "perf/bench/scenario.hpp"

#include <nlohmann/json.hpp>

using namespace kassa::bench;

namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    load_scenarios(yaml, "s.yaml", overrides);
  } catch (const kassa::config::config_error& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("a scenario file holds one scenario or a list, with the kind's defaults", "[bench]") {
  auto one = load_scenarios("name: a\nkind: hot\nconnections: 8\n", "s.yaml", {});
  REQUIRE(one.size() == 1);
  CHECK(one[0].name == "a");
  CHECK(one[0].connections == 8);
  CHECK(one[0].hot_percent == 90);
  auto two = load_scenarios("- {name: a, kind: transfers}\n- {name: b, kind: payments}\n", "s.yaml", {});
  REQUIRE(two.size() == 2);
  CHECK(two[1].ledger == 840);
  CHECK(two[1].events == 10);
}

TEST_CASE("--set overrides a knob of every scenario and is checked like the file", "[bench]") {
  auto s = load_scenarios("- {name: a, kind: transfers}\n- {name: b, kind: transfers}\n", "s.yaml",
                          {"connections=64", "events=1"});
  CHECK(s[0].connections == 64);
  CHECK(s[1].events == 1);
  // Only the scenarios that run get the overrides (rate_per_s would not fit the closed one).
  auto open = load_scenarios("- {name: c, kind: lookups}\n- {name: o, kind: lookups, loop: open, rate_per_s: 10}\n",
                             "s.yaml", {"rate_per_s=20"}, {"o"});
  REQUIRE(open.size() == 1);
  CHECK(open[0].rate_per_s == 20);
  CHECK(error_of("name: a\nkind: transfers\n", {"connections=0"}).find("--set:1: connections: must be between 1") == 0);
  CHECK(error_of("name: a\nkind: transfers\n", {"conections=3"}).find("did you mean connections?") != std::string::npos);
  CHECK(error_of("name: a\nkind: transfers\n", {"kind=hot"}).find("come from the file") != std::string::npos);
  auto p = load_scenarios("name: p\nkind: payments\n", "s.yaml", {"providers=[alpha, alpha-2]", "topup_percent=100",
                                                                   "withdrawal_percent=0", "transfer_percent=0",
                                                                   "refund_percent=0"});
  CHECK(p[0].providers == std::vector<std::string>{"alpha", "alpha-2"});
  CHECK(p[0].pay_from_balance_percent == 0);
  CHECK(load_scenarios("name: p\nkind: payments\n", "s.yaml", {"pay_from_balance_percent=50"})[0].pay_from_balance_percent == 50);
  CHECK(error_of("name: p\nkind: payments\n", {"pay_from_balance_percent=101"}).find("pay_from_balance_percent") !=
        std::string::npos);
  CHECK(error_of("name: p\nkind: payments\n", {"providers=[a-name-longer-than-16]"}).find("1 to 16 bytes") !=
        std::string::npos);
}

TEST_CASE("a bad scenario is refused with its file, line and key", "[bench]") {
  CHECK(error_of("name: a\nkind: transfers\nduration_s: 7200\n") ==
        "s.yaml:3: duration_s: must be between 1 and 3600, got '7200'");
  CHECK(error_of("name: a\nkind: transfers\nrequests_max: 1000000000\n").find("s.yaml:3: requests_max:") == 0);
  CHECK(error_of("name: a\nkind: nope\n").find("s.yaml:2: kind: 'nope' is not one of") == 0);
  CHECK(error_of("kind: transfers\n").find("name: missing required key") != std::string::npos);
  CHECK(error_of("name: a\nkind: transfers\nloop: open\n").find("rate_per_s") != std::string::npos);
  CHECK(error_of("name: a\nkind: payments\nrefund_percent: 50\n").find("must sum to 100") != std::string::npos);
  CHECK(error_of("- {name: a, kind: transfers}\n- {name: a, kind: hot}\n").find("twice") != std::string::npos);
  CHECK(error_of("name: a\nkind: transfers\namount_min: 5\namount_max: 2\n").find("s.yaml:4: amount_max") == 0);
}

TEST_CASE("the stages line is the difference of two scrapes, in pipeline order", "[bench]") {
  const std::string before =
      "# TYPE kassa_stage_seconds histogram\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"0.000001\"} 0\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"0.000002\"} 5\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"+Inf\"} 5\n"
      "kassa_stage_seconds_sum{stage=\"encode\"} 0.00001\n"
      "kassa_stage_seconds_count{stage=\"encode\"} 5\n";
  const std::string after =
      "kassa_stage_seconds_bucket{stage=\"decode\",le=\"0.000001\"} 10\n"
      "kassa_stage_seconds_bucket{stage=\"decode\",le=\"0.000002\"} 10\n"
      "kassa_stage_seconds_bucket{stage=\"decode\",le=\"+Inf\"} 10\n"
      "kassa_stage_seconds_sum{stage=\"decode\"} 0.000005\n"
      "kassa_stage_seconds_count{stage=\"decode\"} 10\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"0.000001\"} 0\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"0.000002\"} 6\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"0.000004\"} 104\n"
      "kassa_stage_seconds_bucket{stage=\"encode\",le=\"+Inf\"} 105\n"
      "kassa_stage_seconds_sum{stage=\"encode\"} 0.00041\n"
      "kassa_stage_seconds_count{stage=\"encode\"} 105\n"
      "other_metric 3\n";
  const auto stages = stage_differences(parse_stage_histograms(before), parse_stage_histograms(after));
  REQUIRE(stages.size() == 2);
  CHECK(stages[0]["stage"] == "decode");
  CHECK(stages[0]["count"] == 10);
  CHECK(stages[0]["p50_us"] == 1.0);
  CHECK(stages[1]["stage"] == "encode");
  CHECK(stages[1]["count"] == 100);
  CHECK(stages[1]["mean_us"] == 4.0);
  CHECK(stages[1]["p50_us"] == 4.0);
  CHECK(stages[1]["p99_us"] == 4.0);
}

TEST_CASE("scrape reads the body of GET /metrics, also chunked or from a server that keeps the connection, and says why when it cannot", "[bench]") {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  enum { closes, chunked, keeps_open };
  for (int mode : {closes, chunked, keeps_open}) {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto at = acceptor.local_endpoint();
    std::string request;
    std::thread server([&] {
      tcp::socket s(io);
      acceptor.accept(s);
      asio::streambuf in;
      asio::read_until(s, in, "\r\n\r\n");
      request.assign(asio::buffers_begin(in.data()), asio::buffers_end(in.data()));
      const std::string body = "kassa_stage_seconds_count{stage=\"decode\"} 3\n";
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n";
      if (mode == chunked) {
        char size[16];
        std::snprintf(size, sizeof size, "%zx", body.size());
        reply += "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n";
      } else {
        reply += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      }
      asio::write(s, asio::buffer(reply));
      boost::system::error_code ec;
      if (mode == keeps_open) { // until the client closes
        char byte;
        s.read_some(asio::buffer(&byte, 1), ec);
      }
      s.shutdown(tcp::socket::shutdown_both, ec);
    });
    const std::string body = scrape(at);
    server.join();
    CHECK(request.rfind("GET /metrics HTTP/1.", 0) == 0);
    CHECK(body == "kassa_stage_seconds_count{stage=\"decode\"} 3\n");
    CHECK(parse_stage_histograms(body)["decode"].count == 3);
  }
  // Nothing listening: an error naming the URL.
  asio::io_context io;
  tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto at = closed.local_endpoint();
  closed.close();
  try {
    scrape(at);
    FAIL("scrape of a closed port succeeded");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("/metrics") != std::string::npos);
  }
}
